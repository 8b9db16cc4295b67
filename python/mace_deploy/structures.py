"""Small random test structures built from a model's own elements (used by `mace-deploy verify` and
the self-check of `mace-deploy compile`)."""

from typing import List, Sequence

import numpy as np
from ase import Atoms
from ase.data import covalent_radii


def _pick_elements(atomic_numbers: Sequence[int], rng: np.random.Generator, count: int = 4) -> List[int]:
    zs = list(atomic_numbers)
    return list(rng.choice(zs, size=min(count, len(zs)), replace=False))


def _place(n: int, elements: List[int], rng, sample, min_distance, cell=None, pbc=False,
           radii_fraction: float = 0.0) -> Atoms:
    """Rejection sampling of n atoms with pair distances (minimum image) above min_distance and
    above radii_fraction times the sum of the pair's covalent radii."""
    atoms = Atoms(cell=cell, pbc=pbc)
    attempts = 0
    while len(atoms) < n:
        attempts += 1
        if attempts > 20000:
            raise RuntimeError("could not place atoms without overlaps")
        z = int(elements[len(atoms) % len(elements)])
        trial = atoms + Atoms(numbers=[z], positions=[sample()], cell=cell, pbc=pbc)
        if len(atoms):
            distances = trial.get_distances(len(atoms), range(len(atoms)), mic=bool(np.any(pbc)))
            closest = np.maximum(min_distance, radii_fraction * (covalent_radii[z] + covalent_radii[atoms.numbers]))
            if np.any(distances < closest):
                continue
        atoms = trial
    return atoms


def verification_structures(atomic_numbers: Sequence[int], r_max: float, seed: int = 0) -> dict:
    """A cluster, a periodic box and a periodic triclinic cell smaller than 2 * r_max."""
    rng = np.random.default_rng(seed)
    elements = _pick_elements(atomic_numbers, rng)
    d_min = max(0.9, 0.9 * 2 * float(np.min(covalent_radii[elements])))
    radius = 1.6 * d_min
    cluster = _place(8, elements, rng, lambda: rng.uniform(-radius, radius, 3), d_min)
    box_length = max(1.1 * r_max, 3 * d_min)
    box = _place(12, elements, rng, lambda: rng.uniform(0, box_length, 3), d_min,
                 cell=np.eye(3) * box_length, pbc=True)
    cell = np.array([[1.0, 0.0, 0.0], [0.35, 1.0, 0.0], [-0.2, 0.3, 1.0]]) * max(0.55 * r_max, 1.3 * d_min)
    triclinic = _place(2, elements, rng, lambda: rng.uniform(0, 1, 3) @ cell, d_min, cell=cell, pbc=True)
    return {"cluster": cluster, "periodic box": box, "small triclinic cell": triclinic}


def self_check_structure(atomic_numbers: Sequence[int], seed: int = 0) -> Atoms:
    """A periodic box holding every element of the model (at least 8 atoms), pairs no closer than
    0.8 times the sum of their covalent radii (energies of the size trained models see, where
    float32 artifacts keep their precision), about 12 A^3 per light atom and more for heavy ones."""
    rng = np.random.default_rng(seed)
    elements = list(atomic_numbers)
    count = max(8, len(elements))
    volume = sum(max(12.0, 14.0 * covalent_radii[elements[k % len(elements)]] ** 3) for k in range(count))
    box_length = volume ** (1 / 3)
    return _place(count, elements, rng, lambda: rng.uniform(0, box_length, 3), 0.7,
                  cell=np.eye(3) * box_length, pbc=True, radii_fraction=0.8)
