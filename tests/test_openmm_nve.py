"""Energy conservation of a 10 ps NVE run with MACEForce (velocity Verlet on the CPU platform)."""

import numpy as np
import openmm
import openmm.unit as unit

import model_zoo
from openmm_helpers import context, mace_system

TIMESTEP_PS = 0.001  # 1 fs, with deuterium masses
STEPS = 10_000  # 10 ps
REPORT_EVERY = 100
# Bound on the drift of the total energy: the slope of a straight-line fit over the 10 ps, times 10 ps,
# per atom. The kinetic energy of this system is ~0.04 eV (~3.7 kJ/mol) per atom.
DRIFT_BOUND_KJ_PER_MOL_PER_ATOM = 0.02


def test_nve_conserves_energy(artifact):
    """24-atom periodic water box (6.21 A cube, smaller than 2 r_max) with the `base` model (polynomial
    cutoff envelope p=5: energy and forces go smoothly to zero at r_max)."""
    atoms = model_zoo.water_box(0)
    system = mace_system(atoms, str(artifact("base")[1]))
    for i, z in enumerate(atoms.numbers):
        if z == 1:
            system.setParticleMass(i, 2.014)  # deuterium: a 1 fs step resolves the O-D vibration
    ctx = context(system, atoms, "CPU")
    integrator = ctx.getIntegrator()
    integrator.setStepSize(TIMESTEP_PS)
    ctx.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    totals, kinetic = [], []
    for _ in range(STEPS // REPORT_EVERY + 1):
        state = ctx.getState(getEnergy=True)
        ke = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        totals.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) + ke)
        kinetic.append(ke)
        integrator.step(REPORT_EVERY)
    times = np.arange(len(totals)) * REPORT_EVERY * TIMESTEP_PS
    slope = np.polyfit(times, totals, 1)[0]  # kJ/mol/ps
    drift = abs(slope) * times[-1] / len(atoms)
    fluctuation = np.std(totals) / len(atoms)
    print(f"NVE 10 ps: drift {drift:.2e} kJ/mol/atom, fluctuation {fluctuation:.2e} kJ/mol/atom, "
          f"mean kinetic energy {np.mean(kinetic) / len(atoms):.2f} kJ/mol/atom")
    assert np.all(np.isfinite(totals))
    assert np.mean(kinetic) > 0.1 * len(atoms)  # the atoms really move
    assert drift < DRIFT_BOUND_KJ_PER_MOL_PER_ATOM
