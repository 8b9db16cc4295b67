"""Graphs with ghost atoms, as LAMMPS builds them: the halo exchange between interaction layers
(here the one-process PeriodicImageExchange of the runtime) reproduces the ghost-free result."""

import threading

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

import model_zoo
from mace_deploy import _C
from mace_deploy.graph import species_of


def ghost_graph(atoms, r_max, atomic_numbers):
    """Local atoms first, then one ghost node per periodic image that sends an edge to a local
    atom; returns (species, edge_index, vectors, n_local, owners of the ghosts)."""
    senders, receivers, shifts = neighbor_list("ijS", atoms, r_max)
    vectors = atoms.positions[receivers] - atoms.positions[senders] + shifts @ atoms.cell.array
    n = len(atoms)
    ghost_of, owners, nodes = {}, [], []
    for atom, shift in zip(senders, map(tuple, shifts)):
        if shift == (0, 0, 0):
            nodes.append(atom)
            continue
        if (atom, shift) not in ghost_of:
            ghost_of[(atom, shift)] = n + len(owners)
            owners.append(atom)
        nodes.append(ghost_of[(atom, shift)])
    species = species_of(atoms, atomic_numbers)
    species = torch.cat([species, species[torch.tensor(owners, dtype=torch.int64)]])
    edge_index = torch.tensor(np.stack([nodes, receivers]), dtype=torch.int64)
    return species, edge_index, torch.from_numpy(vectors), n, torch.tensor(owners, dtype=torch.int64)


@pytest.mark.parametrize("config", ["base", "num_interactions_3", "inter_nonlinear", "inter_att", "pair_repulsion",
                                    "num_interactions_1"])
@pytest.mark.parametrize("structure", ["crystal", "small_triclinic", "slab"])
def test_ghosts_reproduce_periodic_images(artifact, config, structure):
    _, path = artifact(config)
    model = _C.Model(str(path))
    atoms = model_zoo.STRUCTURES[structure](4)
    species, edge_index, vectors, n, owners = ghost_graph(atoms, model.r_max, model.atomic_numbers)
    assert len(owners) > 0
    ghosts = model.compute(species, edge_index, vectors, n, atom_virial=True, ghost_owners=owners)

    plain_species = species[:n]
    plain_edges = torch.stack([torch.where(edge_index[0] < n, edge_index[0], owners[(edge_index[0] - n).clamp(min=0)]),
                               edge_index[1]])
    plain = model.compute(plain_species, plain_edges, vectors, n, atom_virial=True)

    assert abs(float(ghosts["energy"]) - float(plain["energy"])) <= 1e-10 * n
    assert torch.allclose(ghosts["atom_energies"], plain["atom_energies"], rtol=0, atol=1e-10)
    forces = ghosts["forces"][:n].index_add(0, owners, ghosts["forces"][n:])  # LAMMPS' reverse communication
    assert torch.allclose(forces, plain["forces"], rtol=0, atol=1e-10)
    assert torch.allclose(ghosts["virial"], plain["virial"], rtol=0, atol=1e-10)
    atom_virial = ghosts["atom_virial"][:n].index_add(0, owners, ghosts["atom_virial"][n:])
    assert torch.allclose(atom_virial, plain["atom_virial"], rtol=0, atol=1e-10)
    assert torch.allclose(plain["atom_virial"].sum(0), plain["virial"], rtol=0, atol=1e-10)


def test_ghosts_without_exchange_are_refused_for_deep_models(artifact):
    _, path = artifact("base")
    model = _C.Model(str(path))
    atoms = model_zoo.crystal(0)
    species, edge_index, vectors, n, _ = ghost_graph(atoms, model.r_max, model.atomic_numbers)
    with pytest.raises(RuntimeError, match="not supported: .*ghost atoms"):
        model.compute(species, edge_index, vectors, n)


class RecordingExchange:
    """A host's exchange written in Python (periodic images, as PeriodicImageExchange), recording
    the thread of every call."""

    def __init__(self, owners):
        self.owners = owners
        self.calls = []

    def forward(self, features, n_local, layer):
        self.calls.append(("forward", layer, threading.get_ident()))
        features[n_local:] = features[self.owners]

    def reverse(self, gradients, n_local, layer):
        self.calls.append(("reverse", layer, threading.get_ident()))
        gradients[:n_local].index_add_(0, self.owners, gradients[n_local:])


@pytest.mark.parametrize("backward_on_worker", [False, True], ids=["backward_here", "backward_on_worker"])
@pytest.mark.parametrize("config", ["base", "num_interactions_3", "inter_nonlinear"])
def test_exchange_calls_stay_on_the_calling_thread(artifact, config, backward_on_worker):
    """With the backward on a worker thread (as torch runs a CUDA backward), the host's exchange,
    which may be MPI initialised without thread support, is still called on the thread that called
    compute (FunnelledExchange), once per layer after the first in each direction, with the same
    result as the built-in exchange."""
    _, path = artifact(config)
    model = _C.Model(str(path))
    atoms = model_zoo.STRUCTURES["small_triclinic"](2)
    species, edge_index, vectors, n, owners = ghost_graph(atoms, model.r_max, model.atomic_numbers)
    exchange = RecordingExchange(owners)
    python_host = model.compute(species, edge_index, vectors, n, exchange=exchange,
                                backward_on_worker=backward_on_worker)
    built_in = model.compute(species, edge_index, vectors, n, ghost_owners=owners)

    layers = list(range(1, model.num_interactions))
    assert [(kind, layer) for kind, layer, _ in exchange.calls] == (
        [("forward", layer) for layer in layers] + [("reverse", layer) for layer in reversed(layers)])
    assert {thread for _, _, thread in exchange.calls} == {threading.get_ident()}
    for key in ("energy", "forces", "virial"):
        assert torch.allclose(python_host[key], built_in[key], rtol=0, atol=1e-12)


@pytest.mark.parametrize("backward_on_worker", [False, True], ids=["backward_here", "backward_on_worker"])
def test_exchange_errors_reach_the_caller(artifact, backward_on_worker):
    _, path = artifact("base")
    model = _C.Model(str(path))
    atoms = model_zoo.crystal(0)
    species, edge_index, vectors, n, owners = ghost_graph(atoms, model.r_max, model.atomic_numbers)

    class FailingReverse(RecordingExchange):
        def reverse(self, gradients, n_local, layer):
            raise RuntimeError("the host lost a rank")

    with pytest.raises(RuntimeError, match="the host lost a rank"):
        model.compute(species, edge_index, vectors, n, exchange=FailingReverse(owners),
                      backward_on_worker=backward_on_worker)
    # the model is usable afterwards
    plain = model.compute(species, edge_index, vectors, n, exchange=RecordingExchange(owners))
    assert torch.isfinite(plain["energy"])
