"""The OpenMM MACEForce plugin: parity with mace-torch on the Reference and CPU platforms, finite
differences, OpenMM integration (serialization, contexts, force groups, CustomCVForce) and errors."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import openmm
import openmm.app
import pytest
from ase import Atoms

import model_zoo
from conftest import REPO, assert_close_results, reference_results
from mace_deploy.openmm import MACEForce, mace_force_from_topology
from openmm_helpers import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV, context, energy_forces, in_model_units, mace_system

PLATFORMS = ["Reference", "CPU"]


@pytest.fixture(scope="module")
def model(artifact):
    return str(artifact("base")[1])


@pytest.fixture(scope="module")
def water_system(model):
    atoms = model_zoo.water_box(0)
    return atoms, mace_system(atoms, model)


def test_plugin_loaded_without_failures():
    assert openmm.Platform.getPluginLoadFailures() == ()
    assert isinstance(MACEForce, type) and issubclass(MACEForce, openmm.Force)


def test_plugin_load_failure_is_reported(tmp_path):
    """A kernel library OpenMM cannot load is an ImportError with OpenMM's reason (in a fresh process:
    loading a directory replaces getPluginLoadFailures())."""
    (tmp_path / "libMACEDeployOpenMMReference.so").write_bytes(b"not a library")
    code = "import sys, mace_deploy.openmm as m; m._load_kernels(sys.argv[1])"
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=":".join(sys.path)))
    assert run.returncode == 1
    assert "ImportError: mace_deploy.openmm: cannot load the MACEForce kernels from" in run.stderr
    assert "libMACEDeployOpenMMReference.so" in run.stderr.splitlines()[-1]


def test_unit_factor_is_codata():
    assert KJ_PER_MOL_PER_EV == pytest.approx(96.48533212331001, rel=1e-15)


# molecule: no box; water_box: periodic cube; small_triclinic: triclinic box with heights < r_max.
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("structure", ["molecule", "water_box", "small_triclinic"])
def test_matches_mace_torch(artifact, platform, structure):
    model_path, compiled = artifact("base")
    atoms = model_zoo.STRUCTURES[structure](0)
    ctx = context(mace_system(atoms, str(compiled)), atoms, platform)
    ours = in_model_units(*energy_forces(ctx))
    ref = reference_results(model_path, atoms)
    del ref["energies"]
    assert_close_results(ours, ref, 1e-9, len(atoms))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_float32_artifact(artifact, platform):
    model_path, compiled = artifact("base", dtype="float32")
    atoms = model_zoo.water_box(0)
    ours = in_model_units(*energy_forces(context(mace_system(atoms, str(compiled)), atoms, platform)))
    ref = reference_results(model_path, atoms)
    del ref["energies"]
    assert_close_results(ours, ref, 1e-4, len(atoms))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_forces_are_finite_differences_of_the_energy(water_system, platform):
    atoms, system = water_system
    ctx = context(system, atoms, platform)
    x0 = atoms.positions / ANGSTROM_PER_NM
    _, forces = energy_forces(ctx)
    h = 1e-5  # nm
    for atom, d in [(0, 0), (1, 2), (5, 1), (17, 0)]:
        energies = []
        for sign in (1, -1):
            x = x0.copy()
            x[atom, d] += sign * h
            ctx.setPositions(x)
            energies.append(energy_forces(ctx)[0])
        numeric = -(energies[0] - energies[1]) / (2 * h)
        assert numeric == pytest.approx(forces[atom, d], rel=1e-6, abs=1e-4)


def test_serialization_round_trip(model, water_system):
    atoms, system = water_system
    xml = openmm.XmlSerializer.serialize(system)
    with open(model, "rb") as f:
        assert f'modelSha256="{hashlib.sha256(f.read()).hexdigest()}"' in xml
    copy = openmm.XmlSerializer.deserialize(xml)
    # SWIG hands back a plain Force for plugin forces; isinstance/cast recover the MACEForce
    assert MACEForce.isinstance(copy.getForce(0)) and not MACEForce.isinstance(openmm.CMMotionRemover())
    force = MACEForce.cast(copy.getForce(0))
    assert force.getModelPath() == model and force.usesPeriodicBoundaryConditions()
    assert list(force.getAtomicNumbers()) == atoms.numbers.tolist() and list(force.getAtoms()) == []
    assert openmm.XmlSerializer.serialize(copy) == xml
    e1, f1 = energy_forces(context(system, atoms, "Reference"))
    e2, f2 = energy_forces(context(copy, atoms, "Reference"))
    assert e1 == e2 and np.array_equal(f1, f2)


def test_serialized_force_keeps_its_settings(model):
    force = MACEForce(model, [8, 1, 1], atoms=[4, 2, 7])
    force.setForceGroup(5)
    force.setName("ligand")
    force.setPrecision("float64")
    deserialized = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(force))  # owns the object
    copy = MACEForce.cast(deserialized)
    assert (copy.getForceGroup(), copy.getName(), copy.getPrecision()) == (5, "ligand", "float64")
    assert list(copy.getAtoms()) == [4, 2, 7] and list(copy.getAtomicNumbers()) == [8, 1, 1]
    assert not copy.usesPeriodicBoundaryConditions()


def test_deserialization_refuses_a_changed_model(artifact, tmp_path):
    path = tmp_path / "model.mace.pt"
    path.write_bytes(artifact("base")[1].read_bytes())
    xml = openmm.XmlSerializer.serialize(MACEForce(path, [8, 1, 1]))
    path.write_bytes(artifact("base", seed=1)[1].read_bytes())
    with pytest.raises(openmm.OpenMMException, match="not the one this force was saved with"):
        openmm.XmlSerializer.deserialize(xml)


def test_context_refuses_a_replaced_model(artifact, tmp_path):
    path = tmp_path / "model.mace.pt"
    path.write_bytes(artifact("base")[1].read_bytes())
    atoms = model_zoo.molecule(0)
    system = mace_system(atoms, path)
    path.write_bytes(artifact("base", seed=1)[1].read_bytes())
    with pytest.raises(openmm.OpenMMException, match="has changed since the MACEForce was created"):
        context(system, atoms, "CPU")


def test_two_contexts_and_reinitialize(water_system):
    atoms, system = water_system
    ctx1, ctx2 = context(system, atoms, "Reference"), context(system, atoms, "CPU")
    e1, f1 = energy_forces(ctx1)
    e2, f2 = energy_forces(ctx2)
    assert e1 == pytest.approx(e2, rel=1e-12) and np.allclose(f1, f2, rtol=0, atol=1e-9)
    ctx1.reinitialize(preserveState=True)
    e3, f3 = energy_forces(ctx1)
    assert e3 == e1 and np.array_equal(f3, f1)


def test_force_groups(model):
    atoms = model_zoo.molecule(0)
    system = mace_system(atoms, model)
    system.getForce(0).setForceGroup(3)
    bond = openmm.HarmonicBondForce()
    bond.addBond(0, 1, 0.1, 1000.0)
    system.addForce(bond)
    ctx = context(system, atoms, "CPU")
    e_all, f_all = energy_forces(ctx)
    e_mace, f_mace = energy_forces(ctx, groups={3})
    e_bond, f_bond = energy_forces(ctx, groups={0})
    r = np.linalg.norm(atoms.positions[0] - atoms.positions[1]) / ANGSTROM_PER_NM
    assert e_bond == pytest.approx(0.5 * 1000.0 * (r - 0.1) ** 2, rel=1e-12)
    assert e_all == pytest.approx(e_mace + e_bond, rel=1e-12)
    assert np.allclose(f_all, f_mace + f_bond, rtol=0, atol=1e-9)
    assert not f_bond[2:].any() and np.abs(f_mace[2:]).max() > 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_custom_cv_force(model, water_system, platform):
    atoms, system = water_system
    e, f = energy_forces(context(system, atoms, platform))
    nested = openmm.System()
    for i in range(system.getNumParticles()):
        nested.addParticle(system.getParticleMass(i))
    nested.setDefaultPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
    cv = openmm.CustomCVForce("2*mace")
    inner = MACEForce(model, atoms.numbers)
    inner.setUsesPeriodicBoundaryConditions(True)
    cv.addCollectiveVariable("mace", inner)
    nested.addForce(cv)
    e2, f2 = energy_forces(context(nested, atoms, platform))
    assert e2 == pytest.approx(2 * e, rel=1e-12) and np.allclose(f2, 2 * f, rtol=1e-12, atol=1e-9)


def test_subset_of_particles(artifact):
    """The model sees particles 1, 3, 4 of five; the others feel nothing."""
    model_path, compiled = artifact("base")
    molecule = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    system = openmm.System()
    for _ in range(5):
        system.addParticle(1.0)
    system.addForce(MACEForce(compiled, [8, 1, 1], atoms=[1, 3, 4]))
    positions = np.zeros((5, 3))
    positions[[1, 3, 4]] = molecule.positions / ANGSTROM_PER_NM
    positions[[0, 2]] = [[1.0, 1.0, 1.0], [0.1, 0.2, 0.05]]  # 2 is within r_max of the molecule
    ours = in_model_units(*energy_forces(context(system, positions, "CPU")))
    assert not ours["forces"][[0, 2]].any()
    ref = reference_results(model_path, molecule)
    assert abs(ours["energy"] - ref["energy"]) < 1e-9 * 3
    assert np.abs(ours["forces"][[1, 3, 4]] - ref["forces"]).max() < 1e-9 * max(1, np.abs(ref["forces"]).max())


def test_from_topology(model):
    topology = openmm.app.Topology()
    residue = topology.addResidue("HOH", topology.addChain())
    for name, element in [("O", "O"), ("H1", "H"), ("H2", "H"), ("Cu", "Cu")]:
        topology.addAtom(name, openmm.app.Element.getBySymbol(element), residue)
    force = mace_force_from_topology(model, topology, atoms=[0, 1, 2])
    assert list(force.getAtomicNumbers()) == [8, 1, 1] and list(force.getAtoms()) == [0, 1, 2]
    assert not force.usesPeriodicBoundaryConditions()
    topology.setPeriodicBoxVectors(np.eye(3) * 2.0)
    force = mace_force_from_topology(model, topology)
    assert list(force.getAtomicNumbers()) == [8, 1, 1, 29] and force.usesPeriodicBoundaryConditions()
    assert force.getCutoff() == pytest.approx(0.45) and force.getModelDtype() == "float64"


# --------------------------------------------------------------------------- errors


def test_missing_model(tmp_path):
    with pytest.raises(openmm.OpenMMException, match="does not exist"):
        MACEForce(tmp_path / "missing.mace.pt", [1])


def test_corrupt_model(tmp_path):
    path = tmp_path / "corrupt.mace.pt"
    path.write_bytes(b"not a model" * 100)
    with pytest.raises(openmm.OpenMMException, match="cannot read .* as a mace-deploy artifact"):
        MACEForce(path, [1])


def test_element_not_in_model(model):
    with pytest.raises(openmm.OpenMMException, match="element Au of particle 7 is not in the model .* H, C, O, Cu"):
        MACEForce(model, [1, 79], atoms=[3, 7])


def test_bad_atom_lists(model):
    with pytest.raises(openmm.OpenMMException, match="2 atoms but 3 atomic numbers"):
        MACEForce(model, [1, 1, 8], atoms=[0, 1])
    with pytest.raises(openmm.OpenMMException, match="given twice"):
        MACEForce(model, [1, 1], atoms=[0, 0])
    with pytest.raises(openmm.OpenMMException, match="negative"):
        MACEForce(model, [1, 1], atoms=[0, -1])
    with pytest.raises(openmm.OpenMMException, match="atoms is empty"):
        MACEForce(model, [], atoms=[])


def test_atom_index_out_of_range(model):
    system = openmm.System()
    for _ in range(3):
        system.addParticle(1.0)
    system.addForce(MACEForce(model, [8, 1, 1], atoms=[0, 1, 5]))
    with pytest.raises(openmm.OpenMMException, match="atom index 5 is out of range for a System of 3 particles"):
        openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))


def test_particle_count_mismatch(model):
    system = openmm.System()
    for _ in range(4):
        system.addParticle(1.0)
    system.addForce(MACEForce(model, [8, 1, 1]))
    with pytest.raises(openmm.OpenMMException, match="3 atomic numbers for a System of 4 particles"):
        openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_dtype_mismatch(model, platform):
    atoms = model_zoo.molecule(0)
    system = mace_system(atoms, model, precision="float32")
    with pytest.raises(openmm.OpenMMException, match=r"float64 artifact; compile one with .*--dtype float32"):
        context(system, atoms, platform)
    with pytest.raises(openmm.OpenMMException, match="precision must be"):
        MACEForce(model, [1]).setPrecision("double")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_overlapping_particles(model, platform):
    atoms = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [0.96, 0, 1e-4]])
    ctx = context(mace_system(atoms, model), atoms, platform)
    with pytest.raises(openmm.OpenMMException, match=r"particles 2 and 1 \(or a periodic image\) are 1e-05 nm apart: overlapping"):
        energy_forces(ctx)


def test_nan_positions(model):
    atoms = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [0, 0.96, 0]])
    ctx = context(mace_system(atoms, model), atoms, "Reference")
    ctx.setPositions(np.array([[0, 0, 0], [np.nan, 0, 0], [0, 0.096, 0]]))
    with pytest.raises(openmm.OpenMMException, match="neighbour list"):
        energy_forces(ctx)


def test_readme_example_runs(tmp_path):
    """examples/openmm_quickstart.py, as the README runs it, on the bundled example model."""
    from mace_deploy.convert import compile_model

    compile_model(str(REPO / "examples" / "small_random.model"), str(tmp_path / "small.mace.pt"))
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "openmm_quickstart.py"), "small.mace.pt"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    energies = [float(line.split("E = ")[1].split()[0]) for line in proc.stdout.splitlines() if "E = " in line]
    assert len(energies) == 2 and np.isfinite(energies).all()
