"""A committee artifact in OpenMM's MACEForce: the mean potential with hyperactive learning's bias,
the members' spread (getUncertainty) and the descriptors (getDescriptors), against the ASE
calculator on the same structure; serialization keeps the bias."""

import numpy as np
import openmm
import pytest

import model_zoo
from mace_deploy.ase import MACEDeployCalculator
from mace_deploy.openmm import MACEForce
from openmm_helpers import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV, context, energy_forces, in_model_units, mace_system

TAU = 0.8


def _close(ours, ref, rel=1e-10):
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert np.abs(ours - ref).max() <= rel * max(1.0, np.abs(ref).max()), np.abs(ours - ref).max()


def _committee_force(system):
    return MACEForce.cast(system.getForce(0))


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
@pytest.mark.parametrize("structure", ["crystal", "molecule"])
def test_bias_uncertainty_and_descriptors_equal_ase(committee_artifact, platform, structure):
    atoms = model_zoo.STRUCTURES[structure](3)
    system = mace_system(atoms, committee_artifact)
    force = _committee_force(system)
    assert force.getNumMembers() == 3
    force.setHalBias(TAU)
    ctx = context(system, atoms, platform)
    ours = in_model_units(*energy_forces(ctx))
    calc = MACEDeployCalculator(str(committee_artifact), hal_tau=TAU)
    ase_atoms = atoms.copy()
    ase_atoms.calc = calc
    _close(ours["energy"], ase_atoms.get_potential_energy())
    _close(ours["forces"], ase_atoms.get_forces())
    energy_std, force_std = force.getUncertainty(ctx)
    _close(energy_std / KJ_PER_MOL_PER_EV, np.sqrt(calc.results["energy_var"]))
    _close(np.array(force_std) / (KJ_PER_MOL_PER_EV * ANGSTROM_PER_NM), calc.results["forces_std_atom"])
    _close(np.array(force.getDescriptors(ctx)), np.hstack(calc.get_descriptors(atoms)))


def test_serialization_keeps_the_bias(committee_artifact):
    atoms = model_zoo.crystal(4)
    system = mace_system(atoms, committee_artifact)
    _committee_force(system).setHalBias(TAU)
    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    assert _committee_force(copy).getHalBias() == TAU
    energy, forces = energy_forces(context(system, atoms, "Reference"))
    energy_copy, forces_copy = energy_forces(context(copy, atoms, "Reference"))
    assert energy == energy_copy and np.array_equal(forces, forces_copy)


def test_uncertainty_needs_an_evaluation_and_a_committee(committee_artifact, artifact):
    atoms = model_zoo.crystal(0)
    system = mace_system(atoms, committee_artifact)
    ctx = context(system, atoms, "Reference")
    with pytest.raises(openmm.OpenMMException, match="no forces computed"):
        _committee_force(system).getUncertainty(ctx)
    _, single = artifact("base")
    single_system = mace_system(atoms, single)
    with pytest.raises(openmm.OpenMMException, match="needs a committee artifact"):
        _committee_force(single_system).setHalBias(0.5)
    single_ctx = context(single_system, atoms, "Reference")
    energy_forces(single_ctx)
    with pytest.raises(openmm.OpenMMException, match="uncertainties need a committee"):
        _committee_force(single_system).getUncertainty(single_ctx)
