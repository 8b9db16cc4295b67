"""Molecular dynamics with pair_style mace on 2 MPI ranks: energy conservation (NVE) and a
barostat driven by the model's virial (NPT). Atoms move between ranks and neighbour lists are
rebuilt along the way. The model is a smooth random one (polynomial cutoff envelope)."""

import numpy as np
from ase.build import bulk

import lammps_runner as lr


def run_md(tmp_path, artifact_path, integrator, steps, thermo_every):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    script = lr.copper_md_script(atoms, tmp_path, artifact_path, run=f"""
velocity all create 300 4928459 mom yes rot no
timestep 0.001
{integrator}
thermo_style custom step temp pe etotal press vol
thermo_modify format float %.15g
thermo {thermo_every}
run {steps}""")
    # step temp pe etotal press vol
    return lr.read_thermo_table(lr.run_lmp(script, tmp_path, nprocs=2).stdout, ["Step", "Temp"])


def test_nve_conserves_energy(tmp_path, artifact):
    """1 fs steps of 32 Cu atoms at 300 K: |E(t) - E(0)| below 1e-5 of |E(0)| over 1000 steps (what
    we see: ~1e-4 eV of 190 eV, i.e. below 1e-6, and below 1e-5 eV per atom)."""
    _, artifact_path = artifact("base")
    thermo = run_md(tmp_path, artifact_path, "fix 1 all nve", steps=1000, thermo_every=50)
    assert len(thermo) == 21 and np.isfinite(thermo).all()
    energy = thermo[:, 3]
    assert thermo[:, 1].min() > 30.0  # the atoms really move: kinetic and potential energy exchange
    drift = np.abs(energy - energy[0]).max()
    assert drift / abs(energy[0]) < 1e-5
    assert drift / 32 < 1e-5


def test_npt_stays_stable(tmp_path, artifact):
    """From ~6 GPa the barostat relaxes the box to zero mean pressure; nothing blows up."""
    _, artifact_path = artifact("base")
    thermo = run_md(tmp_path, artifact_path, "fix 1 all npt temp 300 300 0.1 iso 0 0 1.0", steps=1000,
                    thermo_every=50)
    assert len(thermo) == 21 and np.isfinite(thermo).all()
    temperature, pressure, volume = thermo[:, 1], thermo[:, 4], thermo[:, 5]
    assert pressure[0] > 3e4  # the random model's crystal starts far from equilibrium
    assert np.abs(pressure[10:].mean()) < 0.3 * pressure[0]
    assert (volume > 0.8 * volume[0]).all() and (volume < 1.4 * volume[0]).all()
    assert temperature.max() < 1000.0


def test_box_relax_reaches_zero_pressure(tmp_path, artifact):
    """fix box/relax drives the pressure from the model's virial to the target."""
    _, artifact_path = artifact("base")
    lr.write_data(bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2)), tmp_path / "data.lammps", ["Cu"])
    script = f"""{lr.plugin_command()}
units metal
read_data data.lammps
pair_style mace
pair_coeff * * {artifact_path} Cu
fix relax all box/relax iso 0.0 vmax 0.01
min_style cg
minimize 0 1e-6 500 5000
unfix relax
thermo_style custom step pe press vol
thermo_modify format float %.15g
run 0
"""
    proc = lr.run_lmp(script, tmp_path, nprocs=2)
    step, pe, pressure, volume = lr.read_thermo(proc.stdout, "Step")
    assert volume > 1.01 * 8 * 3.61 ** 3  # the compressed random-model crystal expanded
    assert abs(pressure) < 10.0  # bar, from ~6e4 at the start
