"""Interaction blocks: message passing from senders to local receivers (mace-torch `blocks.py`).

Each block returns (message [n_local, K_target, C], skip connection [n_local, K_hidden, C] or
None) exactly as the mace-torch block of the same name does.
"""

from typing import List, Optional, Tuple

import torch

from .layers import AffineOutputMLP, ElementLinear, EquivariantLinear, ScalarMLP, activation


class Convolution(torch.nn.Module):
    """Sender features x edge spherical harmonics x per-edge radial weights, summed per receiver
    (`torch.ops.mace_deploy.message_passing`); the Clebsch-Gordan paths are a sparse program. The
    radial weights come in factors, the radial MLP's last hidden features [W, H] and its linear last
    layer [H, P * C]: the kernel forms them a few edges at a time, never for all edges at once."""

    def __init__(self, cg_index: torch.Tensor, cg_coeff: torch.Tensor, num_paths: int,
                 num_out_components: int):
        super().__init__()
        self.register_buffer("cg_index", cg_index)  # [nnz, 4] (k_in, k_sh, k_out, path)
        self.register_buffer("cg_coeff", cg_coeff)  # [nnz]
        self.num_paths = num_paths
        self.num_out_components = num_out_components

    def forward(self, node_feats: torch.Tensor, sh: torch.Tensor, radial_hidden: torch.Tensor,
                radial_weight: torch.Tensor, weight_rows: torch.Tensor, senders: torch.Tensor,
                receivers: torch.Tensor, n_local: int) -> torch.Tensor:
        """Radial weights radial_hidden [W, H] @ radial_weight [H, P * C]: edge e uses row weight_rows[e]."""
        return torch.ops.mace_deploy.message_passing(
            node_feats, sh, radial_hidden, radial_weight, weight_rows, senders, receivers, n_local, self.cg_index,
            self.cg_coeff, self.num_out_components)


class SpeciesConvolution(torch.nn.Module):
    """The first layer's Convolution regrouped by sender element; the same sums in another order.

    There a sender's features are those of its element, x_s [C], and the radial weights of edge e
    are h_e W (h_e: input of the radial MLP's linear last layer, cutoff included). Path p (the
    scalar input times the spherical harmonics of one degree, components m, coefficient c_p) is
      out[r, m, :] = sum_{e -> r} c_p sh[e, m] (h_e W_p) * x_s(e)
                   = sum_{s, k} D[r, m, s, k] (c_p W_p[k, :] * x_s),
      D[r, m, s, k] = sum over edges e -> r from element s of sh[e, m] h_e[k]
    (torch.ops.mace_deploy.species_density): per edge M x K products (16 x 64) instead of the
    K x P x C of the last radial layer plus the message passing, then one [S K, C] product per
    receiver and path. Worth it while few elements are present (`cheaper`)."""

    def __init__(self, element_feats: torch.Tensor, paths: List[int], sh_start: List[int], dims: List[int],
                 coeffs: List[float]):
        super().__init__()
        self.register_buffer("element_feats", element_feats)  # [elements, 1, C] the layer's input by element
        # paths in the order of their output components: weight block, first harmonic, dimension, coefficient
        self.paths = paths
        self.sh_start = sh_start
        self.dims = dims
        self.coeffs = coeffs

    def cheaper(self, num_species: int, n_local: int, num_edges: int, hidden: int, sh_components: int,
                conv: Convolution) -> bool:
        """Whether this route takes fewer multiply-adds than the per-edge one (the backward scales alike)."""
        channels = self.element_feats.shape[2]
        by_species = num_edges * sh_components * hidden + n_local * num_species * hidden * channels * sum(self.dims)
        per_edge = num_edges * (hidden * conv.num_paths + conv.cg_index.shape[0]) * channels
        return num_species > 0 and by_species < per_edge

    def forward(self, up_by_element: torch.Tensor, hidden: torch.Tensor, output_weight: torch.Tensor,
                sh: torch.Tensor, weight_rows: torch.Tensor, present: torch.Tensor, species: torch.Tensor,
                senders: torch.Tensor, receivers: torch.Tensor, n_local: int) -> torch.Tensor:
        """up_by_element [elements, 1, C]: the layer's linear_up of element_feats; present: sorted
        elements of the graph. Returns [n_local, K_out, C] as Convolution does."""
        num_species, k, c = present.shape[0], hidden.shape[1], up_by_element.shape[2]
        compact = torch.zeros(up_by_element.shape[0], dtype=torch.int64, device=species.device)
        compact[present] = torch.arange(num_species, dtype=torch.int64, device=species.device)
        density = torch.ops.mace_deploy.species_density(hidden, sh, weight_rows, compact[species[senders]],
                                                        receivers, n_local, num_species)
        x = up_by_element[present, 0, :].unsqueeze(1)  # [S, 1, C]
        outs: List[torch.Tensor] = []
        for path, first, dim, coeff in zip(self.paths, self.sh_start, self.dims, self.coeffs):
            weight = (x * output_weight[:, path * c:(path + 1) * c].unsqueeze(0) * coeff).reshape(num_species * k, c)
            per_receiver = density.narrow(1, first, dim).reshape(n_local * dim, num_species * k)
            outs.append(torch.ops.mace_deploy.linear(per_receiver, weight).view(n_local, dim, c))
        return torch.cat(outs, dim=1)


def per_edge(pair_feats: torch.Tensor, pair_cutoff: Optional[torch.Tensor],
             pair_of_edge: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Radial features and cutoff of every edge from those of its pair (for radial MLPs that also
    read which end is which, so cannot be shared by the two edges of a pair)."""
    if pair_cutoff is None:
        return pair_feats[pair_of_edge], None
    return pair_feats[pair_of_edge], pair_cutoff[pair_of_edge]


def edge_rows(senders: torch.Tensor) -> torch.Tensor:
    """weight_rows for per-edge radial weights: edge e uses row e."""
    return torch.arange(senders.shape[0], dtype=torch.int64, device=senders.device)


def scatter_density(edge_density: torch.Tensor, receivers: torch.Tensor, n_local: int) -> torch.Tensor:
    """Sum of edge densities per receiver, shaped [n_local, 1, 1] to divide messages."""
    density = torch.zeros((n_local, 1), dtype=edge_density.dtype, device=edge_density.device)
    return density.index_add(0, receivers, edge_density).unsqueeze(-1)


class AgnosticInteraction(torch.nn.Module):
    """RealAgnostic{,Residual,Density,DensityResidual}InteractionBlock.

    residual: the element-dependent skip acts on the input features and is returned as the skip
    connection; otherwise it acts on the message. density: messages are divided by 1 + the sum
    of learned edge densities instead of by avg_num_neighbors.
    """

    def __init__(self, linear_up: EquivariantLinear, radial_mlp: ScalarMLP, conv: Convolution,
                 linear: EquivariantLinear, skip: ElementLinear, residual: bool,
                 avg_num_neighbors: float, density_mlp: Optional[ScalarMLP]):
        super().__init__()
        self.linear_up = linear_up
        self.radial_mlp = radial_mlp
        self.conv = conv
        self.linear = linear
        self.skip = skip
        self.residual = residual
        self.avg_num_neighbors = avg_num_neighbors
        self.density = density_mlp is not None
        self.density_mlp = density_mlp if density_mlp is not None else ScalarMLP([])

    def add_species_convolution(self, species_conv: SpeciesConvolution) -> None:
        """First layer only (convert/mace_blocks.py checks it applies): take that route when cheaper."""
        self.species_conv = species_conv

    def convolve(self, node_feats: torch.Tensor, species: torch.Tensor, sh: torch.Tensor, pair_feats: torch.Tensor,
                 pair_cutoff: Optional[torch.Tensor], pair_of_edge: torch.Tensor, senders: torch.Tensor,
                 receivers: torch.Tensor, n_local: int) -> torch.Tensor:
        # radial MLPs read only the length: their hidden layers are evaluated once per pair of opposite
        # edges, the linear last layer inside the message passing
        hidden = self.radial_mlp.hidden(pair_feats, pair_cutoff)
        if hasattr(self, "species_conv"):
            present = torch.unique(species)
            if self.species_conv.cheaper(present.shape[0], n_local, senders.shape[0], hidden.shape[1], sh.shape[1],
                                         self.conv):
                return self.species_conv(self.linear_up(self.species_conv.element_feats), hidden,
                                         self.radial_mlp.output_weight(), sh, pair_of_edge, present, species,
                                         senders, receivers, n_local)
        return self.conv(self.linear_up(node_feats), sh, hidden, self.radial_mlp.output_weight(), pair_of_edge,
                         senders, receivers, n_local)

    def forward(self, node_feats: torch.Tensor, species: torch.Tensor, sh: torch.Tensor,
                pair_feats: torch.Tensor, pair_cutoff: Optional[torch.Tensor], pair_of_edge: torch.Tensor,
                senders: torch.Tensor, receivers: torch.Tensor,
                n_local: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        local_species = species[:n_local]
        sc: Optional[torch.Tensor] = None
        if self.residual:
            sc = self.skip(node_feats[:n_local], local_species)
        message = self.linear(self.convolve(node_feats, species, sh, pair_feats, pair_cutoff, pair_of_edge, senders,
                                            receivers, n_local))
        if self.density:
            pair_density = torch.tanh(torch.pow(self.density_mlp(pair_feats), 2))
            if pair_cutoff is not None:
                pair_density = pair_density * pair_cutoff
            message = message / (scatter_density(pair_density[pair_of_edge], receivers, n_local) + 1)
        else:
            message = message / self.avg_num_neighbors
        if not self.residual:
            message = self.skip(message, local_species)
        return message, sc


class Gate(torch.nn.Module):
    """mace-torch `GatedEquivariantBlock`: act(scalars) * cst, and each l > 0 irrep block times
    sigmoid(its gate) * cst. Input: scalars+gates [n, 1, S + G] and gated irreps [n, K - 1, C]."""

    def __init__(self, num_scalars: int, scalar_act: str, scalar_cst: float, gate_act: str,
                 gate_cst: float, gated_block_of_component: torch.Tensor):
        super().__init__()
        self.num_scalars = num_scalars
        self.scalar_act = scalar_act
        self.scalar_cst = scalar_cst
        self.gate_act = gate_act
        self.gate_cst = gate_cst
        self.register_buffer("gated_block_of_component", gated_block_of_component)  # [K - 1] int64

    def forward(self, scalars_and_gates: torch.Tensor, gated: torch.Tensor) -> torch.Tensor:
        scalars = activation(scalars_and_gates[:, :, : self.num_scalars], self.scalar_act) * self.scalar_cst
        gates = activation(scalars_and_gates[:, :, self.num_scalars:], self.gate_act) * self.gate_cst
        n, c = gated.shape[0], gated.shape[2]
        gates = gates.reshape(n, gates.shape[1] * gates.shape[2] // c, c)  # explicit: n may be 0 (empty MPI rank)
        gates = gates.index_select(1, self.gated_block_of_component)
        return torch.cat([scalars, gated * gates], dim=1)


class NonLinearInteraction(torch.nn.Module):
    """RealAgnosticResidualNonLinearInteractionBlock: radial MLP fed with element embeddings of
    both ends, learned density normalisation, residual and gated non-linearity."""

    def __init__(self, linear_up: EquivariantLinear, source_embedding: torch.Tensor,
                 target_embedding: torch.Tensor, radial_mlp: AffineOutputMLP,
                 density_mlp: torch.nn.Module, conv: Convolution,
                 linear_1_scalars: EquivariantLinear, linear_1_gated: EquivariantLinear,
                 linear_res_scalars: EquivariantLinear, linear_res_gated: EquivariantLinear,
                 gate: Gate, linear_2: EquivariantLinear, skip: EquivariantLinear,
                 alpha: float, beta: float):
        super().__init__()
        self.linear_up = linear_up
        self.register_buffer("source_embedding", source_embedding)  # [elements, C] by species
        self.register_buffer("target_embedding", target_embedding)
        self.radial_mlp = radial_mlp
        self.density_mlp = density_mlp
        self.conv = conv
        self.linear_1_scalars = linear_1_scalars
        self.linear_1_gated = linear_1_gated
        self.linear_res_scalars = linear_res_scalars
        self.linear_res_gated = linear_res_gated
        self.gate = gate
        self.linear_2 = linear_2
        self.skip = skip
        self.alpha = alpha
        self.beta = beta

    def forward(self, node_feats: torch.Tensor, species: torch.Tensor, sh: torch.Tensor,
                pair_feats: torch.Tensor, pair_cutoff: Optional[torch.Tensor], pair_of_edge: torch.Tensor,
                senders: torch.Tensor, receivers: torch.Tensor,
                n_local: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        sc = self.skip(node_feats[:n_local])
        up = self.linear_up(node_feats)
        local_up = up[:n_local]
        edge_feats, cutoff = per_edge(pair_feats, pair_cutoff, pair_of_edge)
        edge_inputs = torch.cat(
            [edge_feats, self.source_embedding[species[senders]], self.target_embedding[species[receivers]]], dim=-1)
        hidden = self.radial_mlp.hidden(edge_inputs, cutoff)
        edge_density = torch.tanh(torch.pow(self.density_mlp(edge_inputs), 2))
        if cutoff is not None:
            edge_density = edge_density * cutoff
        density = scatter_density(edge_density, receivers, n_local)
        message = self.conv(up, sh, hidden, self.radial_mlp.output_weight(), edge_rows(senders), senders, receivers,
                            n_local)
        norm = density * self.beta + self.alpha
        scalars = self.linear_1_scalars(message) / norm + self.linear_res_scalars(local_up)
        gated = self.linear_1_gated(message) / norm + self.linear_res_gated(local_up)
        return self.linear_2(self.gate(scalars, gated)), sc


class AttentionInteraction(torch.nn.Module):
    """RealAgnosticAttResidualInteractionBlock: the radial MLP also reads down-projected scalar
    features of both ends of each edge."""

    def __init__(self, linear_up: EquivariantLinear, linear_down: EquivariantLinear, radial_mlp: ScalarMLP,
                 conv: Convolution, linear: EquivariantLinear, skip: EquivariantLinear, avg_num_neighbors: float):
        super().__init__()
        self.linear_up = linear_up
        self.linear_down = linear_down
        self.radial_mlp = radial_mlp
        self.conv = conv
        self.linear = linear
        self.skip = skip
        self.avg_num_neighbors = avg_num_neighbors

    def forward(self, node_feats: torch.Tensor, species: torch.Tensor, sh: torch.Tensor,
                pair_feats: torch.Tensor, pair_cutoff: Optional[torch.Tensor], pair_of_edge: torch.Tensor,
                senders: torch.Tensor, receivers: torch.Tensor,
                n_local: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        sc = self.skip(node_feats[:n_local])
        up = self.linear_up(node_feats)
        down = self.linear_down(node_feats).squeeze(1)  # [n_total, D] scalars
        edge_feats, cutoff = per_edge(pair_feats, pair_cutoff, pair_of_edge)
        hidden = self.radial_mlp.hidden(torch.cat([edge_feats, down[senders], down[receivers]], dim=-1), cutoff)
        message = self.linear(self.conv(up, sh, hidden, self.radial_mlp.output_weight(), edge_rows(senders),
                                        senders, receivers, n_local))
        return message / self.avg_num_neighbors, sc
