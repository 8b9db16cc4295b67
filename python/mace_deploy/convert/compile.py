"""mace-torch model(s) -> mace-deploy artifact (a TorchScript `MACEModel`, or `Committee` of them, with metadata)."""

import itertools
import os
import tempfile
import zlib
from dataclasses import dataclass
from typing import List, Optional

import torch

from .. import _C, __version__
from ..descriptors import descriptor_columns
from ..errors import OutputPathError, SelfCheckError, UnknownHeadError, UnsupportedModelError
from ..model import Committee, MACEModel
from . import mace_blocks
from .e3nn_layers import F64, embedding_table
from .source import e3nn_layout, load_mace_model, model_heads, sha256

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class CompileResult:
    path: str
    head: str
    heads: List[str]
    dtype: str
    atomic_numbers: List[int]
    r_max: float
    num_interactions: int
    self_check_error: Optional[float]  # largest relative difference from mace-torch; None: not checked
    members: List[str]  # a committee's member model files; empty for one model


def choose_head(heads: List[str], requested: Optional[str]) -> str:
    """The requested head, the only head, or the one called 'default' (mace-torch's rule)."""
    if requested is not None:
        if requested not in heads:
            raise UnknownHeadError(f"head '{requested}' is not in this model; its heads are: {', '.join(heads)}")
        return requested
    if len(heads) == 1:
        return heads[0]
    defaults = [h for h in heads if h.lower() == "default"]
    if defaults:
        return defaults[0]
    raise UnknownHeadError(f"this model has several heads ({', '.join(heads)}); choose one with --head")


def _check_model_level(model) -> None:
    sh = model.spherical_harmonics
    if not (sh.normalize and sh.normalization == "component" and sh._is_range_lmax and sh._lmax <= 3):
        raise UnsupportedModelError(f"not supported: spherical harmonics {sh.irreps_out} "
                                    f"(normalize={sh.normalize}, normalization={sh.normalization})")
    if len(model.interactions) != len(model.products):
        raise UnsupportedModelError("not supported: different numbers of interaction and product blocks")


def _per_head(values: torch.Tensor, head: int) -> torch.Tensor:
    return torch.atleast_1d(values.detach().to(F64))[head] if values.numel() > 1 else values.detach().to(F64).reshape(())


def build(model, head_name: str, dtype: torch.dtype) -> MACEModel:
    """Own TorchScript-able modules with the weights of a loaded mace-torch model."""
    _check_model_level(model)
    heads = model_heads(model)
    head = heads.index(head_name)
    atomic_numbers = [int(z) for z in model.atomic_numbers]
    num_elements = len(atomic_numbers)

    interactions = [mace_blocks.interaction(b, num_elements, dtype) for b in model.interactions]
    products = [mace_blocks.product(b, dtype) for b in model.products]
    readouts = [mace_blocks.readout(b, head, len(heads), dtype) for b in model.readouts]
    readout_layers = [len(products) - 1] if len(readouts) == 1 else list(range(len(readouts)))
    zbl = mace_blocks.zbl(model.pair_repulsion_fn, atomic_numbers, dtype) if hasattr(model, "pair_repulsion_fn") else None

    e0 = torch.atleast_2d(model.atomic_energies_fn.atomic_energies.detach().to(F64)).T[:, head]
    if hasattr(model, "scale_shift"):
        scale = float(_per_head(model.scale_shift.scale, head))
        shift = float(_per_head(model.scale_shift.shift, head))
    else:
        scale, shift = 1.0, 0.0

    embedding = embedding_table(model.node_embedding.linear, num_elements).to(dtype)
    joint = mace_blocks.joint_embedding(model, dtype) if hasattr(model, "joint_embedding") else None
    embedding_readout = None
    if hasattr(model, "embedding_readout"):
        embedding_readout = mace_blocks.readout(model.embedding_readout, head, len(heads), dtype)
    if joint is None:  # with per-structure inputs a sender's features are not those of its element alone
        mace_blocks.regroup_first_convolution(interactions[0], embedding)
    deployed = MACEModel(
        embedding=embedding,
        radial=mace_blocks.radial_embedding(model.radial_embedding, atomic_numbers, dtype),
        sh_lmax=int(model.spherical_harmonics._lmax),
        interactions=interactions, products=products, readouts=readouts, readout_layers=readout_layers,
        zbl=zbl, e0=e0, scale=scale, shift=shift, joint_embedding=joint, embedding_readout=embedding_readout)
    deployed.format_version = int(_C.FORMAT_VERSION)  # the version this build's runtime reads
    deployed.weights_crc32 = 0  # computed on the scripted module (weights_crc32 below)
    deployed.ops_version = int(torch.ops.mace_deploy.ops_version())
    deployed.mace_deploy_version = __version__
    deployed.r_max = float(model.r_max)
    deployed.atomic_numbers = atomic_numbers
    deployed.num_interactions = len(interactions)
    deployed.halo_feature_sizes = [int(b.linear.irreps_out.dim) for b in model.products[:-1]]
    deployed.dtype = "float64" if dtype == torch.float64 else "float32"
    deployed.head = head_name
    deployed.heads = heads
    deployed.e0s = [float(v) for v in e0]
    deployed.model_class = type(model).__name__
    deployed.graph_inputs = list(model.embedding_specs) if joint is not None else []
    deployed.graph_input_defaults = [mace_blocks.GRAPH_INPUT_DEFAULTS[name] for name in deployed.graph_inputs]
    deployed.graph_input_bounds = [float(b) for embed in (joint.inputs if joint is not None else [])
                                   for b in embed.bounds()]
    deployed.members = []
    _set_feature_metadata(deployed, [b.linear.irreps_out for b in model.products])
    return deployed.eval()


def _set_feature_metadata(deployed, layer_irreps) -> None:
    """What `energies_and_features` returns: each layer's irreps (every irrep with the layer's
    channels, the layout of the product's [N, K, C] output), and the columns of mace-torch's
    invariant descriptors of all layers (for the hosts' descriptor outputs)."""
    deployed.feature_irreps = [str(irreps) for irreps in layer_irreps]
    deployed.feature_irrep_dims = [[ir.dim for _, ir in irreps] for irreps in layer_irreps]
    deployed.descriptor_columns = [int(c) for c in descriptor_columns(deployed.feature_irreps)]


def weights_crc32(module: torch.jit.ScriptModule) -> int:
    """CRC-32 of each parameter's and buffer's name and bytes in the module's order, as the
    runtime recomputes it at load (csrc/runtime/checksum.h)."""
    crc = 0
    for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy(), crc)
    return crc


def check_output_path(path: str) -> None:
    """The artifact can be written at `path` (checked before the conversion, which takes a while)."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputPathError(f"output '{path}' is a directory; give the artifact's file name (e.g. model.mace.pt)")
    if not os.path.isdir(parent):
        raise OutputPathError(f"cannot write '{path}': the directory '{parent}' does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"cannot write '{path}': no write permission in '{parent}'")


def compile_model(model_path: str, output_path: str, dtype: str = "float64",
                  head: Optional[str] = None, check: bool = True) -> CompileResult:
    """Reads a mace-torch .model file and writes the TorchScript artifact to `output_path`;
    `check`: only if it reproduces mace-torch on a structure with every element (`_save_checked`)."""
    return compile_models([model_path], output_path, dtype, head, check)


def compile_models(model_paths: List[str], output_path: str, dtype: str = "float64",
                   head: Optional[str] = None, check: bool = True) -> CompileResult:
    """One model file gives a model artifact; several give a committee (model/committee.py) of
    models with the same elements, cutoff and per-structure inputs, each checked like one model."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not '{dtype}'")
    check_output_path(output_path)
    sources = [load_mace_model(path) for path in model_paths]
    heads = [model_heads(source) for source in sources]
    head_names = [choose_head(h, head) for h in heads]
    members = []
    for path, source, head_name in zip(model_paths, sources, head_names):
        member = build(e3nn_layout(source, path), head_name, DTYPES[dtype])
        member.source_file = str(path)
        member.source_sha256 = sha256(path)
        member.mace_torch_version = _mace_torch_version()
        members.append(member)
    deployed = members[0] if len(members) == 1 else committee(members)
    scripted = torch.jit.script(deployed)
    scripted.weights_crc32 = weights_crc32(scripted)
    self_check_error = None
    if check:
        self_check_error = _save_checked(scripted, output_path, list(zip(sources, head_names)), dtype)
    else:
        torch.jit.save(scripted, output_path)
    return CompileResult(output_path, head_names[0], heads[0], dtype, list(deployed.atomic_numbers), deployed.r_max,
                         deployed.num_interactions, self_check_error, list(deployed.members))


def committee(members: List[MACEModel]) -> Committee:
    """The committee of models built for the same graph; refuses members that need another one."""
    first = members[0]
    for member in members[1:]:
        mismatch = _graph_mismatch(first, member)
        if mismatch:
            raise UnsupportedModelError(f"not supported: a committee of models with different {mismatch} "
                                        f"({first.source_file} and {member.source_file}); its members must "
                                        "evaluate the same graph")
    deployed = Committee(members)
    for key in ("format_version", "weights_crc32", "ops_version", "mace_deploy_version", "r_max", "atomic_numbers",
                "dtype", "head", "heads", "e0s", "mace_torch_version", "graph_inputs", "graph_input_defaults",
                "graph_input_bounds"):
        setattr(deployed, key, getattr(first, key))
    deployed.num_interactions = max(m.num_interactions for m in members)
    deployed.halo_feature_sizes = [size for m in members for size in m.halo_feature_sizes]
    deployed.model_class = f"Committee of {len(members)} ({', '.join(m.model_class for m in members)})"
    deployed.members = [m.source_file for m in members]
    deployed.source_file = ", ".join(m.source_file for m in members)
    deployed.source_sha256 = ", ".join(m.source_sha256 for m in members)
    same_features = all(m.feature_irreps == first.feature_irreps for m in members)
    deployed.feature_irreps = list(first.feature_irreps) if same_features else []
    deployed.feature_irrep_dims = [list(d) for d in first.feature_irrep_dims] if same_features else []
    deployed.descriptor_columns = list(first.descriptor_columns) if same_features else []
    return deployed.eval()


def _graph_mismatch(a: MACEModel, b: MACEModel) -> str:
    """What of the graph two models read differently ("" if nothing)."""
    from ase.data import chemical_symbols

    if a.atomic_numbers != b.atomic_numbers:
        symbols = [" ".join(chemical_symbols[z] for z in m.atomic_numbers) for m in (a, b)]
        return f"elements ({symbols[0]} and {symbols[1]})"
    if a.r_max != b.r_max:
        return f"cutoffs ({a.r_max:g} and {b.r_max:g} A)"
    if a.graph_inputs != b.graph_inputs or a.graph_input_defaults != b.graph_input_defaults:
        return f"per-structure inputs ({a.graph_inputs or 'none'} and {b.graph_inputs or 'none'})"
    return ""


def _save_checked(scripted: torch.jit.ScriptModule, output_path: str, references, dtype: str) -> float:
    """Saves the artifact beside `output_path`, evaluates it (each member of a committee) against
    mace-torch on a periodic box with every element of the model, and only then moves it to
    `output_path`: an artifact that fails or disagrees is never written (an existing file there is
    left as it was). `references`: (mace-torch model, head) of each member. Returns the largest
    relative difference."""
    from ..ase import MACEDeployCalculator
    from ..structures import self_check_structure
    from ..verify import TOLERANCE, compare_calculators, reference_calculator

    directory = os.path.dirname(os.path.abspath(output_path))
    worst = 0.0
    with tempfile.TemporaryDirectory(dir=directory, prefix=".mace-deploy-") as scratch:
        unchecked = os.path.join(scratch, "unchecked.mace.pt")
        torch.jit.save(scripted, unchecked)
        structure = self_check_structure(scripted.atomic_numbers)
        for index, (model, head) in enumerate(references):
            member = index if len(references) > 1 else None
            which = f"member {index + 1} ({scripted.members[index]}) of " if member is not None else ""
            try:
                (row,) = compare_calculators(MACEDeployCalculator(unchecked, member=member),
                                             reference_calculator(model, head), {"self-check": structure})
            except Exception as e:  # any failure of the new artifact is the check's finding
                reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise SelfCheckError(f"self-check failed: {which}the compiled model cannot be evaluated "
                                     f"({type(e).__name__}: {reason}); nothing was written. {_REPORT}") from None
            if not row.worst() <= TOLERANCE[dtype]:
                raise SelfCheckError(
                    f"self-check failed: {which}the compiled model differs from mace-torch by {row.worst():.1e} "
                    f"(relative; tolerance {TOLERANCE[dtype]:.0e}) on a {row.num_atoms}-atom periodic box with every "
                    f"element; nothing was written. {_REPORT}")
            worst = max(worst, row.worst())
        os.replace(unchecked, output_path)
    return worst


_REPORT = "Please report this model's mace-torch version; --no-check writes the artifact without the check."


def _mace_torch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mace-torch")
    except PackageNotFoundError:
        return "unknown"
