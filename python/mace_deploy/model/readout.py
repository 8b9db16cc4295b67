"""Readouts: per-node energy of one head from the scalar node features
(mace-torch `LinearReadoutBlock`, `NonLinearReadoutBlock`, `NonLinearBiasReadoutBlock`)."""

from typing import List

import torch

from .layers import EquivariantLinear, activation


class Readout(torch.nn.Module):
    """linear_0, then for each hidden layer act(x) [* cst] and the next linear; -> [n]."""

    def __init__(self, linears: List[EquivariantLinear], act: str, act_scale: float):
        super().__init__()
        self.linears = torch.nn.ModuleList(linears)
        self.act = act  # "" where the model has no activation (gate None)
        self.act_scale = act_scale  # e3nn normalize2mom constant; exactly 1.0 where e3nn skips it

    def forward(self, node_feats: torch.Tensor) -> torch.Tensor:
        x = node_feats
        for i, linear in enumerate(self.linears):
            if i > 0:
                x = activation(x, self.act)
                if self.act_scale != 1.0:
                    x = x * self.act_scale
            x = linear(x)
        return x.reshape(x.shape[0])
