"""mace-deploy's own TorchScript implementation of MACE (see mace.py for the graph it takes)."""

from .mace import MACEModel

__all__ = ["MACEModel"]
