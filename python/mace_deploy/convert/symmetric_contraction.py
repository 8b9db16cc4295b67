"""Fold mace-torch symmetric-contraction weights into per-element polynomial coefficients.

mace-torch evaluates, for each output irrep component m, element e and channel c,
    B[m, c] = sum_nu sum_{i_1..i_nu, p} U_nu[m, i_1, ..., i_nu, p] W_nu[e, p, c] x[i_1, c] ... x[i_nu, c].
The product of the x is symmetric in its indices, so every sorted index tuple (a monomial)
collects the U entries of all its permutations. The result is a sparse list of monomials with
coefficients [elements, monomials, C] that the `symmetric_contraction` op evaluates directly.
"""

from collections import defaultdict
from typing import Dict, List, Tuple

import torch

from ..errors import UnsupportedModelError
from .e3nn_layers import F64, component_offsets


def _weights_by_degree(contraction) -> Dict[int, torch.Tensor]:
    """W_nu [elements, params, C] of one mace-torch `Contraction`, keyed by degree nu."""
    correlation = contraction.correlation
    weights = {correlation: contraction.weights_max.detach().to(F64)}
    for i, w in enumerate(contraction.weights):  # weights[i] has degree correlation - i - 1
        weights[correlation - i - 1] = w.detach().to(F64)
    return weights


def fold(symmetric_contraction) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """(monomials [M, 1 + max degree] int64, coefficients [elements, M, C] float64, K_out)."""
    if type(symmetric_contraction).__name__ != "SymmetricContraction":
        raise UnsupportedModelError(
            f"not supported: symmetric contraction {type(symmetric_contraction).__name__} (a cuequivariance model); "
            "convert it back to e3nn with mace-torch's `mace_cueq_to_e3nn` first")
    out_offsets = component_offsets(symmetric_contraction.irreps_out)
    max_degree = max(c.correlation for c in symmetric_contraction.contractions)
    monomials: List[Tuple[int, ...]] = []
    blocks: List[torch.Tensor] = []
    for contraction, offset in zip(symmetric_contraction.contractions, out_offsets):
        for degree, weight in _weights_by_degree(contraction).items():
            u = contraction.U_tensors(degree).detach().to(F64)
            if u.dim() == degree + 1:  # scalar output: mace-torch drops the m axis
                u = u.unsqueeze(0)
            collected: Dict[Tuple[int, ...], torch.Tensor] = defaultdict(lambda: torch.zeros(u.shape[-1], dtype=F64))
            for index in torch.nonzero(u).tolist():
                m, factors, p = index[0], index[1:-1], index[-1]
                collected[(offset + m,) + tuple(sorted(factors))][p] += u[tuple(index)]
            for key, u_row in collected.items():
                monomials.append(key + (-1,) * (max_degree - degree))
                blocks.append(torch.einsum("p,epc->ec", u_row, weight))
    if not monomials:
        raise UnsupportedModelError("not supported: a symmetric contraction with no non-zero coupling")
    coefficients = torch.stack(blocks, dim=1)
    return torch.tensor(monomials, dtype=torch.int64), coefficients, sum(ir.dim for _, ir in symmetric_contraction.irreps_out)
