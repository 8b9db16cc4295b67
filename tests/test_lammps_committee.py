"""Committee artifacts in LAMMPS: the mean potential with hyperactive learning's bias (pair_style
mace hal TAU), compute mace/uncertainty, compute mace/descriptors and fix mace/select on 1, 2
and 4 ranks, against the ASE calculator on the same structure."""

import numpy as np
import pytest
from ase.io import read

import lammps_runner as lr
import model_zoo
from conftest import REPO
from mace_deploy.ase import MACEDeployCalculator
from mace_deploy.convert import compile_models

REL = 1e-12
TAU = 0.5


def copper_oxide(seed=0):
    atoms = model_zoo.crystal(seed)
    atoms.numbers[::3] = 8
    return atoms


def _close(ours, ref, rel=REL):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert np.abs(ours - ref).max() <= rel * max(1.0, np.abs(ref).max()), np.abs(ours - ref).max()


def run_committee(tmp_path, artifact, atoms, nprocs, pair_options="", settings="", extra=""):
    """`run 0` with the committee's computes; per-atom rows (id fx fy fz pe std descriptors...) in
    id order and the thermo values (pe, energy std, largest force std)."""
    elements = list(dict.fromkeys(atoms.get_chemical_symbols()))
    lr.write_data(atoms, tmp_path / "data.lammps", elements)
    script = f"""{lr.plugin_command()}
units metal
boundary {lr.boundary_of(atoms)}
atom_modify map yes
{settings}
read_data data.lammps
pair_style mace {pair_options}
pair_coeff * * {artifact} {' '.join(elements)}
compute unc all mace/uncertainty
compute desc all mace/descriptors
compute pe all pe/atom
{extra}
dump d all custom 1 per_atom.txt id fx fy fz c_pe c_unc c_desc[*]
dump_modify d sort id format float %.17g
thermo_style custom step pe c_unc[1] c_unc[2]
thermo_modify format float %.17g
run 0
"""
    proc = lr.run_lmp(script, tmp_path, nprocs)
    _, pe, energy_std, largest = lr.read_thermo(proc.stdout, "Step")
    return np.loadtxt(tmp_path / "per_atom.txt", skiprows=9, ndmin=2), pe, energy_std, largest


@pytest.mark.parametrize("nprocs,settings", [(1, ""), (2, ""), (4, "processors 4 1 1")])
def test_uncertainty_descriptors_and_hal_forces_equal_ase(tmp_path, committee_artifact, nprocs, settings):
    atoms = copper_oxide(1)
    rows, pe, energy_std, largest = run_committee(tmp_path, committee_artifact, atoms, nprocs,
                                                  pair_options=f"hal {TAU}", settings=settings)
    calc = MACEDeployCalculator(str(committee_artifact), hal_tau=TAU)
    ase_atoms = atoms.copy()
    ase_atoms.calc = calc
    forces = ase_atoms.get_forces()
    _close(rows[:, 1:4], forces)
    _close(pe, ase_atoms.get_potential_energy())
    _close(rows[:, 4], calc.results["energies"])
    _close(rows[:, 5], calc.results["forces_std_atom"])
    _close(energy_std, np.sqrt(calc.results["energy_var"]))
    _close(largest, calc.results["forces_std_atom"].max())
    _close(rows[:, 6:], np.hstack(calc.get_descriptors(atoms)))
    assert np.abs(forces - MACEDeployCalculator(str(committee_artifact)).get_forces(atoms)).max() > 1e-4


def test_hal_nve_conserves_the_biased_energy(tmp_path, committee_artifact):
    """0.5 fs steps of 32 atoms at 300 K on 2 ranks with the bias: |E(t) - E(0)| of the biased
    total energy below 1e-5 eV per atom over 400 steps."""
    atoms = model_zoo.crystal(0)
    script = lr.copper_md_script(atoms, tmp_path, committee_artifact, f"hal {TAU}", """
compute unc all mace/uncertainty
velocity all create 300 4928459 mom yes rot no
timestep 0.0005
fix 1 all nve
thermo_style custom step temp pe etotal c_unc[1]
thermo_modify format float %.15g
thermo 20
run 400""")
    thermo = lr.read_thermo_table(lr.run_lmp(script, tmp_path, nprocs=2).stdout, ["Step", "Temp"])
    assert len(thermo) == 21 and np.isfinite(thermo).all() and thermo[:, 1].min() > 30.0
    assert np.ptp(thermo[:, 4]) > 1e-4  # the spread (and so the bias) changes along the run
    assert np.abs(thermo[:, 3] - thermo[0, 3]).max() / len(atoms) < 1e-5


def select_frames(tmp_path, artifact, nprocs, threshold):
    script = lr.copper_md_script(model_zoo.crystal(2), tmp_path, artifact, run=f"""
compute unc all mace/uncertainty
velocity all create 600 87287 mom yes rot no
timestep 0.001
fix 1 all nve
fix sel all mace/select {threshold} selected.xyz every 2
dump d all custom 2 positions.txt id x y z
dump_modify d sort id format float %.17g
thermo_style custom step c_unc[2] f_sel
thermo_modify format float %.17g
thermo 2
run 20""")
    thermo = lr.read_thermo_table(lr.run_lmp(script, tmp_path, nprocs).stdout, ["Step", "c_unc[2]"])
    assert len(thermo) == 11
    return thermo, read(tmp_path / "selected.xyz", index=":") if (tmp_path / "selected.xyz").exists() else []


@pytest.mark.parametrize("nprocs", [1, 4])
def test_select_writes_each_uncertain_frame_once(tmp_path, committee_artifact, nprocs):
    # a threshold inside the range of the run's largest force deviations
    (tmp_path / "probe").mkdir()
    thermo, _ = select_frames(tmp_path / "probe", committee_artifact, nprocs, 0.0)
    largest = thermo[1:, 1]  # fix mace/select acts at the end of steps 2, 4, ... (not step 0)
    threshold = float(np.median(largest))
    (tmp_path / "threshold").mkdir()
    thermo, frames = select_frames(tmp_path / "threshold", committee_artifact, nprocs, threshold)
    expected_steps = [int(s) for s, value in zip(thermo[1:, 0], thermo[1:, 1]) if value > threshold]
    assert 0 < len(expected_steps) < len(largest)
    assert [frame.info["step"] for frame in frames] == expected_steps
    assert thermo[-1, 2] == len(expected_steps)
    for frame in frames:
        assert frame.get_chemical_symbols() == ["Cu"] * 32 and frame.pbc.all()
        assert frame.info["max_force_std"] > threshold
        _close(frame.cell.array, model_zoo.crystal(2).cell.array)
    steps = _dump_positions(tmp_path / "threshold" / "positions.txt")
    for frame in frames:
        _close(frame.positions, steps[frame.info["step"]])


def _dump_positions(path):
    """{step: positions [N, 3]} of a LAMMPS `dump custom ... id x y z` file."""
    lines = path.read_text().splitlines()
    out, k = {}, 0
    while k < len(lines):
        step = int(lines[k + 1])
        n = int(lines[k + 3])
        rows = np.array([line.split() for line in lines[k + 9: k + 9 + n]], dtype=float)
        out[step] = rows[:, 1:4]
        k += 9 + n
    return out


def test_uncertainty_needs_a_committee(tmp_path, artifact):
    _, single = artifact("base")
    atoms = model_zoo.crystal(0)
    lr.write_data(atoms, tmp_path / "data.lammps", ["Cu"])
    for command, message in [("compute unc all mace/uncertainty", "compute mace/uncertainty needs a committee"),
                             ("fix s all mace/select 0.1 out.xyz", "fix mace/select needs a committee")]:
        script = f"""{lr.plugin_command()}
units metal
read_data data.lammps
pair_style mace
pair_coeff * * {single} Cu
{command}
run 0
"""
        proc = lr.run_lmp(script, tmp_path, check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr
    script = f"""{lr.plugin_command()}
units metal
read_data data.lammps
pair_style mace hal 0.5
pair_coeff * * {single} Cu
"""
    proc = lr.run_lmp(script, tmp_path, check=False)
    assert proc.returncode != 0 and "needs a committee" in proc.stdout + proc.stderr


def test_readme_active_learning_example_runs(tmp_path):
    """examples/lammps/in.hal, as the README runs it (2 ranks), on the two bundled example models:
    the biased run writes the frames fix mace/select counts, each with the uncertainty it had."""
    examples = REPO / "examples"
    compile_models([str(examples / "small_random.model"), str(examples / "small_random_member2.model")],
                   str(tmp_path / "committee.mace.pt"))
    script = lr.plugin_command() + "\n" + (examples / "lammps" / "in.hal").read_text()
    proc = lr.run_lmp(script, tmp_path, 2)
    step, temp, pe, etotal, energy_std, largest, selected = lr.read_thermo(proc.stdout, "Step")
    assert step == 100 and energy_std > 0 and selected > 0
    frames = read(tmp_path / "selected.xyz", index=":")
    assert len(frames) == selected
    assert all(len(f) == 108 and f.info["max_force_std"] > 0.002 for f in frames)
