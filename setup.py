"""Compiles the twin's control loop with mypyc; everything else is in pyproject.toml.

The modules below run for every junction and second of a simulation (the controllers, the
signal layer, the lane views, the twin's loop). mypyc compiles them, from the same typed
sources, into C extensions: about a third less control time on grid4x4 (docs/brain.md, "The
control loop, compiled"). Decisions are the same (tests/sandbox/test_compiled.py).

`CITYHUB_PURE_PYTHON=1` installs without compiling; the sources then run as they are, only
slower. A machine without a C compiler or without Python's headers does the same by itself
(saying why), so `make demo` works there too. An editable install puts the extensions beside
their sources: after editing one, reinstall (`make` does it); `cityhub` warns when an extension
is older than its source.
"""

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

COMPILED = [
    "src/cityhub/brain/observations.py",
    "src/cityhub/brain/controllers.py",
    "src/cityhub/brain/adaptive.py",
    "src/cityhub/brain/detecting.py",
    "src/cityhub/brain/tuned.py",
    "src/cityhub/brain/safety.py",
    "src/cityhub/sandbox/lane_view.py",
    "src/cityhub/sandbox/twin.py",
]


def cannot_compile() -> str | None:
    """Why the C extensions cannot be built here (None: they can): the compiler Python was
    built with (or `CC`) is not on PATH, or Python.h is missing (Debian's python3-dev)."""
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler} is not on PATH)"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"no Python headers ({headers} is missing)"
    return None


def extensions() -> list:
    if os.environ.get("CITYHUB_PURE_PYTHON"):
        return []
    reason = cannot_compile()
    if reason is not None:
        print(f"cityhub: {reason}: installing without compiling the control loop "
              "(the same decisions, slower simulations)", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    return mypycify(COMPILED, opt_level="3", group_name="cityhub_compiled")


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import it
    setup(ext_modules=extensions())
