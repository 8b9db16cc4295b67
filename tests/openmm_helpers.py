"""OpenMM test helpers: Systems and Contexts for ASE structures, results in the model's units."""

import numpy as np
import openmm
import openmm.unit as unit

from mace_deploy.openmm import MACEForce

KJ_PER_MOL_PER_EV = 1.602176634e-19 * 6.02214076e23 / 1000.0  # exact SI 2019 constants
ANGSTROM_PER_NM = 10.0


def mace_system(atoms, model_path, precision="auto"):
    """A System of the atoms (ASE masses) holding one MACEForce on all of them; periodic when the
    atoms are."""
    system = openmm.System()
    for mass in atoms.get_masses():
        system.addParticle(mass)
    force = MACEForce(model_path, atoms.numbers, None)
    force.setPrecision(precision)
    if atoms.pbc.any():
        assert atoms.pbc.all(), "OpenMM boxes are periodic in all three directions"
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) / ANGSTROM_PER_NM for row in atoms.cell.array))
        force.setUsesPeriodicBoundaryConditions(True)
    system.addForce(force)
    return system


def context(system, atoms_or_positions, platform):
    """A Context on `platform` ("Reference" or "CPU") at the given positions (ASE atoms: Angstrom;
    an array: nm)."""
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName(platform))
    positions = atoms_or_positions
    if hasattr(positions, "positions"):
        positions = positions.positions / ANGSTROM_PER_NM
    ctx.setPositions(np.asarray(positions))
    return ctx


def energy_forces(ctx, groups=-1):
    """Energy (kJ/mol) and forces (kJ/mol/nm) of a Context."""
    state = ctx.getState(getEnergy=True, getForces=True, groups=groups)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def in_model_units(energy, forces):
    """OpenMM's kJ/mol and kJ/mol/nm as the model's eV and eV/Angstrom."""
    return {"energy": energy / KJ_PER_MOL_PER_EV,
            "forces": np.asarray(forces) / (KJ_PER_MOL_PER_EV * ANGSTROM_PER_NM)}
