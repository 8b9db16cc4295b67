"""Energy conservation of a 10 ps NVE run with MACEForce (velocity Verlet on the CPU platform)."""

import numpy as np
import openmm.unit as unit
import pytest
import torch

import model_zoo
from mace_deploy.convert import compile_model
from openmm_helpers import context, mace_system

TIMESTEP_PS = 0.001  # 1 fs, with deuterium masses
STEPS = 10_000  # 10 ps
REPORT_EVERY = 100
# Bound on the drift of the total energy: |slope of a straight-line fit| x 10 ps, per atom (kJ/mol).
# Measured: 6e-5, with a mean kinetic energy of 5.4 kJ/mol per atom.
DRIFT_BOUND_KJ_PER_MOL_PER_ATOM = 2e-3


@pytest.fixture(scope="module")
def smooth_model(tmp_path_factory):
    """The `base` model with its readouts scaled by 0.1: forces of ~0.4 eV/A keep the random-weight
    waters intact at 300 K, and the polynomial cutoff envelope (p=5) makes energy and forces go
    smoothly to zero at r_max."""
    model = model_zoo.make_model("base", seed=0)
    model_zoo._scale_readouts(model, 0.1)
    root = tmp_path_factory.mktemp("nve")
    torch.save(model, root / "smooth.model")
    compile_model(str(root / "smooth.model"), str(root / "smooth.mace.pt"))
    return str(root / "smooth.mace.pt")


@pytest.fixture
def one_thread():
    """Six atoms are too few to share among threads; on a busy machine waiting threads cost 10x."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_nve_conserves_energy(smooth_model, one_thread):
    """Two waters in a 6.21 A periodic cube (smaller than 2 r_max: they meet their own images)."""
    atoms = model_zoo.water_box(0)[:6]
    system = mace_system(atoms, smooth_model)
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
