"""Models with embeddings of total charge and spin multiplicity (MACE-OMOL style: mace-torch's
`embedding_specs`, `GenericJointEmbedding`, `embedding_readout`) in every host against mace-torch,
whose calculator reads atoms.info["charge"] and atoms.info["spin"]. Per-atom energies of models
with an embedding readout have no mace-torch reference (conftest.reference_results): there they
must add up to the energy."""

import json

import numpy as np
import openmm
import pytest

import lammps_runner as lr
import model_zoo
from conftest import assert_close_results, deploy_results, reference_results
from mace_deploy.ase import MACEDeployCalculator
from mace_deploy.errors import StructureError
from mace_deploy.openmm import MACEForce
from openmm_helpers import context, energy_forces, in_model_units, mace_system

PAIRS = [(0, 1), (1, 2), (-1, 2), (0, 3)]  # (total charge, spin multiplicity)
CONFIGS = ["joint_embedding", "joint_embedding_continuous"]


def charged(atoms, charge, spin):
    atoms = atoms.copy()
    atoms.info.update(charge=charge, spin=spin)
    return atoms


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype, rel", [("float64", 1e-9), ("float32", 1e-4)])
def test_ase_matches_mace_torch(artifact, config, dtype, rel):
    model_path, artifact_path = artifact(config, dtype=dtype)
    calc = MACEDeployCalculator(str(artifact_path))
    assert calc.model.graph_inputs == ["total_charge", "total_spin"]
    energies = []
    for charge, spin in PAIRS:
        for structure in ("molecule", "water_box"):
            atoms = charged(model_zoo.STRUCTURES[structure](0), charge, spin)
            ours = deploy_results(calc, atoms, stress=atoms.pbc.all())
            assert abs(ours["energies"].sum() - ours["energy"]) <= 1e-9 * len(atoms)
            assert_close_results(ours, reference_results(model_path, atoms, stress=atoms.pbc.all()), rel, len(atoms))
            energies.append(ours["energy"])
    assert len(set(np.round(energies, 6))) == len(energies), "charge and spin must change the energy"


def test_ase_defaults_and_recalculation(artifact):
    model_path, artifact_path = artifact("joint_embedding")
    atoms = model_zoo.molecule(0)
    atoms.calc = MACEDeployCalculator(str(artifact_path))
    neutral = atoms.get_potential_energy()  # no info: the model's defaults, charge 0 and spin 1
    assert neutral == pytest.approx(reference_results(model_path, charged(atoms, 0, 1))["energy"], rel=1e-12)
    atoms.info["charge"] = 1  # a changed charge is a changed system: ASE must not return the cached energy
    cation = atoms.get_potential_energy()
    assert abs(cation - neutral) > 1e-3
    assert cation == pytest.approx(reference_results(model_path, charged(atoms, 1, 1))["energy"], rel=1e-12)
    del atoms.info["charge"]
    assert atoms.get_potential_energy() == pytest.approx(reference_results(model_path, charged(atoms, 0, 1))["energy"],
                                                         rel=1e-12)


def test_ase_errors(artifact):
    _, with_inputs = artifact("joint_embedding")
    atoms = charged(model_zoo.molecule(0), 11, 1)  # the table holds charges -10 to 10
    atoms.calc = MACEDeployCalculator(str(with_inputs))
    with pytest.raises(StructureError, match=r"total_charge = 11 is outside the values this model embeds "
                                             r"\(-10 to 10\)"):
        atoms.get_potential_energy()
    # A model without these inputs ignores them, as mace-torch's calculator does.
    model_path, plain = artifact("base")
    atoms = charged(model_zoo.molecule(0), 1, 2)
    atoms.calc = MACEDeployCalculator(str(plain))
    assert atoms.get_potential_energy() == pytest.approx(reference_results(model_path, atoms)["energy"], rel=1e-12)


@pytest.mark.parametrize("nprocs", [1, 2])
def test_lammps_matches_mace_torch(tmp_path, artifact, nprocs):
    model_path, artifact_path = artifact("joint_embedding")
    for k, (charge, spin) in enumerate(PAIRS):
        atoms = charged(model_zoo.water_box(0), charge, spin)
        workdir = tmp_path / f"{k}"
        workdir.mkdir()
        pair = f"pair_style mace charge {charge} spin {spin}\npair_coeff * * {artifact_path} O H"
        result = lr.evaluate(atoms, artifact_path, workdir, nprocs=nprocs, elements=["O", "H"], pair=pair)
        ref = reference_results(model_path, atoms)
        assert_close_results({"energy": result.energy, "forces": result.forces}, ref, 1e-9, len(atoms))
        assert abs(result.energies.sum() - result.energy) <= 1e-9 * len(atoms)


def test_lammps_errors(tmp_path, artifact):
    _, plain = artifact("base")
    _, with_inputs = artifact("joint_embedding")
    atoms = model_zoo.water_box(0)
    lr.write_data(atoms, tmp_path / "data.lammps", ["O", "H"])
    for model, keywords, message in [
        (plain, "charge 1", "this model takes no total_charge input"),
        (with_inputs, "spin 11", "total_spin = 11 is outside the values this model embeds (0 to 10)"),
        (with_inputs, "charge", "keyword charge needs a value"),
    ]:
        script = f"""{lr.plugin_command()}
units metal
boundary p p p
read_data data.lammps
pair_style mace {keywords}
pair_coeff * * {model} O H
run 0
"""
        proc = lr.run_lmp(script, tmp_path, check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, proc.stdout[-2000:]


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_openmm_matches_mace_torch(artifact, platform):
    model_path, artifact_path = artifact("joint_embedding")
    atoms = model_zoo.water_box(0)
    for charge, spin in PAIRS:
        system = mace_system(atoms, str(artifact_path))
        force = MACEForce.cast(system.getForce(0))
        force.setCharge(charge)
        force.setSpinMultiplicity(spin)
        assert (force.getCharge(), force.getSpinMultiplicity()) == (charge, spin)
        ours = in_model_units(*energy_forces(context(system, atoms, platform)))
        assert_close_results(ours, reference_results(model_path, charged(atoms, charge, spin)), 1e-9, len(atoms))


def test_openmm_serialization_and_errors(artifact):
    _, artifact_path = artifact("joint_embedding")
    atoms = model_zoo.water_box(0)
    system = mace_system(atoms, str(artifact_path))
    force = MACEForce.cast(system.getForce(0))
    assert (force.getCharge(), force.getSpinMultiplicity()) == (0.0, 1.0)  # the model's defaults
    force.setCharge(-1)
    force.setSpinMultiplicity(2)
    expected = energy_forces(context(system, atoms, "Reference"))[0]
    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    restored = MACEForce.cast(copy.getForce(0))
    assert (restored.getCharge(), restored.getSpinMultiplicity()) == (-1.0, 2.0)
    assert energy_forces(context(copy, atoms, "Reference"))[0] == pytest.approx(expected, rel=1e-14)
    with pytest.raises(openmm.OpenMMException, match="total_charge = 12 is outside the values this model embeds"):
        force.setCharge(12)
    assert force.getCharge() == -1.0  # unchanged by the refused value

    _, plain = artifact("base")
    plain_system = mace_system(atoms, str(plain))  # the cast refers to the System's force: keep it alive
    plain_force = MACEForce.cast(plain_system.getForce(0))
    with pytest.raises(openmm.OpenMMException, match="takes no total_charge input"):
        plain_force.setCharge(1)
    with pytest.raises(openmm.OpenMMException, match="takes no total_spin input"):
        plain_force.getSpinMultiplicity()


def test_info_lists_the_inputs(artifact):
    from test_cli import run

    _, artifact_path = artifact("joint_embedding")
    info = json.loads(run("info", artifact_path, "--json", check_exit=0).stdout)
    assert info["graph_inputs"] == ["total_charge", "total_spin"]
    assert info["graph_input_defaults"] == [0.0, 1.0] and info["graph_input_bounds"] == [-10.0, 10.0, 0.0, 10.0]
