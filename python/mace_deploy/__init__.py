"""mace-deploy: run trained MACE potentials in LAMMPS, OpenMM and ASE.

Importing the package loads the C++ runtime and registers the `torch.ops.mace_deploy` ops that
artifacts call.
"""

__version__ = "0.1.0"

import torch  # noqa: F401  (libtorch must be loaded before the extension)

from . import _C  # noqa: E402,F401

from .errors import MACEDeployError  # noqa: E402

__all__ = ["MACEDeployError", "__version__"]
