"""A committee of MACE models on one graph: the mean potential, the members' spread (uncertainty)
and the bias of hyperactive learning come from it (csrc/runtime/model.cpp).

The members share what depends on the edges alone: lengths, spherical harmonics (of the highest
degree any member uses; a member of lower degree reads their first components, which are the same
numbers) and the pairs of opposite edges. Each member keeps its own radial features, layers and
readouts. The members take the same graph: the same elements in the same order, cutoff, dtype and
per-structure inputs (convert/compile.py refuses others).
"""

from typing import List, Optional, Tuple

import torch

from .mace import MACEModel, edge_geometry
from .metadata import with_metadata


@with_metadata  # metadata.py; members names the member models
class Committee(torch.nn.Module):
    def __init__(self, members: List[MACEModel]):
        super().__init__()
        self.models = torch.nn.ModuleList(members)
        self.sh_lmax = max(m.sh_lmax for m in members)

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor,
                n_local: int, graph_inputs: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        """Every member's per-atom energies [n_local] float64. Separate tensors, not one stacked: the
        runtime differentiates each member's energy, and through a stack autograd would carry
        (zero) gradients through every member's layers each time."""
        geometry = edge_geometry(edge_index, edge_vectors, species.shape[0], self.sh_lmax)
        energies: List[torch.Tensor] = []
        for member in self.models:
            energies.append(member.evaluate(species, edge_index, n_local, graph_inputs, geometry, False)[0])
        return energies

    @torch.jit.export
    def energies_and_features(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor,
                              n_local: int, graph_inputs: Optional[torch.Tensor] = None
                              ) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """forward's energies and every member's node features [members, n_local, D]."""
        if len(self.feature_irreps) == 0:
            raise RuntimeError("not supported: node features of a committee whose members' features differ in shape")
        geometry = edge_geometry(edge_index, edge_vectors, species.shape[0], self.sh_lmax)
        energies: List[torch.Tensor] = []
        features: List[torch.Tensor] = []
        for member in self.models:
            e, f = member.evaluate(species, edge_index, n_local, graph_inputs, geometry, True)
            energies.append(e)
            features.append(f)
        return energies, torch.stack(features)
