"""Forces and stress are derivatives of the energy: checked against central finite differences,
including the slab, whose stress mace-torch computes with a padded cell and cannot check."""

import numpy as np
import pytest

import model_zoo
from mace_deploy.ase import MACEDeployCalculator

STEP = 1e-4  # Angstrom / strain; central differences err by O(STEP^2)


def energy(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy()


@pytest.mark.parametrize("config", ["base", "inter_nonlinear", "pair_repulsion", "transform_soft", "mh1_like"])
@pytest.mark.parametrize("structure", ["molecule", "small_triclinic", "slab"])
def test_forces_are_minus_energy_gradient(artifact, config, structure):
    head = (model_zoo.config(config).get("heads") or [None])[0]
    _, path = artifact(config, head=head)
    calc = MACEDeployCalculator(str(path))
    atoms = model_zoo.STRUCTURES[structure](1)
    atoms.calc = calc
    forces = atoms.get_forces()
    rng = np.random.default_rng(0)
    for i in rng.choice(len(atoms), size=min(4, len(atoms)), replace=False):
        for d in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, d] += STEP
            minus.positions[i, d] -= STEP
            numeric = -(energy(plus, calc) - energy(minus, calc)) / (2 * STEP)
            assert abs(numeric - forces[i, d]) <= 1e-6 * max(1.0, abs(forces[i, d])), (i, d, numeric, forces[i, d])


@pytest.mark.parametrize("structure", ["crystal", "small_triclinic", "slab"])
def test_stress_is_strain_derivative(artifact, structure):
    _, path = artifact("base")
    calc = MACEDeployCalculator(str(path))
    atoms = model_zoo.STRUCTURES[structure](2)
    atoms.calc = calc
    stress = atoms.get_stress(voigt=False)
    volume = atoms.get_volume()
    for a in range(3):
        for b in range(a, 3):
            values = []
            for sign in (+1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * STEP / 2
                strain[b, a] += sign * STEP / 2
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                values.append(energy(strained, calc))
            numeric = (values[0] - values[1]) / (2 * STEP) / volume
            assert abs(numeric - stress[a, b]) <= 1e-7 * max(1.0, abs(stress[a, b])) + 1e-9, (a, b, numeric, stress[a, b])
