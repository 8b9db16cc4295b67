"""mace-deploy: run trained MACE potentials in LAMMPS, OpenMM and ASE.

`mace_deploy._C` is the C++ runtime; loading it registers the `torch.ops.mace_deploy` ops that
artifacts call. It is loaded on first use (`from mace_deploy import _C`, which every module that
needs it does), so that light imports such as the LAMMPS entry point (`mace_deploy.lammps`) do not
pay for loading torch.
"""

import importlib

from .errors import MACEDeployError

__version__ = "0.1.0"
__all__ = ["MACEDeployError", "__version__"]


def __getattr__(name):
    if name == "_C":
        import torch  # noqa: F401  (libtorch and torch's Python bindings before the extension)

        return importlib.import_module("._C", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
