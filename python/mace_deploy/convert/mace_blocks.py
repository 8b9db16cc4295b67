"""Conversion of mace-torch blocks (interactions, products, readouts, radial, ZBL) into the
modules of `mace_deploy.model`. Each function checks the block's type and refuses anything it
does not reproduce exactly, naming the component."""

import copy
from typing import List, Optional

import ase.data
import torch
from e3nn import o3

from ..errors import UnsupportedModelError
from ..model.interaction import (AgnosticInteraction, AttentionInteraction, Convolution, Gate, NonLinearInteraction,
                                 SpeciesConvolution)
from ..model.layers import AffineOutputMLP, ScalarMLP
from ..model.joint_embedding import CategoricalInput, ContinuousInput, JointEmbedding
from ..model.product import Product
from ..model.radial import RadialEmbedding, ZBLRepulsion
from ..model.readout import Readout
from . import e3nn_layers as layers
from .e3nn_layers import F64
from .symmetric_contraction import fold

AGNOSTIC_INTERACTIONS = {
    # class name: (residual, density)
    "RealAgnosticInteractionBlock": (False, False),
    "RealAgnosticResidualInteractionBlock": (True, False),
    "RealAgnosticDensityInteractionBlock": (False, True),
    "RealAgnosticDensityResidualInteractionBlock": (True, True),
}
NONLINEAR_INTERACTION = "RealAgnosticResidualNonLinearInteractionBlock"
ATTENTION_INTERACTION = "RealAgnosticAttResidualInteractionBlock"
SUPPORTED_INTERACTIONS = sorted(AGNOSTIC_INTERACTIONS) + [NONLINEAR_INTERACTION, ATTENTION_INTERACTION]


def _require_e3nn(module: torch.nn.Module, what: str) -> None:
    if "cuequivariance" in type(module).__module__:
        raise UnsupportedModelError(
            f"not supported: {what} is a cuequivariance module; convert the model back to e3nn with "
            "mace-torch's `mace_cueq_to_e3nn` first")
    if hasattr(module, "conv_fusion"):
        raise UnsupportedModelError(f"not supported: {what} with fused convolution (cueq/oeq conv_fusion)")


def convolution(block, dtype: torch.dtype) -> Convolution:
    """The convolution, its output in the order of `interleaved_components` (the linear reading it
    is built with interleaved_input=True)."""
    _require_e3nn(block.conv_tp, "the convolution tensor product")
    cg_index, cg_coeff, num_paths, num_out = layers.tensor_product_program(block.conv_tp)
    cg_index[:, 2] = layers.interleaved_components(block.conv_tp.irreps_out)[cg_index[:, 2]]
    return Convolution(cg_index, cg_coeff.to(dtype), num_paths, num_out)


def linear_after_convolution(lin, block, dtype: torch.dtype, **kwargs) -> layers.EquivariantLinear:
    """The linear reading the convolution's output, in the convolution's irreps (mace-torch <= 0.3.8
    declared them merged) and component order."""
    return layers.linear(lin, dtype, interleaved_input=True, input_irreps=block.conv_tp.irreps_out, **kwargs)


def regroup_first_convolution(first: torch.nn.Module, embedding: torch.Tensor) -> None:
    """Gives the first interaction the route by sender element (model/interaction.py,
    SpeciesConvolution) where its structure allows: the input is the element embedding (one
    scalar irrep), the radial MLP ends in a linear layer, and each path maps the harmonics of one
    degree to consecutive outputs with one coefficient. Otherwise it keeps the per-edge route."""
    if not isinstance(first, AgnosticInteraction) or not first.radial_mlp.linear_output:
        return
    conv = first.conv
    channels = embedding.shape[1]
    if first.radial_mlp.output_weight().shape[1] != conv.num_paths * channels:
        return
    k_in, k_sh, k_out, path = conv.cg_index.unbind(1)
    if bool((k_in != 0).any()):
        return
    tolerance = 4 * torch.finfo(conv.cg_coeff.dtype).eps
    blocks = []  # (first output, path, first harmonic, dimension, coefficient)
    for p in range(conv.num_paths):
        mine = torch.nonzero(path == p).squeeze(1)
        if len(mine) == 0:
            continue
        mine = mine[torch.argsort(k_sh[mine])]
        sh_p, out_p, coeff_p = k_sh[mine], k_out[mine], conv.cg_coeff[mine].to(F64)
        steps = torch.arange(len(mine))
        if (not torch.equal(sh_p, sh_p[0] + steps) or not torch.equal(out_p, out_p[0] + steps)
                or float((coeff_p - coeff_p[0]).abs().max()) > tolerance * abs(float(coeff_p[0]))):
            return
        blocks.append((int(out_p[0]), p, int(sh_p[0]), len(mine), float(coeff_p[0])))
    blocks.sort()
    if [b[0] for b in blocks] != [sum(b[3] for b in blocks[:i]) for i in range(len(blocks))] or \
            sum(b[3] for b in blocks) != conv.num_out_components:
        return
    first.add_species_convolution(SpeciesConvolution(
        embedding.unsqueeze(1), [b[1] for b in blocks], [b[2] for b in blocks], [b[3] for b in blocks],
        [b[4] for b in blocks]))


def radial_embedding(block, atomic_numbers: List[int], dtype: torch.dtype) -> RadialEmbedding:
    basis_fn = block.bessel_fn
    name = type(basis_fn).__name__
    covalent = torch.tensor([ase.data.covalent_radii[z] for z in atomic_numbers], dtype=F64)
    bessel_prefactor, gaussian_coeff = 0.0, 0.0
    if name == "BesselBasis":
        basis, weights = "bessel", basis_fn.bessel_weights
        bessel_prefactor = float(basis_fn.prefactor)
    elif name == "GaussianBasis":
        basis, weights, gaussian_coeff = "gaussian", basis_fn.gaussian_weights, float(basis_fn.coeff)
    elif name == "ChebychevBasis":
        basis, weights = "chebyshev", basis_fn.n.reshape(-1)
    else:
        raise UnsupportedModelError(f"not supported: radial basis {name}")
    transform, params = "", torch.zeros(0, dtype=F64)
    if hasattr(block, "distance_transform"):
        t = block.distance_transform
        tname = type(t).__name__
        if tname == "AgnesiTransform":
            transform = "Agnesi"
            params = torch.stack([t.q.detach(), t.p.detach(), t.a.detach()]).to(F64)
        elif tname == "SoftTransform":
            transform, params = "Soft", t.alpha.detach().reshape(1).to(F64)
        else:
            raise UnsupportedModelError(f"not supported: distance transform {tname}")
        covalent = t.covalent_radii.detach().to(F64)[torch.tensor(atomic_numbers)]
    apply_cutoff = getattr(block, "apply_cutoff", True)
    return RadialEmbedding(basis, weights.detach().to(dtype), bessel_prefactor, gaussian_coeff,
                           float(block.cutoff_fn.r_max), int(block.cutoff_fn.p), apply_cutoff, transform,
                           params.to(dtype), covalent.to(dtype))


def zbl(fn, atomic_numbers: List[int], dtype: torch.dtype) -> ZBLRepulsion:
    z = torch.tensor(atomic_numbers, dtype=torch.int64)
    def cast(t):  # keep float64 buffers exact; float32 artifacts compute in float32
        return t.detach() if dtype == F64 else t.detach().to(dtype)
    return ZBLRepulsion(cast(fn.c), cast(fn.a_exp), cast(fn.a_prefactor), int(fn.p), z,
                        cast(fn.covalent_radii)[z])


def interaction(block, num_elements: int, dtype: torch.dtype) -> torch.nn.Module:
    name = type(block).__name__
    for part in ("linear_up", "linear", "skip_tp", "linear_down", "skip_linear"):
        if hasattr(block, part):
            _require_e3nn(getattr(block, part), f"{name}.{part}")
    if name in AGNOSTIC_INTERACTIONS:
        residual, density = AGNOSTIC_INTERACTIONS[name]
        layers.channels(block.target_irreps, "interaction target")
        density_mlp = layers.scalar_mlp(block.density_fn, dtype) if density else None
        return AgnosticInteraction(
            layers.linear(block.linear_up, dtype), _weights_mlp(block.conv_tp_weights, dtype),
            convolution(block, dtype), linear_after_convolution(block.linear, block, dtype),
            layers.element_linear(block.skip_tp, num_elements, dtype), residual,
            float(block.avg_num_neighbors), density_mlp)
    if name == NONLINEAR_INTERACTION:
        return _nonlinear_interaction(block, num_elements, dtype)
    if name == ATTENTION_INTERACTION:
        return AttentionInteraction(
            layers.linear(block.linear_up, dtype), layers.linear(block.linear_down, dtype),
            _weights_mlp(block.conv_tp_weights, dtype), convolution(block, dtype),
            linear_after_convolution(block.linear, block, dtype), layers.linear(block.skip_linear, dtype),
            float(block.avg_num_neighbors))
    raise UnsupportedModelError(
        f"not supported: interaction block {name} (supported: {', '.join(SUPPORTED_INTERACTIONS)})")


def _weights_mlp(mlp, dtype: torch.dtype) -> ScalarMLP:
    """The radial MLP of a convolution's weights: its linear last layer runs inside the message passing."""
    converted = layers.scalar_mlp(mlp, dtype)
    if not converted.linear_output:
        raise UnsupportedModelError("not supported: a convolution's radial MLP whose last layer is not linear")
    return converted


def _affine_output_mlp(net: torch.nn.Sequential, dtype: torch.dtype) -> AffineOutputMLP:
    last = net[-1]
    if not isinstance(last, torch.nn.Linear) or last.bias is None:
        raise UnsupportedModelError(f"not supported: radial MLP ending in {last!r} (expected a Linear with bias)")
    return AffineOutputMLP(copy.deepcopy(net[:-1]).to(dtype), copy.deepcopy(last).to(dtype))


def _nonlinear_interaction(block, num_elements: int, dtype: torch.dtype) -> NonLinearInteraction:
    gate = block.equivariant_nonlin
    if getattr(gate, "_layout_is_ir_mul", False):
        raise UnsupportedModelError("not supported: gated non-linearity in ir_mul (cuequivariance) layout")
    target = block.irreps_out
    c = layers.channels(target, "interaction target")
    num_scalars = gate.irreps_scalars.num_irreps
    expected_offsets = [j * c for j in range(len(gate._gated_info))]
    if (gate._s_start, gate._g_start) != (0, num_scalars) or [g[4] for g in gate._gated_info] != expected_offsets:
        raise UnsupportedModelError(f"not supported: gated non-linearity layout {gate!r}")
    nonlin = block.irreps_nonlin  # (scalars + gates)x0e + gated irreps, sorted and simplified
    if nonlin[0].ir != o3.Irrep("0e") or any(ir.l == 0 for _, ir in nonlin[1:]):
        raise UnsupportedModelError(f"not supported: gated non-linearity with irreps {nonlin}")
    scalar_out, gated_out = [0], list(range(1, len(nonlin)))
    gated_block = [i for i, (_, ir) in enumerate(target) if ir.l > 0 for _ in range(ir.dim)]
    gated_block = torch.tensor([b - 1 for b in gated_block], dtype=torch.int64)
    scalar_act = layers.activation_name(gate._act_scalar)
    gate_act = layers.activation_name(gate._act_gate)
    return NonLinearInteraction(
        linear_up=layers.linear(block.linear_up, dtype),
        source_embedding=layers.embedding_table(block.source_embedding, num_elements).to(dtype),
        target_embedding=layers.embedding_table(block.target_embedding, num_elements).to(dtype),
        radial_mlp=_affine_output_mlp(block.conv_tp_weights.net, dtype),
        density_mlp=copy.deepcopy(block.density_fn.net).to(dtype),
        conv=convolution(block, dtype),
        linear_1_scalars=linear_after_convolution(block.linear_1, block, dtype, keep_output=scalar_out),
        linear_1_gated=linear_after_convolution(block.linear_1, block, dtype, keep_output=gated_out),
        linear_res_scalars=layers.linear(block.linear_res, dtype, keep_output=scalar_out),
        linear_res_gated=layers.linear(block.linear_res, dtype, keep_output=gated_out),
        gate=Gate(num_scalars, scalar_act, float(gate._scalar_cst), gate_act, float(gate._gate_cst), gated_block),
        linear_2=layers.linear(block.linear_2, dtype),
        skip=layers.linear(block.skip_tp, dtype),
        alpha=float(block.alpha.detach()), beta=float(block.beta.detach()),
    )


def product(block, dtype: torch.dtype) -> Product:
    _require_e3nn(block.linear, "product linear")
    monomials, coefficients, num_out = fold(block.symmetric_contractions)
    agnostic = bool(getattr(block, "use_agnostic_product", False))
    return Product(monomials, coefficients.to(dtype), num_out, agnostic, layers.linear(block.linear, dtype),
                   bool(block.use_sc))


def readout(block, head: int, num_heads: int, dtype: torch.dtype) -> Readout:
    """The readout of one head: other heads' hidden units are masked out in mace-torch, so only
    this head's block of hidden channels and its output column are kept."""
    name = type(block).__name__
    out = slice(head, head + 1)
    if name == "LinearReadoutBlock":
        return Readout([layers.linear(block.linear, dtype, out_channels=out)], "", 1.0)
    if name not in ("NonLinearReadoutBlock", "NonLinearBiasReadoutBlock"):
        raise UnsupportedModelError(f"not supported: readout block {name}")
    (act,) = block.non_linearity.acts
    act_name, act_scale = layers.normalized_activation(act)
    hidden = block.hidden_irreps.dim // num_heads
    mine = slice(head * hidden, (head + 1) * hidden)
    linears = [layers.linear(block.linear_1, dtype, out_channels=mine)]
    if name == "NonLinearBiasReadoutBlock":
        linears.append(layers.linear(block.linear_mid, dtype, in_channels=mine, out_channels=mine))
    linears.append(layers.linear(block.linear_2, dtype, in_channels=mine, out_channels=out))
    return Readout(linears, act_name, act_scale)


# Per-structure inputs the hosts pass (ASE atoms.info "charge" / "spin", LAMMPS `charge` / `spin`,
# OpenMM setCharge / setSpinMultiplicity), with mace-torch's defaults where a structure has none.
GRAPH_INPUT_DEFAULTS = {"total_charge": 0.0, "total_spin": 1.0}


def _embedder(name: str, spec: dict, embedder: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    kind = spec.get("type")
    if kind == "categorical":
        return CategoricalInput(name, embedder.weight.detach().to(dtype), float(spec.get("offset", 0)))
    if kind == "continuous" and embedder[0].in_features == 1:
        def bias(layer):
            return layer.bias.detach() if layer.bias is not None else torch.zeros(layer.out_features)
        first, second = embedder[0], embedder[2]
        return ContinuousInput(name, first.weight.detach().to(dtype), bias(first).to(dtype),
                               second.weight.detach().to(dtype), bias(second).to(dtype))
    raise UnsupportedModelError(f"not supported: embedding of '{name}' of type {kind} ({spec})")


def joint_embedding(model, dtype: torch.dtype) -> JointEmbedding:
    """mace-torch `GenericJointEmbedding` of per-structure total charge and spin (MACE-OMOL)."""
    inputs = []
    for name, spec in model.embedding_specs.items():
        if name not in GRAPH_INPUT_DEFAULTS or spec.get("per") != "graph":
            raise UnsupportedModelError(
                f"not supported: embedded input '{name}' (per {spec.get('per')}); mace-deploy passes the "
                f"per-structure {' and '.join(GRAPH_INPUT_DEFAULTS)}")
        inputs.append(_embedder(name, spec, model.joint_embedding.embedders[name], dtype))
    projection, act = model.joint_embedding.project
    if projection.bias is not None or not isinstance(act, torch.nn.SiLU):
        raise UnsupportedModelError(f"not supported: joint embedding projection {model.joint_embedding.project}")
    return JointEmbedding(inputs, projection.weight.detach().to(dtype))
