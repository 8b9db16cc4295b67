"""The C++ neighbour list (csrc/neighbors) against a brute-force reference and ASE's neighbor_list.

Convention: ase.neighborlist.neighbor_list("ijS") with i = sender, j = receiver, so an edge
(i, j, S) has vector x_j - x_i + S @ cell and length below the cutoff.
"""

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mace_deploy import _C

ALL_PBC = list(itertools.product([False, True], repeat=3))


def run(positions, cell, pbc, cutoff, dtype=np.float64, self_interaction=False):
    out = _C.neighbor_list(torch.from_numpy(np.asarray(positions, dtype=dtype).reshape(-1, 3)),
                           torch.from_numpy(np.asarray(cell, dtype=np.float64)), [bool(p) for p in pbc], cutoff,
                           self_interaction=self_interaction)
    return {key: value.numpy() for key, value in out.items()}


def edge_set(i, j, shifts):
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), map(tuple, np.asarray(shifts).tolist())))


def brute_force(positions, cell, pbc, cutoff, self_interaction=False):
    """Every (i, j, S) with |x_j - x_i + S @ cell| < cutoff, by enumerating, for every pair of
    atoms, all shifts S that could bring it within the cutoff: no wrapping, no bins."""
    x = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    cell = np.asarray(cell, dtype=np.float64)
    periodic = np.flatnonzero(pbc)
    dual = np.linalg.pinv(cell[periodic])  # [3, p]: fractional coordinates within the periodic lattice
    # |fractional component k of a vector| <= |vector| * |dual_k|, so shifts beyond this reach are too far.
    reach = np.ceil(cutoff * np.linalg.norm(dual, axis=0)).astype(int) + 1
    offsets = np.array(list(itertools.product(*[range(-r, r + 1) for r in reach])), dtype=np.int64)
    offsets = offsets.reshape(np.prod(2 * reach + 1), len(periodic))
    i, j = (a.ravel() for a in np.meshgrid(np.arange(len(x)), np.arange(len(x)), indexing="ij"))
    d0 = x[j] - x[i]
    centre = -np.rint(d0 @ dual).astype(np.int64)
    shifts = np.zeros((len(i), len(offsets), 3), dtype=np.int64)
    shifts[:, :, periodic] = centre[:, None, :] + offsets[None, :, :]
    vectors = d0[:, None, :] + shifts @ cell
    keep = np.linalg.norm(vectors, axis=-1) < cutoff
    if not self_interaction:
        keep &= ~((i == j)[:, None] & (shifts == 0).all(axis=-1))
    pair, image = np.nonzero(keep)
    return edge_set(i[pair], j[pair], shifts[pair, image])


def ase_reference(positions, cell, pbc, cutoff, self_interaction=False):
    atoms = Atoms("H" * len(positions), positions=np.asarray(positions, dtype=np.float64), cell=cell, pbc=pbc)
    return edge_set(*ase_neighbor_list("ijS", atoms, cutoff, self_interaction=self_interaction))


def check_structure(out, positions, cell, dtype):
    """Receiver-sorted, (sender, shift)-sorted within a receiver, no duplicates, vectors by the convention."""
    i, j, shifts, vectors = out["senders"], out["receivers"], out["shifts"], out["vectors"]
    assert i.dtype == np.int64 and j.dtype == np.int64 and shifts.dtype == np.int64
    assert vectors.dtype == dtype and vectors.shape == (len(i), 3) and shifts.shape == (len(i), 3)
    keys = np.column_stack([j, i, shifts])
    if len(keys) > 1:
        step = np.diff(keys, axis=0)
        first_change = step[np.arange(len(step)), np.argmax(step != 0, axis=1)]
        assert (first_change > 0).all(), "edges not strictly sorted by (receiver, sender, shift)"
    x = np.asarray(positions, dtype=dtype).astype(np.float64).reshape(-1, 3)
    expected = x[j] - x[i] + shifts @ np.asarray(cell, dtype=np.float64)
    # Round-off of the sum scales with its largest terms (x far outside the cell, large shifts).
    scale = max(1.0, np.abs(x).max(initial=0), (np.abs(shifts) @ np.abs(cell)).max(initial=0))
    tolerance = (1e-6 if dtype == np.float32 else 1e-13) * scale
    np.testing.assert_allclose(vectors, expected, rtol=0, atol=tolerance)


def check(positions, cell, pbc, cutoff, dtype=np.float64, with_ase=True):
    # Both references see exactly the positions the neighbour list sees (float32 ones widened).
    positions = np.asarray(positions, dtype=dtype).astype(np.float64)
    out = run(positions, cell, pbc, cutoff, dtype)
    check_structure(out, positions, cell, dtype)
    found = edge_set(out["senders"], out["receivers"], out["shifts"])
    assert len(found) == len(out["senders"])
    assert found == brute_force(positions, cell, pbc, cutoff)
    if with_ase:
        assert found == ase_reference(positions, cell, pbc, cutoff)
    return out


def random_cell(rng, low, high):
    """A random triclinic cell (rotated, skewed) that is not close to flat."""
    while True:
        cell = rng.uniform(-0.5, 0.5, (3, 3)) * high + np.diag(rng.uniform(low, high, 3))
        if abs(np.linalg.det(cell)) > 0.3 * np.prod(np.linalg.norm(cell, axis=1)):
            return cell


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("pbc", ALL_PBC, ids=lambda p: "".join("TF"[not b] for b in p))
def test_random_triclinic_cells(pbc, dtype):
    rng = np.random.default_rng(sum(2**k * b for k, b in enumerate(pbc)))
    for _ in range(6):
        cell = random_cell(rng, 3.0, 9.0)
        n = int(rng.integers(1, 40))
        # Fractional coordinates in [-0.3, 1.3): some atoms start outside the cell.
        positions = rng.uniform(-0.3, 1.3, (n, 3)) @ cell
        check(positions, cell, pbc, float(rng.uniform(1.5, 7.0)), dtype)


@pytest.mark.parametrize("pbc", ALL_PBC, ids=lambda p: "".join("TF"[not b] for b in p))
def test_cells_smaller_than_the_cutoff(pbc):
    rng = np.random.default_rng(11)
    for _ in range(3):
        cell = random_cell(rng, 1.2, 2.5)
        positions = rng.uniform(0, 1, (int(rng.integers(1, 8)), 3)) @ cell
        check(positions, cell, pbc, float(rng.uniform(4.0, 6.0)))


@pytest.mark.parametrize("pbc", [(True, True, True), (True, True, False), (False, True, True)])
def test_very_skewed_cells(pbc):
    rng = np.random.default_rng(5)
    for tilt in (3.7, -6.2):
        cell = np.array([[4.0, 0.0, 0.0], [tilt * 4.0, 3.5, 0.0], [-0.8 * tilt, 2.3 * tilt, 4.5]])
        positions = rng.uniform(-0.2, 1.2, (16, 3)) @ cell
        check(positions, cell, pbc, 5.0)


@pytest.mark.parametrize("pbc", [(True, True, True), (True, True, False)])
def test_extremely_skewed_cell_is_the_same_lattice(pbc):
    """cell = U @ compact with U integer unimodular: the same periodic system, so the edges are
    the compact cell's with every shift S expressed as S @ U in the compact basis."""
    rng = np.random.default_rng(6)
    compact = random_cell(rng, 4.0, 6.0)
    unimodular = np.array([[1, 0, 0], [-317, 1, 0], [1200, 45, 1]]) if pbc[2] else np.array(
        [[1, 0, 0], [-317, 1, 0], [0, 0, 1]])
    cell = unimodular @ compact
    positions = rng.uniform(-0.3, 1.3, (30, 3)) @ compact
    out = run(positions, cell, pbc, 5.0)
    check_structure(out, positions, cell, np.float64)
    assert edge_set(out["senders"], out["receivers"], out["shifts"] @ unimodular) == brute_force(
        positions, compact, pbc, 5.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True), (False, False, True)])
def test_atoms_far_outside_the_cell(pbc, dtype):
    """Shifts refer to the positions as given, however many cells away the atoms are."""
    rng = np.random.default_rng(7)
    cell = random_cell(rng, 4.0, 7.0)
    frac = rng.uniform(0, 1, (20, 3))
    # Whole-cell displacements of up to +-1000 cells along the periodic directions only.
    frac += rng.integers(-1000, 1000, (20, 3)) * np.asarray(pbc)
    out = check(frac @ cell, cell, pbc, 5.5, dtype)
    assert np.abs(out["shifts"]).max() > 100


def test_single_atom_in_a_tiny_cell():
    cell = np.array([[0.7, 0.0, 0.0], [0.2, 0.8, 0.0], [-0.1, 0.15, 0.75]])
    out = check([[0.3, -5.0, 2.0]], cell, (True, True, True), 5.0)
    assert len(out["senders"]) > 1000 and (out["senders"] == 0).all()
    # Every image is an edge in both directions: S and -S with opposite vectors.
    assert edge_set(0 * out["senders"], 0 * out["senders"], -out["shifts"]) == edge_set(
        out["senders"], out["receivers"], out["shifts"])


def test_single_atom_thin_slab_many_images():
    cell = np.array([[0.9, 0.0, 0.0], [0.4, 1.1, 0.0], [0.0, 0.0, 0.0]])
    out = check([[0.1, 0.2, 0.3]], cell, (True, True, False), 6.0)
    assert (out["shifts"][:, 2] == 0).all() and len(out["senders"]) > 100


def test_empty_system():
    for dtype in (np.float32, np.float64):
        out = run(np.zeros((0, 3)), np.eye(3) * 5, (True, True, True), 4.0, dtype)
        assert out["senders"].shape == (0,) and out["receivers"].shape == (0,)
        assert out["shifts"].shape == (0, 3) and out["vectors"].shape == (0, 3)
        assert out["vectors"].dtype == dtype and out["shifts"].dtype == np.int64


def test_open_boundaries_with_zero_cell():
    rng = np.random.default_rng(3)
    positions = rng.uniform(-20, 20, (60, 3))
    out = check(positions, np.zeros((3, 3)), (False, False, False), 8.0)
    assert (out["shifts"] == 0).all()
    # Atoms all in one plane or on one line: the bounding box is flat.
    check(positions * [1, 1, 0], np.zeros((3, 3)), (False, False, False), 8.0)
    check(positions * [0, 1, 0], np.zeros((3, 3)), (False, False, False), 8.0)


@pytest.mark.parametrize("pbc", [(True, True, False), (False, True, False), (True, False, True)])
def test_zero_cell_vectors_along_open_directions(pbc):
    rng = np.random.default_rng(9)
    cell = random_cell(rng, 3.0, 6.0) * np.asarray(pbc)[:, None]
    positions = rng.uniform(-10, 10, (40, 3))
    out = check(positions, cell, pbc, 4.5)
    assert (out["shifts"][:, ~np.asarray(pbc)] == 0).all()


def test_sparse_atoms_in_a_huge_box():
    """Far fewer atoms than cutoff-sized bins: the bin grid is coarsened, results unchanged."""
    rng = np.random.default_rng(4)
    for pbc in [(True, True, True), (False, False, False)]:
        # ASE's neighbor_list allocates a million bins here and takes seconds: brute force only.
        check(rng.uniform(0, 5000, (30, 3)), np.eye(3) * 5000, pbc, 3.0, with_ase=False)
        check(np.concatenate([rng.uniform(0, 4, (10, 3)), rng.uniform(4000, 4004, (10, 3))]),
              np.eye(3) * 5000, pbc, 3.0, with_ase=False)


def test_self_interaction_matches_ase():
    rng = np.random.default_rng(8)
    cell = random_cell(rng, 3.0, 5.0)
    positions = rng.uniform(0, 1, (10, 3)) @ cell
    out = run(positions, cell, (True, False, True), 4.0, self_interaction=True)
    found = edge_set(out["senders"], out["receivers"], out["shifts"])
    assert found == ase_reference(positions, cell, (True, False, True), 4.0, self_interaction=True)
    assert found == brute_force(positions, cell, (True, False, True), 4.0, self_interaction=True)
    assert {(k, k, (0, 0, 0)) for k in range(10)} <= found


def test_permuting_atoms_permutes_edges():
    rng = np.random.default_rng(12)
    cell = random_cell(rng, 6.0, 8.0)
    positions = rng.uniform(-0.5, 1.5, (50, 3)) @ cell
    order = rng.permutation(50)
    a = run(positions, cell, (True, True, True), 5.0)
    b = run(positions[order], cell, (True, True, True), 5.0)
    assert edge_set(order[b["senders"]], order[b["receivers"]], b["shifts"]) == edge_set(
        a["senders"], a["receivers"], a["shifts"])


def test_results_on_the_cutoff_sphere_are_excluded():
    """ASE's rule: a pair exactly at the cutoff is not an edge."""
    out = run([[0, 0, 0], [2.0, 0, 0]], np.eye(3) * 4.0, (True, False, False), 2.0)
    assert len(out["senders"]) == 0


@pytest.mark.parametrize("cutoff", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_cutoff_raises(cutoff):
    with pytest.raises(ValueError, match="cutoff"):
        run(np.zeros((2, 3)), np.eye(3), (True, True, True), cutoff)


def test_invalid_inputs_raise():
    x = np.random.default_rng(0).uniform(0, 3, (4, 3))
    with pytest.raises(ValueError, match="cell vector 2 is zero"):
        run(x, np.diag([3.0, 3.0, 0.0]), (True, True, True), 2.0)
    with pytest.raises(ValueError, match="linearly dependent"):
        run(x, [[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]], (True, True, False), 2.0)
    with pytest.raises(ValueError, match="linearly dependent"):
        run(x, [[3.0, 0, 0], [0, 3.0, 0], [3.0, 3.0, 0]], (True, True, True), 2.0)
    with pytest.raises(ValueError, match="far thinner than the cutoff"):
        run(x, np.eye(3) * 1e-3, (True, True, True), 5.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        run(np.array([[0.0, np.nan, 0.0]]), np.eye(3), (False, False, False), 2.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        run(x, np.full((3, 3), np.inf), (True, False, False), 2.0)
    with pytest.raises(ValueError, match="shape"):
        _C.neighbor_list(torch.zeros(4, 2, dtype=torch.float64), torch.eye(3, dtype=torch.float64),
                         [True] * 3, 2.0)
    with pytest.raises(ValueError, match="float32 or float64"):
        _C.neighbor_list(torch.zeros(4, 3, dtype=torch.int64), torch.eye(3, dtype=torch.float64), [True] * 3, 2.0)
    with pytest.raises(ValueError, match="cell"):
        _C.neighbor_list(torch.zeros(4, 3, dtype=torch.float64), torch.eye(2, dtype=torch.float64), [True] * 3, 2.0)
