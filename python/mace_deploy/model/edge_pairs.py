"""Pairs every edge with its reverse so that radial functions are evaluated once per pair.

An edge s -> r with vector v and its reverse r -> s with vector -v (both present whenever both
nodes are receivers, i.e. always on one process, and between local atoms of an MPI rank) have
bitwise-identical lengths, hence identical radial features and radial-MLP outputs. Computing
them once per pair halves the radial MLPs, the largest cost of a MACE model on CPU, and stays
exact: the shared length depends on the pair's geometry only, so its gradient may flow through
either edge with the same forces, virial and per-atom virials.
"""

from typing import Tuple

import torch


def _canonical_vectors(senders: torch.Tensor, receivers: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Each edge's vector oriented from its lower to its higher node (an edge and its reverse agree);
    a periodic self-image (s == r) is oriented to be lexicographically positive."""
    x, y, z = vectors[:, 0], vectors[:, 1], vectors[:, 2]
    negative = (x < 0) | ((x == 0) & ((y < 0) | ((y == 0) & (z < 0))))
    flip = torch.where(senders == receivers, negative, senders > receivers)
    return torch.where(flip.unsqueeze(1), -vectors, vectors)


def edge_pairs(senders: torch.Tensor, receivers: torch.Tensor, vectors: torch.Tensor,
               num_nodes: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(representative [P], pair_of_edge [E]): one edge of every pair and, for every edge, the row of
    its pair. An edge whose reverse is absent (sender a ghost atom) or ambiguous (several periodic
    images of the same two nodes) is a pair of its own."""
    num_edges = senders.shape[0]
    node_pair = torch.minimum(senders, receivers) * num_nodes + torch.maximum(senders, receivers)
    order = torch.argsort(node_pair, stable=True)
    key = node_pair[order]
    canonical = _canonical_vectors(senders, receivers, vectors)[order]
    group_start = torch.ones(num_edges, dtype=torch.bool, device=senders.device)
    group_start[1:] = key[1:] != key[:-1]
    group = torch.cumsum(group_start.to(torch.int64), 0) - 1
    group_size = torch.bincount(group)
    # second member of a two-edge group whose vectors agree exactly: the reverse of its predecessor
    second = torch.zeros(num_edges, dtype=torch.bool, device=senders.device)
    second[1:] = ~group_start[1:] & (group_size[group[1:]] == 2) & (canonical[1:] == canonical[:-1]).all(dim=1)
    pair_sorted = torch.cumsum((~second).to(torch.int64), 0) - 1
    pair_of_edge = torch.empty_like(pair_sorted).index_put_((order,), pair_sorted)
    return order[~second], pair_of_edge
