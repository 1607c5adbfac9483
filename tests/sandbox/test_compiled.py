"""The twin's control loop compiled with mypyc (setup.py): what runs, and that it decides alike."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

import cityhub
from cityhub.sandbox.scenarios import Scenario
from tests.sandbox.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
COMPILED = [path[len("src/"):-len(".py")].replace("/", ".")
            for path in re.findall(r'"(src/cityhub/[\w/]+\.py)"', (ROOT / "setup.py").read_text())]


def _setup_module() -> ModuleType:
    """setup.py as a module: imported, not run as __main__, it calls no setup()."""
    spec = importlib.util.spec_from_file_location("cityhub_setup", ROOT / "setup.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NOTHING_COMPILED = bool(os.environ.get("CITYHUB_PURE_PYTHON") or _setup_module().cannot_compile())


@pytest.mark.skipif(_NOTHING_COMPILED, reason="installed with CITYHUB_PURE_PYTHON=1, or no C "
                    "compiler or Python headers here: nothing is compiled")
def test_the_installed_control_loop_is_compiled() -> None:
    assert {"cityhub.brain.adaptive", "cityhub.sandbox.twin"} <= set(COMPILED)  # setup.py read
    for name in COMPILED:
        origin = importlib.import_module(name).__file__ or ""
        assert origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), name


def test_an_extension_older_than_its_source_is_named(tmp_path: Path) -> None:
    package = tmp_path / "cityhub"
    for folder in cityhub.COMPILED_PACKAGES:
        (package / folder).mkdir(parents=True)
    source = package / "brain" / "adaptive.py"
    extension = package / "brain" / "adaptive.cpython-311-x86_64-linux-gnu.so"
    fresh = package / "sandbox" / "twin.py"
    fresh_extension = package / "sandbox" / "twin.cpython-311-x86_64-linux-gnu.so"
    for path in (source, extension, fresh, fresh_extension):
        path.write_text("")
    os.utime(source, (2_000, 2_000))
    os.utime(extension, (1_000, 1_000))  # compiled before the source was edited
    os.utime(fresh, (1_000, 1_000))
    os.utime(fresh_extension, (2_000, 2_000))
    assert cityhub.stale_extensions(package) == ["cityhub/brain/adaptive.py"]
    os.utime(extension, (3_000, 3_000))  # compiled again
    assert cityhub.stale_extensions(package) == []


@pytest.mark.slow
@pytest.mark.parametrize("controller", ["cityhub", "cityhub@2.2"])
def test_compiled_and_interpreted_loops_decide_alike(small_grid: Scenario, tmp_path: Path,
                                                     controller: str) -> None:
    """The same run from the sources alone (copied without extensions, first on the path)
    gives the same metrics and time series as the installed, compiled modules."""
    pure = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "cityhub", pure / "cityhub",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(pure)}
    probe = subprocess.run([sys.executable, "-c",
                            "import cityhub.brain.adaptive as m; print(m.__file__)"],
                           capture_output=True, text=True, env=env, check=True)
    assert probe.stdout.strip() == str(pure / "cityhub" / "brain" / "adaptive.py")
    runs = {}
    for name, run_env in (("compiled", None), ("interpreted", env)):
        out = tmp_path / name
        done = cli("sandbox", "run", "--scenario", str(small_grid.config), "--controller",
                   controller, "--seed", "5", "--out", str(out), env=run_env)
        assert done.returncode == 0, done.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        runs[name] = ({k: v for k, v in metrics.items()
                       if k not in {"wall_s", "control_s", "control_overhead"}},
                      (out / "timeseries.csv").read_text())
    assert runs["compiled"][0]["throughput_veh"] > 0
    assert runs["compiled"] == runs["interpreted"]


def test_without_a_c_compiler_the_install_compiles_nothing_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    setup = _setup_module()
    monkeypatch.delenv("CITYHUB_PURE_PYTHON", raising=False)
    monkeypatch.setenv("CC", "cityhub-no-such-cc")
    assert setup.cannot_compile() == "no C compiler (cityhub-no-such-cc is not on PATH)"
    assert setup.extensions() == []
    assert "no C compiler" in capsys.readouterr().err


def test_without_python_headers_the_install_compiles_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = _setup_module()
    monkeypatch.setenv("CC", sys.executable)  # any program on PATH stands for the compiler
    paths = {**sysconfig.get_paths(), "include": str(tmp_path)}
    monkeypatch.setattr(setup.sysconfig, "get_paths", lambda: paths)
    assert setup.cannot_compile() == f"no Python headers ({tmp_path / 'Python.h'} is missing)"
    (tmp_path / "Python.h").write_text("")
    assert setup.cannot_compile() is None
