"""The top-level MACE model of an artifact: edge-vector graph -> per-atom energies.

Inputs (DESIGN.md, "graph input = edge vectors"): species index of every node (local nodes
first, then ghosts), edge_index [2, E] (senders, receivers; receivers are local), edge vectors
r_e = x_receiver - x_sender (+ periodic shift) [E, 3] in Angstrom, and n_local; for models with
per-structure inputs (`graph_inputs`: total charge, spin multiplicity) their values [inputs]
float64, defaults where not given. Output: energy of each local atom [n_local] in eV. Forces and
virials are derivatives with respect to the edge vectors, taken by the runtime. Energies are
float64 for float32 artifacts too.
"""

from typing import List, NamedTuple, Optional, Tuple

import torch

from .edge_pairs import edge_pairs
from .joint_embedding import JointEmbedding
from .metadata import with_metadata
from .radial import RadialEmbedding, ZBLRepulsion
from .readout import Readout


class EdgeGeometry(NamedTuple):
    lengths: torch.Tensor  # [E, 1]
    sh: torch.Tensor  # [E, (lmax + 1)^2] spherical harmonics
    representative: torch.Tensor  # edge_pairs.py: one edge of every pair of opposite edges
    pair_of_edge: torch.Tensor  # and every edge's pair


def edge_geometry(edge_index: torch.Tensor, edge_vectors: torch.Tensor, n_total: int, sh_lmax: int) -> EdgeGeometry:
    """What every layer (and every member of a committee) reads of the edges: lengths, spherical
    harmonics, and the pairs of opposite edges whose radial features are computed once."""
    lengths = torch.linalg.vector_norm(edge_vectors, dim=-1, keepdim=True)
    sh = torch.ops.mace_deploy.spherical_harmonics(edge_vectors, sh_lmax)
    representative, pair_of_edge = edge_pairs(edge_index[0], edge_index[1], edge_vectors.detach(), n_total)
    return EdgeGeometry(lengths, sh, representative, pair_of_edge)


def e3nn_feature_layout(feats: torch.Tensor, irrep_dims: List[int]) -> torch.Tensor:
    """[n, K, C] features (the components of each irrep consecutive, every irrep with C channels)
    -> [n, K * C] in e3nn's layout: irrep after irrep, each channel-major ([C, 2l + 1])."""
    pieces: List[torch.Tensor] = []
    start = 0
    for dim in irrep_dims:
        pieces.append(feats[:, start:start + dim, :].transpose(1, 2).reshape(feats.shape[0], -1))
        start += dim
    return torch.cat(pieces, 1)


@with_metadata  # metadata.py
class MACEModel(torch.nn.Module):
    def __init__(self, embedding: torch.Tensor, radial: RadialEmbedding, sh_lmax: int,
                 interactions: List[torch.nn.Module], products: List[torch.nn.Module],
                 readouts: List[torch.nn.Module], readout_layers: List[int],
                 zbl: Optional[ZBLRepulsion], e0: torch.Tensor, scale: float, shift: float,
                 joint_embedding: Optional[JointEmbedding] = None, embedding_readout: Optional[Readout] = None):
        super().__init__()
        self.register_buffer("embedding", embedding)  # [elements, C] first-layer features by species
        self.radial = radial
        self.sh_lmax = sh_lmax
        self.interactions = torch.nn.ModuleList(interactions)
        self.products = torch.nn.ModuleList(products)
        self.readouts = torch.nn.ModuleList(readouts)
        self.readout_layers = readout_layers  # which layer's features each readout reads
        if zbl is not None:
            self.zbl = zbl
        self.register_buffer("e0", e0)  # [elements] float64 isolated-atom energies of the chosen head
        self.scale = scale
        self.shift = shift
        if joint_embedding is not None:
            self.joint_embedding = joint_embedding
        if embedding_readout is not None:
            self.embedding_readout = embedding_readout

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor,
                n_local: int, graph_inputs: Optional[torch.Tensor] = None) -> torch.Tensor:
        geometry = edge_geometry(edge_index, edge_vectors, species.shape[0], self.sh_lmax)
        return self.evaluate(species, edge_index, n_local, graph_inputs, geometry, False)[0]

    @torch.jit.export
    def energies_and_features(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor,
                              n_local: int, graph_inputs: Optional[torch.Tensor] = None
                              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """forward's per-atom energies and the node features of every layer [n_local, D] side by side,
        each layer in e3nn's layout of its irreps (mace-torch's "node_feats")."""
        geometry = edge_geometry(edge_index, edge_vectors, species.shape[0], self.sh_lmax)
        return self.evaluate(species, edge_index, n_local, graph_inputs, geometry, True)

    def evaluate(self, species: torch.Tensor, edge_index: torch.Tensor, n_local: int,
                 graph_inputs: Optional[torch.Tensor], geometry: EdgeGeometry,
                 with_features: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies [n_local] float64 and, if asked, the node features (else an empty
        tensor), from edge geometry that a committee's members share (spherical harmonics of
        degree sh_lmax or higher)."""
        n_total = species.shape[0]
        senders = edge_index[0]
        receivers = edge_index[1]
        sender_species = species[senders]
        receiver_species = species[receivers]
        local_species = species[:n_local]
        lengths, representative, pair_of_edge = geometry.lengths, geometry.representative, geometry.pair_of_edge
        sh = geometry.sh
        num_sh = (self.sh_lmax + 1) * (self.sh_lmax + 1)
        if sh.shape[1] != num_sh:
            sh = sh[:, :num_sh].contiguous()
        pair_feats, pair_cutoff = self.radial(lengths[representative], sender_species[representative],
                                              receiver_species[representative])

        node_feats = self.embedding[species].unsqueeze(1)  # [n_total, 1 (0e), C]
        embedding_energy: Optional[torch.Tensor] = None
        if hasattr(self, "joint_embedding"):
            if graph_inputs is None:
                graph_inputs = torch.tensor(self.graph_input_defaults, dtype=torch.float64)
            node_feats = node_feats + self.joint_embedding(graph_inputs.to(node_feats.device, torch.float64))
            if hasattr(self, "embedding_readout"):  # outside scale and shift, as in mace-torch
                embedding_energy = self.embedding_readout(node_feats[:n_local]).to(torch.float64)
        layer_feats: List[torch.Tensor] = []
        for i, (interaction, product) in enumerate(zip(self.interactions, self.products)):
            if i > 0:  # every layer, also with no ghosts: MPI ranks must exchange in lockstep
                node_feats = torch.ops.mace_deploy.halo_exchange(node_feats, n_total, i)
            message, sc = interaction(node_feats, species, sh, pair_feats, pair_cutoff, pair_of_edge, senders,
                                      receivers, n_local)
            node_feats = product(message, local_species, sc)
            layer_feats.append(node_feats)

        contributions: List[torch.Tensor] = []
        if hasattr(self, "zbl"):
            contributions.append(self.zbl(lengths, sender_species, receiver_species, receivers, n_local))
        for i, readout in enumerate(self.readouts):
            contributions.append(readout(layer_feats[self.readout_layers[i]]))
        interaction_energy = torch.sum(torch.stack(contributions, dim=0), dim=0)
        # Per-atom energies are float64 whatever the artifact dtype (as mace-torch's node energies):
        # E0s of total-energy models reach 1e4-1e5 eV, beyond float32's resolution of the interaction.
        atom_energies = self.e0[local_species] + (self.scale * interaction_energy + self.shift).to(torch.float64)
        if embedding_energy is not None:
            atom_energies = atom_energies + embedding_energy
        features = torch.empty(0)
        if with_features:
            features = torch.cat([e3nn_feature_layout(feats, dims)
                                  for feats, dims in zip(layer_feats, self.feature_irrep_dims)], 1)
        return atom_energies, features

