"""Product basis: symmetric contraction, linear update and skip connection
(mace-torch `EquivariantProductBasisBlock`)."""

from typing import Optional

import torch

from .layers import EquivariantLinear


class Product(torch.nn.Module):
    def __init__(self, monomials: torch.Tensor, coefficients: torch.Tensor, num_out_components: int,
                 element_agnostic: bool, linear: EquivariantLinear, use_sc: bool):
        super().__init__()
        self.register_buffer("monomials", monomials)  # [M, 1 + correlation] int64
        self.register_buffer("coefficients", coefficients)  # [elements (1 if agnostic), M, C]
        self.num_out_components = num_out_components
        self.element_agnostic = element_agnostic
        self.linear = linear
        self.use_sc = use_sc

    def forward(self, x: torch.Tensor, species: torch.Tensor, sc: Optional[torch.Tensor]) -> torch.Tensor:
        if self.element_agnostic:
            species = torch.zeros_like(species)
        out = self.linear(torch.ops.mace_deploy.symmetric_contraction(
            x, species, self.monomials, self.coefficients, self.num_out_components))
        if self.use_sc and sc is not None:
            out = out + sc
        return out
