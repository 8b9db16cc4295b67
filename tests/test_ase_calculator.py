"""ASE calculator behaviour beyond parity: properties, boundary conditions and bad input."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError

import model_zoo
from mace_deploy.ase import MACEDeployCalculator
from mace_deploy.errors import ModelFileError, StructureError


@pytest.fixture(scope="module")
def calc(artifact):
    return MACEDeployCalculator(str(artifact("base")[1]))


def test_properties(calc):
    atoms = model_zoo.crystal(0)
    atoms.calc = calc
    energies = atoms.get_potential_energies()
    assert energies.shape == (len(atoms),)
    assert np.isclose(energies.sum(), atoms.get_potential_energy(), rtol=0, atol=1e-10)
    assert atoms.get_potential_energy() == atoms.get_potential_energy(force_consistent=True)
    assert atoms.get_stress().shape == (6,)
    assert np.abs(atoms.get_forces().sum(axis=0)).max() < 1e-10  # no net force on a periodic crystal


def test_cell_smaller_than_cutoff_is_the_same_crystal(calc):
    """A 1-atom fcc cell sees dozens of its own images; a 3x3x3 supercell of it must give 27x the energy."""
    small = bulk("Cu", "fcc", a=3.6)
    big = small.repeat((3, 3, 3))
    small.calc, big.calc = calc, calc
    assert np.isclose(big.get_potential_energy(), 27 * small.get_potential_energy(), rtol=1e-12)
    assert np.allclose(big.get_stress(), small.get_stress(), atol=1e-12)


def test_no_stress_without_volume(calc):
    atoms = model_zoo.molecule(0)
    atoms.calc = calc
    atoms.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_unknown_element_is_named(calc):
    atoms = Atoms("CuAuH", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.0, 0]])
    atoms.calc = calc
    with pytest.raises(StructureError, match="Au not in the model"):
        atoms.get_potential_energy()


def test_overlapping_atoms(calc):
    atoms = Atoms("CuCu", positions=[[0, 0, 0], [0, 0, 1e-4]])
    atoms.calc = calc
    with pytest.raises(StructureError, match="overlapping atoms"):
        atoms.get_potential_energy()


def test_periodic_direction_without_cell(calc):
    atoms = Atoms("CuCu", positions=[[0, 0, 0], [0, 0, 2.5]], pbc=True)
    atoms.calc = calc
    with pytest.raises(StructureError, match="non-zero cell vectors"):
        atoms.get_potential_energy()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible here")
def test_cuda_device_without_cuda_says_so(artifact):
    """Not "corrupt, truncated ...": the file is fine, this torch has no CUDA."""
    _, path = artifact("base")
    with pytest.raises(ModelFileError, match="this torch .* has no CUDA support") as raised:
        MACEDeployCalculator(str(path), device="cuda")
    assert "corrupt" not in str(raised.value)


def test_missing_artifact(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        MACEDeployCalculator(str(tmp_path / "missing.mace.pt"))
