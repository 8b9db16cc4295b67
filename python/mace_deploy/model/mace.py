"""The top-level MACE model of an artifact: edge-vector graph -> per-atom energies.

Inputs (DESIGN.md, "graph input = edge vectors"): species index of every node (local nodes
first, then ghosts), edge_index [2, E] (senders, receivers; receivers are local), edge vectors
r_e = x_receiver - x_sender (+ periodic shift) [E, 3] in Angstrom, and n_local; for models with
per-structure inputs (`graph_inputs`: total charge, spin multiplicity) their values [inputs]
float64, defaults where not given. Output: energy of each local atom [n_local] in eV. Forces and
virials are derivatives with respect to the edge vectors, taken by the runtime. Energies are
float64 for float32 artifacts too.
"""

from typing import List, Optional

import torch

from .edge_pairs import edge_pairs
from .joint_embedding import JointEmbedding
from .radial import RadialEmbedding, ZBLRepulsion
from .readout import Readout


class MACEModel(torch.nn.Module):
    # Metadata read by the C++ runtime and `mace-deploy info` (see csrc/runtime/metadata.h).
    format_version: int
    weights_crc32: int  # set on the scripted module by convert/compile.py (csrc/runtime/checksum.h)
    ops_version: int
    mace_deploy_version: str
    r_max: float
    atomic_numbers: List[int]
    num_interactions: int
    halo_feature_sizes: List[int]
    dtype: str
    head: str
    heads: List[str]
    e0s: List[float]
    model_class: str
    source_file: str
    source_sha256: str
    mace_torch_version: str
    graph_inputs: List[str]  # names of the per-structure inputs (mace-torch's data keys), in order
    graph_input_defaults: List[float]  # their values where a host gives none (mace-torch's defaults)
    graph_input_bounds: List[float]  # lowest and highest embedded value of each (csrc/runtime/metadata.h)

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
        n_total = species.shape[0]
        senders = edge_index[0]
        receivers = edge_index[1]
        sender_species = species[senders]
        receiver_species = species[receivers]
        local_species = species[:n_local]

        lengths = torch.linalg.vector_norm(edge_vectors, dim=-1, keepdim=True)
        sh = torch.ops.mace_deploy.spherical_harmonics(edge_vectors, self.sh_lmax)
        # radial features once per pair of opposite edges (edge_pairs.py); pair_of_edge maps back
        representative, pair_of_edge = edge_pairs(senders, receivers, edge_vectors.detach(), n_total)
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
        return atom_energies
