"""The first layer's convolution regrouped by sender element (model/interaction.py,
SpeciesConvolution) gives the per-edge route's energies and edge gradients to float64 round-off,
for every first-layer block it applies to, on every test structure; blocks it does not apply to
keep the per-edge route; the choice between the routes follows their cost."""

import pytest
import torch

import model_zoo
from mace_deploy.convert.compile import build
from mace_deploy.convert.mace_blocks import AGNOSTIC_INTERACTIONS
from mace_deploy.graph import atoms_to_graph

FIRST_BLOCKS = {name: model_zoo.config(name)["interaction_cls_first"] for name in model_zoo.CONFIGS}
# With per-structure inputs (charge/spin embeddings) a sender's features are not its element's alone.
AGNOSTIC_FIRST = sorted(name for name, block in FIRST_BLOCKS.items()
                        if block in AGNOSTIC_INTERACTIONS and "embedding_specs" not in model_zoo.config(name))


def energy_and_edge_gradients(model, atoms, route):
    """Total energy and dE/d(edge vectors), with the first layer's route forced (True: by element)."""
    conv = model.interactions[0].species_conv
    conv.cheaper = lambda *args: route
    g = atoms_to_graph(atoms, model.r_max, model.atomic_numbers)
    vectors = g.edge_vectors.to(model.embedding.dtype).requires_grad_(True)
    energy = model(g.species, g.edge_index, vectors, len(atoms)).sum()
    return energy.detach(), torch.autograd.grad(energy, vectors)[0]


def deployed(config):
    mace_model = model_zoo.make_model(config)
    return build(mace_model, list(getattr(mace_model, "heads", ["Default"]))[0], torch.float64)


@pytest.mark.parametrize("config", AGNOSTIC_FIRST)
def test_routes_agree(config):
    model = deployed(config)
    assert hasattr(model.interactions[0], "species_conv"), f"{config}: the first layer should allow the route"
    for name, make in model_zoo.STRUCTURES.items():
        atoms = make(0)
        e_species, g_species = energy_and_edge_gradients(model, atoms, True)
        e_edges, g_edges = energy_and_edge_gradients(model, atoms, False)
        assert torch.allclose(e_species, e_edges, rtol=1e-12, atol=1e-12), name
        assert torch.allclose(g_species, g_edges, rtol=1e-10, atol=1e-12 * float(g_edges.abs().max())), name


@pytest.mark.parametrize("config", sorted(set(FIRST_BLOCKS) - set(AGNOSTIC_FIRST)))
def test_other_first_layers_keep_the_edge_route(config):
    """Attention and non-linear blocks feed the radial MLP with node features, and embeddings of
    total charge and spin change every node's features: no regrouping."""
    assert not hasattr(deployed(config).interactions[0], "species_conv")


def test_route_follows_cost():
    model = deployed("base")
    first = model.interactions[0]
    conv, hidden = first.species_conv, first.radial_mlp.output_weight().shape[0]
    sh_components = (model.sh_lmax + 1) ** 2
    # dense one-element solid: 1000 atoms, 78 neighbours each, edges paired
    assert conv.cheaper(1, 1000, 78000, hidden, sh_components, first.conv)
    # many elements, few neighbours: per-receiver products cost more than the per-edge route
    assert not conv.cheaper(40, 100, 800, hidden, sh_components, first.conv)
    assert not conv.cheaper(0, 0, 0, hidden, sh_components, first.conv)
