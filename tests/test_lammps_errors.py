"""pair_style mace refuses bad input with an actionable LAMMPS error (never a hang or a crash)."""

import numpy as np
import pytest
import torch
from ase import Atoms

import lammps_runner as lr
from test_lammps import copper_oxide


def run_script(tmp_path, body, atoms=None, nprocs=1, elements=("Cu", "O"), header="units metal", run="run 0"):
    lr.write_data(atoms if atoms is not None else copper_oxide(), tmp_path / "data.lammps", list(elements))
    script = f"{lr.plugin_command()}\n{header}\natom_modify map yes\nread_data data.lammps\n{body}\n{run}\n"
    return lr.run_lmp(script, tmp_path, nprocs, timeout=300, check=False)


def assert_lammps_error(proc, message):
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-2000:]
    assert "ERROR" in output and message in output, output[-2000:]
    assert "Segmentation" not in output and "signal 11" not in output


@pytest.fixture(scope="module")
def base_artifact(artifact):
    return artifact("base")[1]


def test_missing_model_file(tmp_path):
    proc = run_script(tmp_path, "pair_style mace\npair_coeff * * missing.mace.pt Cu O", nprocs=2)
    assert_lammps_error(proc, "model file 'missing.mace.pt' does not exist")


def test_not_an_artifact(tmp_path, artifact):
    model_path, _ = artifact("base")  # the mace-torch .model file itself
    proc = run_script(tmp_path, f"pair_style mace\npair_coeff * * {model_path} Cu O")
    assert_lammps_error(proc, "mace-deploy compile")


def test_artifact_of_another_format_version(tmp_path, base_artifact):
    module = torch.jit.load(str(base_artifact))
    module.format_version = 999
    old = tmp_path / "old.mace.pt"
    torch.jit.save(module, str(old))
    proc = run_script(tmp_path, f"pair_style mace\npair_coeff * * {old} Cu O")
    assert_lammps_error(proc, "format version 999")


@pytest.mark.parametrize("coeff,message", [
    ("{model} Cu", "expected 2 element symbols (one per atom type"),
    ("{model} Cu O O", "expected 2 element symbols"),
    ("{model} Cu Fe", "element Fe (atom type 2) is not in the model"),
    ("{model} Cu Xx", "'Xx' (atom type 2) is not an element symbol"),
    ("{model} Cu NULL", "atom type 2 is mapped to NULL"),
])
def test_bad_pair_coeff(tmp_path, base_artifact, coeff, message):
    proc = run_script(tmp_path, f"pair_style mace\npair_coeff * * {coeff.format(model=base_artifact)}")
    assert_lammps_error(proc, message)


def test_pair_coeff_must_cover_all_types(tmp_path, base_artifact):
    proc = run_script(tmp_path, f"pair_style mace\npair_coeff 1 2 {base_artifact} Cu O")
    assert_lammps_error(proc, "Pair_coeff must start with * * for pair style mace")


def test_unknown_keyword(tmp_path, base_artifact):
    proc = run_script(tmp_path, f"pair_style mace cutoff 5\npair_coeff * * {base_artifact} Cu O")
    assert_lammps_error(proc, "unknown keyword 'cutoff'")


def test_unknown_device(tmp_path, base_artifact):
    proc = run_script(tmp_path, f"pair_style mace device gpu\npair_coeff * * {base_artifact} Cu O")
    assert_lammps_error(proc, "device must be cpu or cuda, got 'gpu'")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible here (tests/test_cuda.py runs on it)")
def test_device_cuda_without_a_gpu(tmp_path, base_artifact):
    proc = run_script(tmp_path, f"pair_style mace device cuda\npair_coeff * * {base_artifact} Cu O")
    assert_lammps_error(proc, "no CUDA GPU is visible to this rank")
    assert proc.stdout.count("no CUDA GPU is visible") == 1, proc.stdout[-2000:]  # said once, not nested


@pytest.mark.parametrize("masses,warns", [((15.999, 63.546), True), ((63.546, 15.999), False),
                                          ((63.546, 18.0), False)])  # swapped; right; an isotope of O
def test_type_masses_of_other_elements_warn(tmp_path, base_artifact, masses, warns):
    """Types whose masses are those of other model elements: the elements of pair_coeff are likely
    in the wrong order (types Cu O given as O Cu)."""
    body = f"mass 1 {masses[0]}\nmass 2 {masses[1]}\npair_style mace\npair_coeff * * {base_artifact} Cu O"
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stdout[-2000:]
    message = "atom type 1 has mass 15.999, the mass of O (15.999), but pair_coeff maps it to Cu (63.546)"
    assert (message in proc.stdout) == warns, proc.stdout[-2000:]


def test_newton_off(tmp_path, base_artifact):
    proc = run_script(tmp_path, f"pair_style mace\npair_coeff * * {base_artifact} Cu O",
                      header="units metal\nnewton off")
    assert_lammps_error(proc, "requires `newton on`")


def test_unsupported_units(tmp_path, base_artifact):
    proc = run_script(tmp_path, f"pair_style mace\npair_coeff * * {base_artifact} Cu O", header="units lj")
    assert_lammps_error(proc, "units lj are not supported")


@pytest.mark.parametrize("nprocs", [1, 2])
def test_overlapping_atoms_stop_all_ranks(tmp_path, base_artifact, nprocs):
    atoms = copper_oxide()
    atoms.positions[5] = atoms.positions[4] + 1e-3
    proc = run_script(tmp_path, f"pair_style mace\npair_coeff * * {base_artifact} Cu O", atoms=atoms, nprocs=nprocs)
    assert_lammps_error(proc, "overlapping atoms")


def test_close_atoms_warn_once(tmp_path, base_artifact):
    atoms = Atoms("CuO", positions=[[5.0, 5.0, 5.0], [5.3, 5.0, 5.0]], cell=np.eye(3) * 12, pbc=True)
    body = f"pair_style mace warn_distance 0.5\npair_coeff * * {base_artifact} Cu O"
    proc = run_script(tmp_path, body, atoms=atoms, run="run 3")  # four force evaluations, one warning
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert proc.stdout.count("are only 0.300 Angstrom apart") == 1


@pytest.mark.parametrize("hybrid,warns", [("hybrid", True), ("hybrid/overlay", False)])
def test_type_pairs_taken_from_mace_by_hybrid_warn(tmp_path, base_artifact, hybrid, warns):
    # plain hybrid: the later pair_coeff gives O-O to lj/cut, and LAMMPS skips O-O in mace's neighbour list
    body = (f"pair_style {hybrid} mace lj/cut 3.0\npair_coeff * * mace {base_artifact} Cu O\n"
            "pair_coeff 2 2 lj/cut 0.01 2.0")
    proc = run_script(tmp_path, body, nprocs=2)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    assert proc.stdout.count("atom type pairs 2-2 are not assigned to mace") == (1 if warns else 0), proc.stdout[-2000:]
