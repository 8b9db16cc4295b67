"""Per-structure inputs (total charge, spin multiplicity) of MACE-OMOL-style models.

mace-torch's `GenericJointEmbedding` embeds each input (a table row for a categorical one, a small
MLP for a continuous one), concatenates the embeddings and adds silu(P @ concatenation) to every
node's first-layer features; `embedding_readout` (a linear map of those features) adds a per-atom
energy outside scale and shift. The inputs are one value each per structure (mace-torch's "graph"
inputs), so the added vector is the same for every node.
"""

import math
from typing import List, Tuple

import torch


class CategoricalInput(torch.nn.Module):
    """Row (value + offset), truncated toward zero as mace-torch's `.long()`, of a table."""

    def __init__(self, name: str, table: torch.Tensor, offset: float):
        super().__init__()
        self.name = name
        self.register_buffer("table", table)  # [classes, E]
        self.offset = offset

    def bounds(self) -> Tuple[float, float]:
        """Lowest and highest value with a row (integers: a value counts as its integer part)."""
        return 0.0 - self.offset, self.table.shape[0] - 1 - self.offset  # (0.0 - : no "-0")

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        index = int((value + self.offset).long())
        if index < 0 or index >= self.table.shape[0]:
            raise ValueError("{} = {} is outside the values this model embeds ({} to {})".format(
                self.name, float(value), 0.0 - self.offset, self.table.shape[0] - 1 - self.offset))
        return self.table[index]


class ContinuousInput(torch.nn.Module):
    """linear -> silu -> linear of the value (mace-torch's continuous embedder)."""

    def __init__(self, name: str, weight_1: torch.Tensor, bias_1: torch.Tensor, weight_2: torch.Tensor,
                 bias_2: torch.Tensor):
        super().__init__()
        self.name = name
        self.register_buffer("weight_1", weight_1)  # [E, 1]
        self.register_buffer("bias_1", bias_1)  # [E] (zeros where the model has no bias)
        self.register_buffer("weight_2", weight_2)  # [E, E]
        self.register_buffer("bias_2", bias_2)

    def bounds(self) -> Tuple[float, float]:
        return -math.inf, math.inf

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        x = value.to(self.weight_1.dtype).reshape(1)
        hidden = torch.nn.functional.silu(torch.mv(self.weight_1, x) + self.bias_1)
        return torch.mv(self.weight_2, hidden) + self.bias_2


class JointEmbedding(torch.nn.Module):
    """values [inputs] float64 (in the order of `inputs`) -> [C] added to every node's features."""

    def __init__(self, inputs: List[torch.nn.Module], projection: torch.Tensor):
        super().__init__()
        self.inputs = torch.nn.ModuleList(inputs)
        self.register_buffer("projection", projection)  # [C, sum of the embedding sizes]

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        embeddings: List[torch.Tensor] = []
        for i, embed in enumerate(self.inputs):
            embeddings.append(embed(values[i]))
        return torch.nn.functional.silu(torch.mv(self.projection, torch.cat(embeddings)))
