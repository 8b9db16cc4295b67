"""Reading mace-torch model files (pickled `torch.nn.Module`s) with actionable errors."""

import contextlib
import hashlib
import io
import os
import pickle
import warnings
import zipfile
from typing import List

import torch

from ..errors import ModelFileError, UnsupportedModelError

SUPPORTED_CLASSES = ("MACE", "ScaleShiftMACE")


def import_mace() -> None:
    try:
        # mace-torch prints a notice about cuequivariance and e3nn warns about torch.load on import.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mace.modules  # noqa: F401  (classes the pickle refers to)
    except ImportError as e:
        raise ModelFileError("mace-torch is needed to read .model files: pip install 'mace-deploy[convert]' "
                             f"(or mace-torch==0.3.16) ({e})") from None


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_mace_model(path: str) -> torch.nn.Module:
    """Loads a mace-torch model file on the CPU, in eval mode."""
    if not os.path.exists(path):
        raise ModelFileError(f"model file '{path}' does not exist")
    if os.path.isdir(path):
        raise ModelFileError(f"'{path}' is a directory, not a mace-torch model file")
    import_mace()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, AttributeError,
            ModuleNotFoundError, UnicodeDecodeError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"'{path}' is not a readable mace-torch model file ({first_line})") from None
    if isinstance(model, torch.jit.ScriptModule):
        raise ModelFileError(f"'{path}' is a TorchScript file; compile the original mace-torch .model file instead")
    if not isinstance(model, torch.nn.Module):
        raise ModelFileError(f"'{path}' holds a {type(model).__name__}, not a mace-torch model "
                             "(a checkpoint or state dict cannot be compiled; use the .model file mace-torch saves)")
    name = type(model).__name__
    if name not in SUPPORTED_CLASSES:
        raise UnsupportedModelError(f"not supported: model class {name} (supported: {', '.join(SUPPORTED_CLASSES)})")
    return model.eval()


def model_heads(model: torch.nn.Module) -> List[str]:
    """The heads of a mace-torch model; single-head models of older versions have no `heads`."""
    return list(getattr(model, "heads", ["Default"]))
