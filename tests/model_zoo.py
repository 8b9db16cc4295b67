"""Small random-weight mace-torch models and test structures for parity testing.

Plain importable module (no pytest fixtures, no printing).

Models are built the way mace-torch's training script builds them
(``mace.tools.model_script_utils._build_model``): ``ScaleShiftMACE`` with
interaction classes looked up in ``mace.modules.interaction_classes``, gates in
``mace.modules.gate_dict``, ``MLP_irreps`` given *per head* (the model itself
multiplies it by ``len(heads)``) and atomic energies of shape
``[n_heads, n_elements]`` (what ``run_train``'s ``dict_to_array`` produces).
Every trainable floating-point parameter is then perturbed with seeded noise so
that paths that mace-torch zero- or tiny-initialises (readout biases, the
element embeddings and ``beta`` of ``RealAgnosticResidualNonLinearInteractionBlock``,
LayerNorm biases, ...) carry signal, and a few configs rescale whole parameter
groups (readout output layers, embedding, first radial-MLP layer) so forces on
the structures below are O(0.1-10) eV/A.  Buffers (U matrices, scale/shift,
E0s, radial constants) are left exactly as constructed.

Notes on mace-torch 0.3.16 defaults (see ``mace/tools/arg_parser.py``):

* ``--interaction`` and ``--interaction_first`` both default to
  ``RealAgnosticResidualInteractionBlock``.  ``--model`` defaults to ``MACE``,
  which ``_build_model`` turns into a ``ScaleShiftMACE`` with shift 0 and forces
  ``interaction_first`` to ``RealAgnosticInteractionBlock`` unless it is one of
  the two non-residual blocks (config ``train_default_mace``).
* ``--use_reduced_cg`` defaults to ``False`` in the CLI, while the
  ``MACE.__init__`` keyword defaults to ``True``.  Either way the flag only has
  a numerical effect when ``cuequivariance_torch`` is importable
  (``SymmetricContractionWrapper`` does ``use_reduced_cg and CUET_AVAILABLE``).
* The training script never passes ``readout_cls`` or ``keep_last_layer_irreps``;
  those are constructor-only options (configs ``readout_bias``,
  ``keep_last_layer_irreps``, ``mh1_like``).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, List

import numpy as np
import torch

from ase import Atoms
from ase.build import bulk, fcc111, add_adsorbate, molecule as ase_molecule
from ase.neighborlist import neighbor_list

__all__ = [
    "BASE",
    "CONFIGS",
    "HEADS",
    "config",
    "make_model",
    "save_model",
    "molecule",
    "crystal",
    "small_triclinic",
    "slab",
    "water_box",
    "STRUCTURES",
]

# --------------------------------------------------------------------------- #
# Configurations
# --------------------------------------------------------------------------- #

# Keys are ScaleShiftMACE / MACE constructor keywords, except:
#   "model_class"         "ScaleShiftMACE" (default) or "MACE"
#   "noise"               relative size of the seeded parameter perturbation
#   "radial_input_scale"  factor applied (after the perturbation) to the first
#                         layer weights of every radial MLP; used to keep the
#                         unbounded Chebyshev basis from blowing up energies
#   "readout_gain"        factor applied (after the perturbation) to the output
#                         layer of every readout; untrained MACE readouts give
#                         forces of ~0.1-1 eV/A, the gain brings them to O(1)
#   "embedding_gain"      factor applied to the element-embedding weights (the
#                         1/sqrt(n_elements) normalisation makes node features
#                         tiny for 89-element models)
# Classes / gates are given by name and resolved through mace.modules'
# interaction_classes / readout_classes / gate_dict, so CONFIGS is plain data.
# "atomic_energies" is a nested list; shape [n_heads, n_elements] (as run_train
# produces) or [n_elements] (as older foundation-model files hold).

BASE: Dict[str, Any] = {
    "model_class": "ScaleShiftMACE",
    "r_max": 4.5,
    "num_bessel": 6,
    "num_polynomial_cutoff": 5,
    "max_ell": 2,
    "interaction_cls_first": "RealAgnosticResidualInteractionBlock",
    "interaction_cls": "RealAgnosticResidualInteractionBlock",
    "num_interactions": 2,
    "hidden_irreps": "8x0e+8x1o",
    "MLP_irreps": "8x0e",
    "atomic_numbers": [1, 6, 8, 29],  # H C O Cu
    "atomic_energies": [[-1.2, -5.3, -4.1, -3.7]],
    "avg_num_neighbors": 8.0,
    "correlation": 3,
    "gate": "silu",
    "pair_repulsion": False,
    "apply_cutoff": True,
    "use_reduced_cg": False,
    "use_so3": False,
    "use_agnostic_product": False,
    "use_last_readout_only": False,
    "distance_transform": "None",
    "edge_irreps": None,
    "use_edge_irreps_first": False,
    "radial_MLP": [16, 16],
    "radial_type": "bessel",
    "heads": None,
    "readout_cls": "NonLinearReadoutBlock",
    "keep_last_layer_irreps": False,
    "atomic_inter_scale": 1.3,
    "atomic_inter_shift": 0.2,
    "noise": 0.2,
    "radial_input_scale": 1.0,
    "readout_gain": 3.0,
    "embedding_gain": 1.0,
}

# Two-head setup used by the multi-head configs.
HEADS = ["pbe", "r2scan"]
_MH = {
    "heads": HEADS,
    "atomic_energies": [[-1.2, -5.3, -4.1, -3.7], [-1.5, -6.1, -4.8, -2.9]],
    "atomic_inter_scale": [1.3, 0.8],
    "atomic_inter_shift": [0.2, -0.15],
}

_NL = "RealAgnosticResidualNonLinearInteractionBlock"

CONFIGS: Dict[str, Dict[str, Any]] = {
    # BASE as is: ScaleShiftMACE, Residual first+later, max_ell 2, L=1 hidden, correlation 3, 2 layers.
    "base": {},
    # plain mace.modules.MACE class (no scale/shift block; E0 + pair + readouts summed directly).
    "plain_mace": {"model_class": "MACE"},
    # what `mace_run_train --model MACE` (the CLI default) builds: ScaleShiftMACE, shift 0, Agnostic first layer.
    "train_default_mace": {
        "interaction_cls_first": "RealAgnosticInteractionBlock",
        "atomic_inter_shift": 0.0,
        "readout_gain": 6.0,
    },
    # RealAgnosticInteractionBlock as first and later layers (no residual sc; skip_tp after message).
    "inter_agnostic": {
        "interaction_cls_first": "RealAgnosticInteractionBlock",
        "interaction_cls": "RealAgnosticInteractionBlock",
        "readout_gain": 10.0,
    },
    # RealAgnosticResidualInteractionBlock first and later (explicit name; same as base).
    "inter_residual": {
        "interaction_cls_first": "RealAgnosticResidualInteractionBlock",
        "interaction_cls": "RealAgnosticResidualInteractionBlock",
    },
    # RealAgnosticDensityInteractionBlock first and later (density normalisation, no residual).
    "inter_density": {
        "interaction_cls_first": "RealAgnosticDensityInteractionBlock",
        "interaction_cls": "RealAgnosticDensityInteractionBlock",
    },
    # RealAgnosticDensityResidualInteractionBlock first and later.
    "inter_density_residual": {
        "interaction_cls_first": "RealAgnosticDensityResidualInteractionBlock",
        "interaction_cls": "RealAgnosticDensityResidualInteractionBlock",
    },
    # RealAgnosticResidualNonLinearInteractionBlock first+later, edge_irreps unset (defaults to node irreps).
    "inter_nonlinear": {
        "interaction_cls_first": _NL,
        "interaction_cls": _NL,
    },
    # NonLinear block with explicit edge_irreps (L=2, wider than hidden) in later layers only.
    "inter_nonlinear_edge_irreps": {
        "interaction_cls_first": _NL,
        "interaction_cls": _NL,
        "edge_irreps": "8x0e+8x1o+8x2e",
    },
    # NonLinear block with edge_irreps and use_edge_irreps_first (first layer gets "Nx0e" edge irreps).
    "inter_nonlinear_edge_first": {
        "interaction_cls_first": _NL,
        "interaction_cls": _NL,
        "edge_irreps": "12x0e+12x1o+12x2e",
        "use_edge_irreps_first": True,
    },
    # RealAgnosticAttResidualInteractionBlock in later layers (Residual first; Att is not a CLI first choice).
    "inter_att": {
        "interaction_cls_first": "RealAgnosticResidualInteractionBlock",
        "interaction_cls": "RealAgnosticAttResidualInteractionBlock",
    },
    # Att block also as the first layer (constructor allows it, CLI does not); larger
    # avg_num_neighbors because with 8.0 the energy explodes on the dense Cu crystal.
    "inter_att_first": {
        "interaction_cls_first": "RealAgnosticAttResidualInteractionBlock",
        "interaction_cls": "RealAgnosticAttResidualInteractionBlock",
        "avg_num_neighbors": 24.0,
    },
    # Mixed: Density first, Residual later, 3 layers.
    "inter_mixed": {
        "interaction_cls_first": "RealAgnosticDensityInteractionBlock",
        "interaction_cls": "RealAgnosticResidualInteractionBlock",
        "num_interactions": 3,
    },
    # MH-1-like: NonLinear blocks, edge irreps (+first), bias readout, agnostic product, last readout only,
    # Agnesi + ZBL, 3 heads; heads 2/3 carry total-energy-scale E0s (~-45000 eV for Cu; mind float32 tolerances).
    "mh1_like": {
        "interaction_cls_first": _NL,
        "interaction_cls": _NL,
        "hidden_irreps": "16x0e+16x1o",
        "edge_irreps": "8x0e+8x1o+8x2e",
        "use_edge_irreps_first": True,
        "readout_cls": "NonLinearBiasReadoutBlock",
        "use_agnostic_product": True,
        "use_last_readout_only": True,
        "heads": ["omat_pbe", "omol", "spice"],
        "atomic_energies": [
            [-1.2, -5.3, -4.1, -3.7],
            [-13.6, -1029.8, -2042.6, -45000.1],
            [-13.5, -1030.1, -2043.0, -45001.0],
        ],
        "atomic_inter_scale": [1.1, 0.7, 0.9],
        "atomic_inter_shift": [0.05, -0.1, 0.3],
        "distance_transform": "Agnesi",
        "pair_repulsion": True,
        "readout_gain": 8.0,
    },
    # NonLinearBiasReadoutBlock as last readout (linear_mid with biases).
    "readout_bias": {"readout_cls": "NonLinearBiasReadoutBlock"},
    # NonLinearReadoutBlock as last readout, explicitly (mace-torch default; same as base).
    "readout_default": {"readout_cls": "NonLinearReadoutBlock"},
    # use_last_readout_only=True: only the last layer's readout contributes energy.
    "last_readout_only": {"use_last_readout_only": True},
    # keep_last_layer_irreps=True: last product keeps full hidden irreps instead of scalars only.
    "keep_last_layer_irreps": {"keep_last_layer_irreps": True},
    # correlation order 1 (linear in A-basis, body order 2).
    "correlation_1": {"correlation": 1},
    # correlation order 2.
    "correlation_2": {"correlation": 2},
    # correlation order 3 (explicit; same as base).
    "correlation_3": {"correlation": 3},
    # per-layer correlation list [3, 2].
    "correlation_list": {"correlation": [3, 2]},
    # per-layer correlation list over 3 layers [1, 3, 2].
    "correlation_list_3layers": {"correlation": [1, 3, 2], "num_interactions": 3},
    # max_ell 1 spherical harmonics.
    "max_ell_1": {"max_ell": 1},
    # max_ell 3 spherical harmonics.
    "max_ell_3": {"max_ell": 3},
    # scalar-only hidden irreps "8x0e" (invariant MACE).
    "hidden_scalar": {"hidden_irreps": "8x0e"},
    # hidden irreps "8x0e+8x1o" (explicit; same as base).
    "hidden_l1": {"hidden_irreps": "8x0e+8x1o"},
    # hidden irreps "8x0e+8x1o+8x2e".
    "hidden_l2": {"hidden_irreps": "8x0e+8x1o+8x2e"},
    # hidden irreps with odd-parity scalars/even vectors (all-parity interaction irreps branch).
    "hidden_mixed_parity": {"hidden_irreps": "8x0e+8x0o+8x1o+8x1e"},
    # single interaction layer (hidden_irreps_out = scalars only from the start).
    "num_interactions_1": {"num_interactions": 1},
    # two interaction layers (explicit; same as base).
    "num_interactions_2": {"num_interactions": 2},
    # three interaction layers (middle layer keeps full hidden irreps, extra LinearReadoutBlock).
    "num_interactions_3": {"num_interactions": 3},
    # use_reduced_cg=True (model default; only changes U matrices if cuequivariance_torch is installed).
    "reduced_cg_true": {"use_reduced_cg": True},
    # use_reduced_cg=False (CLI default; explicit; same as base).
    "reduced_cg_false": {"use_reduced_cg": False},
    # element-agnostic product basis (symmetric contraction with num_elements=1).
    "agnostic_product": {"use_agnostic_product": True},
    # use_so3=True: spherical harmonics / interaction irreps with p=1.
    "use_so3": {"use_so3": True, "hidden_irreps": "8x0e+8x1e"},
    # Bessel radial basis (explicit; same as base).
    "radial_bessel": {"radial_type": "bessel"},
    # Gaussian radial basis.
    "radial_gaussian": {"radial_type": "gaussian"},
    # Chebyshev radial basis: T_n(r) of the raw distance is O(10^2-10^3), so 4 functions + scaled radial-MLP input.
    "radial_chebyshev": {"radial_type": "chebyshev", "num_bessel": 4, "radial_input_scale": 3e-3},
    # Chebyshev basis after the Agnesi transform (argument in (0, 1), bounded T_n; no rescaling needed).
    "radial_chebyshev_agnesi": {"radial_type": "chebyshev", "distance_transform": "Agnesi"},
    # Agnesi distance transform (covalent-radius based) before the radial basis.
    "transform_agnesi": {"distance_transform": "Agnesi"},
    # Soft (tanh) distance transform before the radial basis.
    "transform_soft": {"distance_transform": "Soft"},
    # ZBL pair repulsion (pair_repulsion=True).
    "pair_repulsion": {"pair_repulsion": True},
    # apply_cutoff=False: radial basis un-enveloped; cutoff multiplied into the TP weights instead.
    "no_apply_cutoff": {"apply_cutoff": False},
    # apply_cutoff=False with the density blocks (cutoff also multiplies edge densities).
    "no_apply_cutoff_density": {
        "apply_cutoff": False,
        "interaction_cls_first": "RealAgnosticDensityInteractionBlock",
        "interaction_cls": "RealAgnosticDensityResidualInteractionBlock",
    },
    # tanh gate in the non-linear readout.
    "gate_tanh": {"gate": "tanh"},
    # gate None (identity activation) in the non-linear readout.
    "gate_none": {"gate": "None"},
    # two heads ["pbe", "r2scan"], per-head E0s [2, n_el], per-head scale/shift; MLP_irreps x2 inside model.
    "multihead": dict(_MH),
    # two heads with NonLinearBiasReadoutBlock (head masking applied twice).
    "multihead_bias_readout": dict(_MH, readout_cls="NonLinearBiasReadoutBlock"),
    # two heads on the plain MACE class.
    "multihead_plain_mace": {
        "model_class": "MACE",
        "heads": HEADS,
        "atomic_energies": _MH["atomic_energies"],
    },
    # float E0 array of shape [n_elements] (1-D, as in older files) on single head.
    "e0_1d": {"atomic_energies": [-1.2, -5.3, -4.1, -3.7]},
    # MACE-OMOL-like per-structure inputs: categorical embeddings of total charge (offset: negative
    # charges) and spin multiplicity added to the first layer's features, plus their energy readout.
    "joint_embedding": {
        "embedding_specs": {
            "total_charge": {"type": "categorical", "per": "graph", "emb_dim": 8, "num_classes": 21, "offset": 10},
            "total_spin": {"type": "categorical", "per": "graph", "emb_dim": 8, "num_classes": 11},
        },
        "use_embedding_readout": True,
    },
    # A continuous charge embedding (linear-silu-linear of the value), no energy readout, L=2 features.
    "joint_embedding_continuous": {
        "hidden_irreps": "8x0e+8x1o+8x2e",
        "embedding_specs": {
            "total_charge": {"type": "continuous", "per": "graph", "emb_dim": 6, "in_dim": 1},
            "total_spin": {"type": "categorical", "per": "graph", "emb_dim": 4, "num_classes": 6},
        },
    },
    # MACE-MP-0-medium-like layout, small: 89 elements, L=1 hidden features, max_ell 3, corr 3, r_max 6,
    # a non-residual first block (RealAgnosticInteractionBlock) then residual ones, 1-D E0s.
    "mp0_like": {
        "r_max": 6.0,
        "num_bessel": 10,
        "max_ell": 3,
        "hidden_irreps": "8x0e+8x1o",
        "MLP_irreps": "16x0e",
        "interaction_cls_first": "RealAgnosticInteractionBlock",
        "radial_MLP": [16, 16, 16],
        "avg_num_neighbors": 30.0,
        "embedding_gain": 4.0,
        "readout_gain": 15.0,
        "atomic_numbers": list(range(1, 90)),
        "atomic_energies": [
            float(round(-0.7 - 2.0 * abs(np.cos(0.3 * z)) - 0.03 * z, 4)) for z in range(1, 90)
        ],
    },
    # MACE-MP-0-small-like: 89 elements, 16x0e, max_ell 3, corr 3, r_max 6, 10 Bessel, 1-D E0s
    # (embedding/readout gains compensate the 1/sqrt(89) embedding normalisation).
    "foundation_like": {
        "r_max": 6.0,
        "num_bessel": 10,
        "num_polynomial_cutoff": 5,
        "max_ell": 3,
        "hidden_irreps": "16x0e",
        "MLP_irreps": "16x0e",
        "correlation": 3,
        "num_interactions": 2,
        "interaction_cls_first": "RealAgnosticResidualInteractionBlock",
        "interaction_cls": "RealAgnosticResidualInteractionBlock",
        "radial_MLP": [16, 16, 16],
        "avg_num_neighbors": 12.0,
        "embedding_gain": 4.0,
        "readout_gain": 15.0,
        "atomic_numbers": list(range(1, 90)),
        "atomic_energies": [
            float(round(-0.5 - 3.0 * abs(np.sin(0.7 * z)) - 0.02 * z, 4)) for z in range(1, 90)
        ],
        "atomic_inter_scale": 0.8,
        "atomic_inter_shift": -0.05,
    },
}


# Blocks that only older mace-torch releases have (removed in 0.3.13): models with them cannot be
# read by the current mace-torch, and mace-deploy must refuse them by name (test_older_releases.py).
# (These blocks return no skip connection, so even their own release's MACE cannot evaluate them.)
OLD_RELEASE_CONFIGS: Dict[str, Dict[str, Any]] = {
    "agnostic_nonlinear": {
        "interaction_cls_first": "AgnosticResidualNonlinearInteractionBlock",
        "interaction_cls": "AgnosticResidualNonlinearInteractionBlock",
    },
}


def config(name: str) -> Dict[str, Any]:
    """Full (BASE + overrides) configuration of a named model, as plain data."""
    overrides = CONFIGS.get(name, OLD_RELEASE_CONFIGS.get(name))
    if overrides is None:
        raise KeyError(f"unknown model config {name!r}; known: {sorted(CONFIGS) + sorted(OLD_RELEASE_CONFIGS)}")
    cfg = copy.deepcopy(BASE)
    cfg.update(copy.deepcopy(overrides))
    return cfg


# --------------------------------------------------------------------------- #
# Model construction
# --------------------------------------------------------------------------- #


class NotInRelease(Exception):
    """The installed mace-torch release cannot build this configuration (names what it lacks)."""


def _fit_to_release(cls, kw: Dict[str, Any]) -> None:
    """Drops the keywords that the installed (older) mace-torch's constructor does not take, where
    the configuration leaves them at BASE's value (which is what such a release does without
    them); raises NotInRelease for a feature the release does not have."""
    import inspect

    from mace import modules

    accepted = set()
    for klass in cls.__mro__:  # ScaleShiftMACE passes **kwargs on to MACE
        parameters = inspect.signature(klass.__init__).parameters
        accepted |= set(parameters)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    for key in list(kw):
        if key not in accepted:
            if key not in BASE or kw[key] != BASE[key]:
                raise NotInRelease(f"{cls.__name__} takes no {key}")
            kw.pop(key)
    if "heads" not in accepted:  # single-head releases take E0s as [elements]
        kw["atomic_energies"] = np.asarray(kw["atomic_energies"]).reshape(-1).tolist()
    for key in ("interaction_cls_first", "interaction_cls"):
        if kw[key] not in modules.interaction_classes:
            raise NotInRelease(f"no interaction block {kw[key]}")


def _resolve_kwargs(cfg: Dict[str, Any], cls) -> Dict[str, Any]:
    from e3nn import o3
    from mace import modules

    kw = dict(cfg)
    kw.pop("model_class")
    kw.pop("noise")
    kw.pop("radial_input_scale")
    kw.pop("readout_gain")
    kw.pop("embedding_gain")
    _fit_to_release(cls, kw)
    kw["interaction_cls_first"] = modules.interaction_classes[kw["interaction_cls_first"]]
    kw["interaction_cls"] = modules.interaction_classes[kw["interaction_cls"]]
    if "readout_cls" in kw:
        kw["readout_cls"] = modules.readout_classes[kw["readout_cls"]]
    kw["gate"] = modules.gate_dict[kw["gate"]]
    kw["hidden_irreps"] = o3.Irreps(kw["hidden_irreps"])
    kw["MLP_irreps"] = o3.Irreps(kw["MLP_irreps"])
    if kw.get("edge_irreps") is not None:
        kw["edge_irreps"] = o3.Irreps(kw["edge_irreps"])
    kw["atomic_energies"] = np.asarray(kw["atomic_energies"], dtype=np.float64)
    kw["num_elements"] = len(kw["atomic_numbers"])
    heads = kw.get("heads")
    if heads is not None and isinstance(kw.get("atomic_inter_scale"), list):
        assert len(kw["atomic_inter_scale"]) == len(heads)
        assert len(kw["atomic_inter_shift"]) == len(heads)
    if heads is None:
        kw.pop("heads", None)  # model default ["Default"]
    if cfg["model_class"] == "MACE":
        kw.pop("atomic_inter_scale", None)
        kw.pop("atomic_inter_shift", None)
    return kw


@torch.no_grad()
def _perturb(model: torch.nn.Module, seed: int, noise: float) -> None:
    """In-place ``p += noise * randn * scale`` for every trainable float parameter.

    ``scale`` is ``max(p.std(), 0.1)`` for tensors, ``0.5`` for all-zero
    tensors (zero-initialised biases) and ``max(|p|, 1.0)`` for scalar
    parameters (e.g. ``alpha``/``beta`` of the non-linear interaction block).
    The noise is drawn in float64 from a CPU generator seeded with ``seed`` and
    cast to the parameter's dtype, so it does not depend on ``dtype``.
    Frozen parameters (``requires_grad=False``, i.e. mace's ``EmptyParam``
    placeholders for symmetric-contraction paths whose U matrix is zero) stay
    zero, as in a trained model.
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    for _, p in model.named_parameters():
        if not p.is_floating_point() or p.numel() == 0 or not p.requires_grad:
            continue
        ref = p.detach().to(torch.float64)
        if p.numel() == 1:
            scale = max(float(ref.abs()), 1.0)
        elif not bool(ref.any()):
            scale = 0.5
        else:
            scale = max(float(ref.std()), 0.1)
        eps = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        p.add_((noise * scale * eps).to(dtype=p.dtype, device=p.device))


@torch.no_grad()
def _scale_embedding(model: torch.nn.Module, gain: float) -> None:
    """Multiply the element-embedding weights by ``gain``."""
    if gain == 1.0:
        return
    for p in model.node_embedding.parameters():
        p.mul_(gain)


@torch.no_grad()
def _scale_readouts(model: torch.nn.Module, gain: float) -> None:
    """Multiply the output layer (weights and biases) of every readout by ``gain``."""
    if gain == 1.0:
        return
    for readout in model.readouts:
        last = readout.linear_2 if hasattr(readout, "linear_2") else readout.linear
        for p in last.parameters():
            p.mul_(gain)


@torch.no_grad()
def _scale_radial_mlp_inputs(model: torch.nn.Module, factor: float) -> None:
    """Multiply the first-layer weights of every radial MLP by ``factor``."""
    if factor == 1.0:
        return
    for inter in model.interactions:
        for attr in ("conv_tp_weights", "density_fn"):
            mlp = getattr(inter, attr, None)
            if mlp is None:
                continue
            first = next(p for n, p in mlp.named_parameters() if n.endswith("weight"))
            first.mul_(factor)


def _init_seed(seed: int) -> int:
    return (int(seed) * 1_000_003 + 0x5EED) % (2**63)


def _construct(cls, kwargs: Dict[str, Any], dtype: torch.dtype, seed: int):
    prev = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)
        with torch.random.fork_rng(devices=[]):
            # Not ``seed`` itself: the perturbation generator uses ``seed``,
            # and identical streams would make the noise equal the init weights.
            torch.manual_seed(_init_seed(seed))
            return cls(**kwargs)
    finally:
        torch.set_default_dtype(prev)


def make_model(
    name: str, seed: int = 0, dtype: torch.dtype = torch.float64
) -> torch.nn.Module:
    """Build the named model with seeded random weights, in eval mode.

    Construction runs with ``torch.set_default_dtype(dtype)`` and with the
    global torch RNG seeded from ``seed`` inside ``fork_rng`` (so mace's own
    random init is reproducible and the caller's RNG state is untouched); the
    previous default dtype is restored afterwards.  The perturbation then uses
    ``torch.Generator().manual_seed(seed)``.

    For ``dtype != torch.float64`` the initial parameter values are taken from
    a float64 construction with the same seed (torch's RNG gives different
    numbers per dtype), so ``make_model(n, s, torch.float32)`` has the
    parameters of ``make_model(n, s)`` rounded to float32, while its buffers
    (U matrices, ...) are those mace computes natively in float32.
    """
    from mace import modules

    cfg = config(name)
    cls = {"ScaleShiftMACE": modules.ScaleShiftMACE, "MACE": modules.MACE}[
        cfg["model_class"]
    ]
    kwargs = _resolve_kwargs(cfg, cls)
    model = _construct(cls, kwargs, dtype, seed)
    if dtype != torch.float64:
        ref = dict(_construct(cls, kwargs, torch.float64, seed).named_parameters())
        with torch.no_grad():
            for pname, p in model.named_parameters():
                p.copy_(ref[pname].to(p.dtype))
    _perturb(model, seed=seed, noise=float(cfg["noise"]))
    _scale_radial_mlp_inputs(model, float(cfg["radial_input_scale"]))
    _scale_readouts(model, float(cfg["readout_gain"]))
    _scale_embedding(model, float(cfg["embedding_gain"]))
    return model.eval()


def save_model(
    name: str, path, seed: int = 0, dtype: torch.dtype = torch.float64
):
    """torch.save the whole model module (mace-torch ``.model`` format)."""
    model = make_model(name, seed=seed, dtype=dtype)
    torch.save(model, path)
    return path


# --------------------------------------------------------------------------- #
# Structures
# --------------------------------------------------------------------------- #


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def _min_distance(atoms: Atoms) -> float:
    """Smallest interatomic distance including periodic images (inf if none < 3 Å)."""
    d = neighbor_list("d", atoms, 3.0)
    return float(d.min()) if len(d) else float("inf")


def molecule(seed: int = 0) -> Atoms:
    """Isolated isopropanol C3H8O (12 atoms), randomly rotated and rattled 0.05 Å (min dist >= 0.9 Å)."""
    rng = np.random.default_rng(seed)
    ref = ase_molecule("C2H6CHOH")
    centred = ref.positions - ref.positions.mean(axis=0)
    for _ in range(1000):
        pos = centred @ _random_rotation(rng).T
        pos = pos + rng.normal(scale=0.05, size=pos.shape)
        atoms = Atoms(ref.get_chemical_symbols(), positions=pos + 5.0, pbc=False)
        if _min_distance(atoms) >= 0.9:
            return atoms
    raise RuntimeError("could not rattle molecule")  # pragma: no cover


def crystal(seed: int = 0) -> Atoms:
    """Periodic fcc Cu, conventional cubic cell (a=3.61) x 2x2x2 = 32 atoms, rattled 0.05 Å."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    atoms.positions = atoms.positions + rng.normal(scale=0.05, size=(len(atoms), 3))
    return atoms


def small_triclinic(seed: int = 0) -> Atoms:
    """Periodic triclinic cell (~3 Å edges, all heights < r_max) holding C, O, O, H.

    Every atom interacts with several of its own periodic images; all
    distances (images included) are >= 1.0 Å.
    """
    rng = np.random.default_rng(seed)
    symbols = ["C", "O", "O", "H"]
    for _ in range(10000):
        cell = np.array(
            [[3.1, 0.0, 0.0], [0.9, 2.9, 0.0], [0.6, 0.7, 3.2]]
        ) + rng.uniform(-0.15, 0.15, size=(3, 3)) * np.tri(3)
        frac = rng.uniform(0.0, 1.0, size=(len(symbols), 3))
        atoms = Atoms(symbols, scaled_positions=frac, cell=cell, pbc=True)
        if _min_distance(atoms) >= 1.0:
            return atoms
    raise RuntimeError("could not place atoms in small_triclinic")  # pragma: no cover


def slab(seed: int = 0) -> Atoms:
    """Cu(111) 3x3x3 slab (pbc T,T,F, 7 Å vacuum) with O, H, O, H adsorbates; rattled 0.03 Å."""
    rng = np.random.default_rng(seed)
    atoms = fcc111("Cu", size=(3, 3, 3), a=3.61, vacuum=7.0)
    add_adsorbate(atoms, "O", 1.2, "fcc")
    add_adsorbate(atoms, "H", 1.0, "hcp")
    add_adsorbate(atoms, "O", 1.8, "ontop", offset=(1, 1))
    # H on top of that O (OH group)
    oh = atoms.positions[-1] + np.array([0.3, 0.2, 0.92])
    atoms += Atoms("H", positions=[oh])
    atoms.positions = atoms.positions + rng.normal(scale=0.03, size=(len(atoms), 3))
    atoms.pbc = [True, True, False]
    return atoms


def water_box(seed: int = 0) -> Atoms:
    """Periodic cubic box (L=6.21 Å, ~1 g/cm^3) of 8 H2O on a jittered 2x2x2 grid.

    O-H 0.9572 Å, H-O-H 104.52 deg, random orientations; intermolecular
    distances >= 1.5 Å (images included).
    """
    rng = np.random.default_rng(seed)
    L = 6.21
    r_oh, theta = 0.9572, np.deg2rad(104.52)
    mol = np.array(
        [
            [0.0, 0.0, 0.0],
            [r_oh * np.sin(theta / 2), 0.0, r_oh * np.cos(theta / 2)],
            [-r_oh * np.sin(theta / 2), 0.0, r_oh * np.cos(theta / 2)],
        ]
    )
    for _ in range(1000):
        symbols: List[str] = []
        pos = []
        for i in range(2):
            for j in range(2):
                for k in range(2):
                    centre = (np.array([i, j, k]) + 0.25) * (L / 2)
                    centre = centre + rng.uniform(-0.2, 0.2, size=3)
                    m = mol @ _random_rotation(rng).T
                    pos.extend(centre + m)
                    symbols.extend(["O", "H", "H"])
        atoms = Atoms(symbols, positions=pos, cell=np.eye(3) * L, pbc=True)
        atoms.wrap()
        i, j, d = neighbor_list("ijd", atoms, 1.5)
        # only intramolecular O-H pairs may be shorter than 1.5 Å
        if np.all(i // 3 == j // 3):
            return atoms
    raise RuntimeError("could not place water molecules")  # pragma: no cover


STRUCTURES: Dict[str, Callable[[int], Atoms]] = {
    "molecule": molecule,
    "crystal": crystal,
    "small_triclinic": small_triclinic,
    "slab": slab,
    "water_box": water_box,
}
