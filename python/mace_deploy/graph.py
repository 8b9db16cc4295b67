"""ASE Atoms -> the edge-vector graph the runtime evaluates (see csrc/runtime/model.h)."""

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from . import _C
from .errors import StructureError

# Closer than this, two atoms are taken to be the same atom placed twice (the runtime's threshold,
# shared with the LAMMPS and OpenMM plugins).
MIN_DISTANCE = _C.OVERLAP_DISTANCE


@dataclass
class Graph:
    species: torch.Tensor  # [N] int64 species index in model order
    edge_index: torch.Tensor  # [2, E] int64 (senders, receivers)
    edge_vectors: torch.Tensor  # [E, 3] float64, x_receiver - x_sender + shift


def species_of(atoms: Atoms, atomic_numbers: Sequence[int]) -> torch.Tensor:
    index = {int(z): i for i, z in enumerate(atomic_numbers)}
    unknown = sorted(set(int(z) for z in atoms.numbers) - set(index))
    if unknown:
        from ase.data import chemical_symbols

        raise StructureError(
            f"element(s) {', '.join(chemical_symbols[z] for z in unknown)} not in the model, which knows "
            f"{', '.join(chemical_symbols[z] for z in atomic_numbers)}")
    return torch.tensor([index[int(z)] for z in atoms.numbers], dtype=torch.int64)


def atoms_to_graph(atoms: Atoms, r_max: float, atomic_numbers: Sequence[int]) -> Graph:
    """All pairs within r_max, periodic images included (cells smaller than the cutoff too), from
    the O(N) cell list of csrc/neighbors."""
    species = species_of(atoms, atomic_numbers)
    if atoms.pbc.any() and atoms.cell.rank < atoms.pbc.sum():
        raise StructureError("periodic directions need non-zero cell vectors: set the cell or turn pbc off")
    try:
        edges = _C.neighbor_list(torch.from_numpy(np.ascontiguousarray(atoms.positions, dtype=np.float64)),
                                 torch.from_numpy(np.ascontiguousarray(atoms.cell.array, dtype=np.float64)),
                                 [bool(p) for p in atoms.pbc], float(r_max))
    except ValueError as e:
        raise StructureError(str(e)) from None
    vectors = edges["vectors"]
    if len(vectors):
        lengths = torch.linalg.vector_norm(vectors, dim=1)
        k = int(torch.argmin(lengths))
        if lengths[k] < MIN_DISTANCE:
            raise StructureError(
                f"atoms {int(edges['senders'][k])} and {int(edges['receivers'][k])} (or a periodic image) are "
                f"{float(lengths[k]):.2e} A apart: overlapping atoms")
    return Graph(species, torch.stack([edges["senders"], edges["receivers"]]), vectors)
