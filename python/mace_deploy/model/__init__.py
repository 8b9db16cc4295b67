"""mace-deploy's own TorchScript implementation of MACE (see mace.py for the graph it takes)."""

from .committee import Committee
from .mace import MACEModel

__all__ = ["Committee", "MACEModel"]
