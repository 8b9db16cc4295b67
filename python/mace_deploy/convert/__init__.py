"""mace-torch model files -> mace-deploy artifacts (needs mace-torch; see compile.py)."""

import os

# e3nn 0.4.4 (mace-torch's pin) torch.loads its own constants file with the defaults that
# torch >= 2.6 refuses; mace-torch sets the same flag when it is imported.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

from .source import import_mace  # noqa: E402

import_mace()  # before e3nn, quietly

from .compile import compile_model, compile_models  # noqa: E402

__all__ = ["compile_model", "compile_models"]
