"""The city brain: signal controllers, the signal safety layer and the congestion index.

Pure domain code (stdlib and numpy only, plus `mypy_extensions`' hints for the modules
setup.py compiles): no simulator, no HTTP. The SUMO twin (`cityhub.sandbox`)
and the live hub loop feed the same observations in and apply the same decisions.
"""

# The built-in controllers register on import. Importing them here, not from the bottom of
# `controllers` (which they import), lets any brain module be imported first.
from cityhub.brain import adaptive, controllers, detecting, tuned

__all__ = ["adaptive", "controllers", "detecting", "tuned"]
