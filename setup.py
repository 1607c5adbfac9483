"""Compiles the twin's control loop with mypyc; everything else is in pyproject.toml.

The modules below run for every junction and second of a simulation (the controllers, the
signal layer, the lane views, the twin's loop). mypyc compiles them, from the same typed
sources, into C extensions: about a third less control time on grid4x4 (docs/brain.md, "The
control loop, compiled"). Decisions are the same (tests/sandbox/test_compiled.py).

`CITYHUB_PURE_PYTHON=1` installs without compiling (no C compiler needed); the sources then run
as they are. An editable install puts the extensions beside their sources: after editing one,
reinstall (`make` does it); `cityhub` warns when an extension is older than its source.
"""

import os

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


def extensions() -> list:
    if os.environ.get("CITYHUB_PURE_PYTHON"):
        return []
    from mypyc.build import mypycify

    return mypycify(COMPILED, opt_level="3", group_name="cityhub_compiled")


setup(ext_modules=extensions())
