"""ML/MM with mace_deploy.openmm.create_mixed_system: three MACE waters in a TIP3P water box."""

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
from ase import Atoms

from conftest import reference_results
from mace_deploy.openmm import MACEForce, create_mixed_system
from openmm_helpers import ANGSTROM_PER_NM, context, energy_forces, in_model_units

PLATFORMS = ["Reference", "CPU"]
FORCE_FIELD = app.ForceField("tip3p.xml")


@pytest.fixture(scope="module")
def model(artifact):
    return artifact("base")


@pytest.fixture(scope="module")
def water_box():
    """85 TIP3P waters in a 1.4 nm cube; the ML region is water 0 and its two nearest neighbours."""
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(FORCE_FIELD, model="tip3p", boxSize=openmm.Vec3(1.4, 1.4, 1.4) * unit.nanometer)
    positions = np.asarray(modeller.positions.value_in_unit(unit.nanometer))
    oxygens = np.array([r.atoms().__next__().index for r in modeller.topology.residues()])
    d = positions[oxygens] - positions[oxygens[0]]
    d -= 1.4 * np.round(d / 1.4)
    nearest = np.argsort(np.linalg.norm(d, axis=1))[:3]
    ml_atoms = sorted(int(oxygens[k]) + j for k in nearest for j in range(3))
    return modeller.topology, positions, ml_atoms


def mace_group(system, group=1):
    """Puts the MACEForce of `system` into its own force group."""
    for force in system.getForces():
        if MACEForce.isinstance(force):
            force.setForceGroup(group)
            return
    raise AssertionError("no MACEForce in the system")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_ml_region_matches_mace_torch(model, water_box, platform):
    topology, positions, ml_atoms = water_box
    mm = FORCE_FIELD.createSystem(topology, nonbondedMethod=app.PME, nonbondedCutoff=0.6 * unit.nanometer)
    mixed = create_mixed_system(topology, mm, ml_atoms, model[1])
    assert mixed.getNumConstraints() == mm.getNumConstraints() - 3 * 3  # rigid ML waters are now flexible
    mace_group(mixed)
    ours = in_model_units(*energy_forces(context(mixed, positions, platform), groups={1}))
    ml = Atoms("OHH" * 3, positions=positions[ml_atoms] * ANGSTROM_PER_NM, cell=np.eye(3) * 14.0, pbc=True)
    ref = reference_results(model[0], ml)
    assert abs(ours["energy"] - ref["energy"]) <= 1e-9 * len(ml)
    outside = np.setdiff1d(np.arange(len(positions)), ml_atoms)
    assert not ours["forces"][outside].any()
    assert np.abs(ours["forces"][ml_atoms] - ref["forces"]).max() <= 1e-9 * max(1.0, np.abs(ref["forces"]).max())


def test_mm_terms_inside_the_ml_region_are_removed(model, water_box):
    """Without cutoffs the MM energy is pairwise additive: full MM = mixed MM + MM of the ML region alone."""
    topology, positions, ml_atoms = water_box
    kwargs = dict(nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False)
    mm = FORCE_FIELD.createSystem(topology, **kwargs)  # NoCutoff: the box is not used
    assert not mm.usesPeriodicBoundaryConditions()
    mixed = create_mixed_system(topology, mm, ml_atoms, model[1])
    mace_group(mixed)
    region = app.Modeller(topology, [openmm.Vec3(*p) for p in positions] * unit.nanometer)
    region.delete([a for a in region.topology.atoms() if a.index not in set(ml_atoms)])
    inside = FORCE_FIELD.createSystem(region.topology, **kwargs)
    assert inside.getNumParticles() == len(ml_atoms)

    e_full, f_full = energy_forces(context(mm, positions, "Reference"))
    e_mixed, f_mixed = energy_forces(context(mixed, positions, "Reference"), groups={0})
    e_inside, f_inside = energy_forces(context(inside, positions[ml_atoms], "Reference"))
    assert e_full == pytest.approx(e_mixed + e_inside, rel=1e-10)
    f_mixed[ml_atoms] += f_inside
    assert np.allclose(f_full, f_mixed, rtol=0, atol=1e-8 * np.abs(f_full).max())


@pytest.mark.parametrize("platform", PLATFORMS)
def test_interpolation(model, water_box, platform):
    topology, positions, ml_atoms = water_box
    mm = FORCE_FIELD.createSystem(topology, nonbondedMethod=app.PME, nonbondedCutoff=0.6 * unit.nanometer)
    mixed = create_mixed_system(topology, mm, ml_atoms, model[1])
    interpolated = create_mixed_system(topology, mm, ml_atoms, model[1], interpolate=True)
    e_mm, f_mm = energy_forces(context(mm, positions, platform))
    e_ml, f_ml = energy_forces(context(mixed, positions, platform))
    ctx = context(interpolated, positions, platform)
    assert ctx.getParameter("lambda_interpolate") == 1.0
    for lam in (0.0, 0.3, 1.0):
        ctx.setParameter("lambda_interpolate", lam)
        e, f = energy_forces(ctx)
        assert e == pytest.approx(lam * e_ml + (1 - lam) * e_mm, rel=1e-6)
        assert np.allclose(f, lam * f_ml + (1 - lam) * f_mm, rtol=0, atol=1e-5 * np.abs(f_mm).max())


def test_unsupported_force_is_refused(model, water_box):
    topology, _, ml_atoms = water_box
    mm = FORCE_FIELD.createSystem(topology, nonbondedMethod=app.PME, nonbondedCutoff=0.6 * unit.nanometer)
    mm.addForce(openmm.GBSAOBCForce())
    with pytest.raises(openmm.OpenMMException, match="not supported: .* GBSAOBCForce"):
        create_mixed_system(topology, mm, ml_atoms, model[1])
