"""Reading mace-torch model files (pickled `torch.nn.Module`s) with actionable errors."""

import _compat_pickle
import contextlib
import hashlib
import importlib
import importlib.util
import io
import os
import pickle
import pickletools
import warnings
import zipfile
from typing import List, Tuple

import torch

from ..errors import ModelFileError, UnsupportedModelError

SUPPORTED_CLASSES = ("MACE", "ScaleShiftMACE")

# Model classes of mace-torch (and its extension packages) that mace-deploy refuses, with what they
# are; recognised from the pickle's class references, so also where their package is not installed.
REFUSED_CLASSES = {
    "MACELES": "MACELES (latent Ewald summation long-range electrostatics)",
    "PolarMACE": "PolarMACE (charges, polarisation and external electric fields)",
    "AtomicDipolesMACE": "AtomicDipolesMACE (a dipole model without energies)",
    "EnergyDipolesMACE": "EnergyDipolesMACE (energies with dipoles)",
    "AtomicDielectricMACE": "AtomicDielectricMACE (dipoles and polarizabilities)",
}
REFUSED_PACKAGES = {
    "les": "latent Ewald summation long-range electrostatics (the les package)",
    "graph_longrange": "long-range electrostatics and fields (the graph_longrange package)",
}


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


def pickled_classes(path: str) -> List[Tuple[str, str]]:
    """(module, name) of every class or function a torch.save file's pickle refers to, in order of
    first reference (the saved object's own class first), read without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [archive.read(n) for n in archive.namelist() if n.endswith("data.pkl")]
    except (zipfile.BadZipFile, OSError):
        return []  # not torch's zip format: torch.load reports what it is
    found: List[Tuple[str, str]] = []
    for data in pickles:
        strings: List[str] = []  # the last two strings pushed: STACK_GLOBAL's module and name (protocol 4)
        try:
            for op, arg, _ in pickletools.genops(data):
                if op.name == "GLOBAL":
                    module, _, name = arg.partition(" ")
                    found.append((module, name))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append((strings[-2], strings[-1]))
                elif isinstance(arg, str):
                    strings = [*strings[-1:], arg]
        except ValueError:
            pass  # a damaged pickle: what was read so far is all there is to check
    return list(dict.fromkeys(found))


def refuse_unsupported_classes(path: str, classes: List[Tuple[str, str]]) -> None:
    """Refuses, before unpickling, files whose pickle names a model mace-deploy does not convert,
    with what that model is, also where its extension package is not installed (unpickling would
    fail with an unrelated message)."""
    for module, name in classes:
        if module.startswith("mace.") and name in REFUSED_CLASSES:
            raise UnsupportedModelError(f"not supported: '{path}' is a {REFUSED_CLASSES[name]} model; "
                                        f"mace-deploy converts {' and '.join(SUPPORTED_CLASSES)} models")
    for module, name in classes:
        package = module.split(".")[0]
        if package in REFUSED_PACKAGES:
            raise UnsupportedModelError(f"not supported: '{path}' uses {REFUSED_PACKAGES[package]} "
                                        f"({module}.{name})")


def require_importable(path: str, classes: List[Tuple[str, str]]) -> None:
    """Every class the pickle needs can be imported: names the missing package, or the mace-torch
    class that the installed mace-torch no longer has (blocks of releases before 0.3.13)."""
    import mace

    for module, name in classes:
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        package = module.split(".")[0]
        if importlib.util.find_spec(package) is None:
            raise UnsupportedModelError(f"'{path}' needs the Python package '{package}' ({module}.{name}), "
                                        "which is not installed")
        if package == "mace":
            try:
                found = hasattr(importlib.import_module(module), name)
            except ImportError:
                found = False
            if not found:
                raise UnsupportedModelError(
                    f"not supported: '{path}' uses {name} ({module}), which the installed mace-torch "
                    f"{getattr(mace, '__version__', '')} no longer has, so the model cannot be read")


def load_mace_model(path: str) -> torch.nn.Module:
    """Loads a mace-torch model file on the CPU, in eval mode."""
    if not os.path.exists(path):
        raise ModelFileError(f"model file '{path}' does not exist")
    if os.path.isdir(path):
        raise ModelFileError(f"'{path}' is a directory, not a mace-torch model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"'{path}' is not a mace-torch model file (those are zip archives written by torch.save, "
                             "as mace-torch's training writes its .model files)")
    classes = pickled_classes(path)
    refuse_unsupported_classes(path, classes)
    if any(module.startswith("cuequivariance") for module, _ in classes) and \
            importlib.util.find_spec("cuequivariance_torch") is None:
        raise UnsupportedModelError(
            f"'{path}' is a model in cuEquivariance layout: reading it (and converting it back to e3nn, which "
            "mace-deploy does at compile time, also on a CPU) needs cuequivariance-torch: pip install "
            "cuequivariance-torch")
    import_mace()
    require_importable(path, classes)
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


def is_cueq_layout(model: torch.nn.Module) -> bool:
    """Modules of cuequivariance-torch in the model (mace-torch's cueq_config, the cuEquivariance
    layout of linear maps, tensor products and symmetric contractions)."""
    return any(type(m).__module__.startswith("cuequivariance") for m in model.modules())


def e3nn_layout(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """The model itself, or for a cuEquivariance-layout model its e3nn twin made by mace-torch's
    own converter (`mace_cueq_to_e3nn`, which runs on the CPU): the same weights in the layout the
    converter reads."""
    if not is_cueq_layout(model):
        return model
    if type(model).__name__ != "ScaleShiftMACE":
        raise UnsupportedModelError(f"not supported: '{path}' is a {type(model).__name__} in cuEquivariance layout; "
                                    "mace-torch converts only ScaleShiftMACE models back to e3nn")
    from mace.cli.convert_cueq_e3nn import run as cueq_to_e3nn

    previous = torch.get_default_dtype()  # the converter sets the model's dtype as the default
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cueq_to_e3nn(model, device="cpu", return_model=True).eval()
    finally:
        torch.set_default_dtype(previous)
