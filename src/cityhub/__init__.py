"""cityhub: an open-source smart-city platform (NGSI-LD hub, edge, city brain, governance)."""

from __future__ import annotations

import warnings
from pathlib import Path

__version__ = "0.1.0"


COMPILED_PACKAGES = ("brain", "sandbox")
"""Where setup.py's mypyc-compiled modules live."""


def stale_extensions(package: Path) -> list[str]:
    """The compiled modules of `package` older than their source.

    setup.py compiles the twin's control loop with mypyc. An editable install puts each
    extension beside its source, and Python imports the extension first: an edited source
    does not run until it is compiled again (`make`, or `pip install -e .`)."""
    stale = []
    for folder in COMPILED_PACKAGES:
        for extension in (package / folder).glob("*.so"):
            source = extension.with_name(extension.name.split(".", 1)[0] + ".py")
            if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
                stale.append(f"{package.name}/{folder}/{source.name}")
    return sorted(stale)


def _warn_if_stale() -> None:
    here = Path(__file__).parent
    if not (here.parent.parent / "setup.py").exists():
        return  # an installed copy, not a source tree: nothing can be edited behind its back
    stale = stale_extensions(here)
    if stale:
        warnings.warn(f"{', '.join(stale)} changed since they were compiled; the old compiled "
                      "code runs until `make` (or `pip install -e .`) compiles them again",
                      RuntimeWarning, stacklevel=2)


_warn_if_stale()
