#!/usr/bin/env python
"""CPU benchmark: mace-deploy vs mace-torch (ASE calculator and TorchScript LAMMPS wrapper) vs symmetrix-xl.

Same model files, same structures, same positions, one run, one machine:

    python benchmarks/bench_cpu.py                      # full matrix (long: hours on a small machine)
    python benchmarks/bench_cpu.py --quick              # smoke test: small model, cu256, float64, 1 thread
    python benchmarks/bench_cpu.py --models medium --systems cu256 --dtypes float64 --threads 1 --json out.json

Implementations (columns):

  deploy      mace-deploy's ASE calculator (MACEDeployCalculator): own O(N) neighbour list + C++ runtime, per step
  deploy-mdl  the same artifact, runtime call only (graph built outside the timer)
  torch       mace-torch's MACECalculator: matscipy neighbour list + eager PyTorch model, per step
  lammps      mace-torch's TorchScript LAMMPS wrapper (mace.calculators.lammps_mace.LAMMPS_MACE, scripted
              exactly as `mace_create_lammps_model` does), forward call only (graph built outside the timer,
              as LAMMPS builds it in C++); periodic images through shifts, no ghost atoms
  symmetrix   symmetrix-xl's ASE calculator (torch-free C++, JIT-specialised CPU kernels), per step; only
              where the package is importable

Every (implementation, model, system, dtype, threads) runs in its own fresh subprocess so that its peak
memory (the child's peak resident set size, VmHWM, above its RSS after its imports and before loading
the model; see PeakMemory) belongs to that implementation alone. Needs mace-torch (to build the models)
and mace-deploy; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np

RESULT_TAG = "BENCH_CHILD_RESULT "

# e3nn 0.4.4 (mace-torch's pin) and mace-torch .model files need torch.load(weights_only=False) under
# torch >= 2.6; mace-torch sets the same flag when imported. Only files this script writes are loaded.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

# --------------------------------------------------------------------------- #
# Models: MACE-MP-0-small-like and -medium-like, random weights, elements H O Cu
# --------------------------------------------------------------------------- #

ELEMENTS = [1, 8, 29]  # H, O, Cu: one model serves the Cu crystal and the water box
MODEL_SPECS: Dict[str, Dict[str, Any]] = {
    # MACE-MP-0 small / medium hyper-parameters (r_max 6, 10 Bessel functions, radial MLP 64x3,
    # max_ell 3, correlation 3, 2 residual interactions, MLP 16x0e); only the weights are random.
    "small": {"hidden_irreps": "64x0e"},
    "medium": {"hidden_irreps": "128x0e+128x1o"},
    "large": {"hidden_irreps": "128x0e+128x1o+128x2e"},  # MACE-MP-0-large-like (benchmarks/bench_gpu.py)
}
COMMON_MODEL_KWARGS: Dict[str, Any] = {
    "r_max": 6.0,
    "num_bessel": 10,
    "num_polynomial_cutoff": 5,
    "max_ell": 3,
    "num_interactions": 2,
    "correlation": 3,
    "MLP_irreps": "16x0e",
    "radial_MLP": [64, 64, 64],
    # fcc Cu (a=3.61) has 78 neighbours within 6 A, liquid water ~90; MACE-MP-0 uses ~62
    "avg_num_neighbors": 60.0,
    "atomic_energies": [-1.1, -2.3, -3.7],  # H O Cu (eV)
    "atomic_inter_scale": 0.8,
    "atomic_inter_shift": 0.0,
    "use_reduced_cg": False,
}
MODEL_SEED = 0


def build_mace_model(name: str, seed: int = MODEL_SEED):
    """A mace-torch ScaleShiftMACE in float64 with seeded random weights (every trainable tensor
    perturbed, so no zero-initialised path can be skipped by any implementation)."""
    import torch
    from e3nn import o3
    from mace import modules

    kw = dict(COMMON_MODEL_KWARGS)
    kw.update(MODEL_SPECS[name])
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = modules.ScaleShiftMACE(
                interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
                interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
                num_elements=len(ELEMENTS),
                atomic_numbers=ELEMENTS,
                hidden_irreps=o3.Irreps(kw.pop("hidden_irreps")),
                MLP_irreps=o3.Irreps(kw.pop("MLP_irreps")),
                atomic_energies=np.asarray(kw.pop("atomic_energies"), dtype=np.float64),
                gate=modules.gate_dict["silu"],
                **kw,
            )
    finally:
        torch.set_default_dtype(prev)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            if not p.is_floating_point() or p.numel() == 0 or not p.requires_grad:
                continue
            scale = 0.5 if not bool(p.any()) else max(float(p.std()) if p.numel() > 1 else float(p.abs()), 0.1)
            p.add_(0.2 * scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


# --------------------------------------------------------------------------- #
# Structures
# --------------------------------------------------------------------------- #

SYSTEMS = {
    # name: what it is (built by make_structure)
    "cu256": "fcc Cu a=3.61, 4x4x4 cubic cells",
    "cu1000": "fcc Cu a=3.61, 5x5x10 cubic cells (exactly 1000 atoms, orthorhombic)",
    "cu4000": "fcc Cu a=3.61, 10x10x10 cubic cells",
    "cu40000": "fcc Cu a=3.61, 20x20x25 cubic cells (the memory row: 40 000 atoms)",
    "water": "343 H2O (1029 atoms), cubic 21.73 A box, 1.0 g/cm^3, random orientations",
}
STRUCTURE_SEED = 7
PERTURB_SEED = 1234
PERTURB_SIGMA = 0.01  # A, fresh Gaussian displacement of every atom at every step (from the base structure)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    a, b, c, d = q / np.linalg.norm(q)
    return np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
    ])


def make_structure(name: str, seed: int = STRUCTURE_SEED):
    from ase import Atoms
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    if name.startswith("cu"):
        reps = {"cu256": (4, 4, 4), "cu1000": (5, 5, 10), "cu4000": (10, 10, 10), "cu40000": (20, 20, 25)}[name]
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * reps
        # a perfect lattice has identical distances that real MD never has
        atoms.positions = atoms.positions + rng.normal(scale=0.05, size=(len(atoms), 3))
        atoms.wrap()
        return atoms
    if name == "water":
        n_side, density = 7, 1.0  # g/cm^3
        n_mol = n_side ** 3
        mass = 18.015 / 6.02214076e23  # g per molecule
        length = (n_mol * mass / density) ** (1.0 / 3.0) * 1e8  # A
        r_oh, theta = 0.9572, np.deg2rad(104.52)
        mol = np.array([[0.0, 0.0, 0.0],
                        [r_oh * np.sin(theta / 2), 0.0, r_oh * np.cos(theta / 2)],
                        [-r_oh * np.sin(theta / 2), 0.0, r_oh * np.cos(theta / 2)]])
        mol -= mol.mean(axis=0)
        spacing = length / n_side
        placed = np.zeros((0, 3))
        for i in range(n_side):
            for j in range(n_side):
                for k in range(n_side):
                    centre = (np.array([i, j, k]) + 0.5) * spacing
                    for _ in range(10000):
                        trial = centre + rng.uniform(-0.15, 0.15, size=3) * spacing + mol @ _random_rotation(rng).T
                        if len(placed):
                            d = trial[:, None, :] - placed[None, :, :]
                            d -= length * np.round(d / length)
                            if np.sqrt((d * d).sum(-1)).min() < 1.6:  # no intermolecular contact below 1.6 A
                                continue
                        placed = np.vstack([placed, trial])
                        break
                    else:  # pragma: no cover
                        raise RuntimeError("could not place a water molecule without overlaps")
        atoms = Atoms("OHH" * n_mol, positions=placed, cell=np.eye(3) * length, pbc=True)
        atoms.wrap()
        return atoms
    raise ValueError(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")


def step_positions(base: np.ndarray, n_steps: int) -> List[np.ndarray]:
    """The positions of every evaluated step: warm-up step 0 is the base structure itself (its energy and
    forces are compared across implementations), every later step a fresh perturbation of it."""
    rng = np.random.default_rng(PERTURB_SEED)
    out = [base.copy()]
    for _ in range(n_steps - 1):
        out.append(base + rng.normal(scale=PERTURB_SIGMA, size=base.shape))
    return out


# --------------------------------------------------------------------------- #
# Child: one implementation, one configuration, in a fresh process
# --------------------------------------------------------------------------- #

def _maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _proc_status_mb(field: str) -> Optional[float]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return None


def _cpu_times() -> Optional[List[int]]:
    """Aggregate CPU time counters of /proc/stat (user nice system idle iowait irq softirq steal ...)."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def _steal_percent(start: Optional[List[int]], end: Optional[List[int]]) -> Optional[float]:
    """Share of the machine's CPU time the hypervisor gave to other guests between two readings: a
    shared virtual machine slows every implementation by it, unevenly over time."""
    if start is None or end is None or len(start) < 8:
        return None
    total = sum(end[:8]) - sum(start[:8])
    return 100.0 * (end[7] - start[7]) / total if total > 0 else None


class PeakMemory:
    """Peak resident memory of this process above a baseline taken at start().

    On Linux the child's ru_maxrss is useless here: execve carries the parent's high-water mark into
    the child's rusage (and the parent holds torch, mace-torch and the models), so it would hide any
    child that stays below the parent. VmHWM in /proc/self/status belongs to the child's own address
    space; writing 5 to /proc/self/clear_refs resets it to the current RSS, so the peak seen after
    start() is the model's and evaluation's alone. Elsewhere: ru_maxrss minus its value at start()."""

    def start(self) -> None:
        self.baseline = _proc_status_mb("VmRSS")
        self.method = "ru_maxrss"
        if self.baseline is not None:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                self.method = "VmHWM after clear_refs reset"
            except OSError:
                self.method = "VmHWM"  # may include an import-time peak above the baseline
        else:
            self.baseline = _maxrss_mb()

    def peak(self) -> float:
        if self.method == "ru_maxrss":
            return _maxrss_mb()
        return _proc_status_mb("VmHWM")


def _load_atoms(path: str):
    from ase import Atoms

    d = np.load(path)
    return Atoms(numbers=d["numbers"], positions=d["positions"], cell=d["cell"], pbc=d["pbc"])


def _ase_graph_inputs(atoms, r_max: float):
    from ase.neighborlist import neighbor_list

    i, j, S = neighbor_list("ijS", atoms, r_max)
    return i, j, S


def _ase_step(calc, atoms):
    """One full ASE evaluation of energy, forces and stress (what an ASE MD step asks for)."""
    from ase.calculators.calculator import all_changes

    calc.calculate(atoms, ["energy", "forces", "stress"], all_changes)
    r = calc.results
    return float(r["energy"]), np.asarray(r["forces"]), np.asarray(r["stress"])


class _Impl:
    """setup() loads the model; step(atoms) returns (energy, forces, stress-or-virial) for the current
    positions and is what is timed; prepare(atoms) optionally does untimed per-step host work
    (graph building) whose time is recorded separately."""

    def prepare(self, atoms):
        return None


class _DeployCalc(_Impl):
    def __init__(self, spec):
        from mace_deploy.ase import MACEDeployCalculator  # noqa: F401

        self.spec = spec

    def setup(self):
        from mace_deploy.ase import MACEDeployCalculator

        self.calc = MACEDeployCalculator(self.spec["artifact"])

    def step(self, atoms, prepared):
        return _ase_step(self.calc, atoms)


class _DeployModel(_Impl):
    """The runtime call of the ASE calculator alone (mace_deploy.graph.atoms_to_graph outside the timer)."""

    def __init__(self, spec):
        from mace_deploy.ase import MACEDeployCalculator  # noqa: F401
        from mace_deploy.graph import atoms_to_graph  # noqa: F401

        self.spec = spec

    def setup(self):
        from mace_deploy.ase import MACEDeployCalculator

        self.model = MACEDeployCalculator(self.spec["artifact"]).model

    def prepare(self, atoms):
        from mace_deploy.graph import atoms_to_graph

        return atoms_to_graph(atoms, self.model.r_max, self.model.atomic_numbers)

    def step(self, atoms, g):
        out = self.model.compute(g.species, g.edge_index, g.edge_vectors, len(atoms))
        return float(out["energy"]), out["forces"].double().numpy(), out["virial"].double().numpy()


class _TorchCalc(_Impl):
    def __init__(self, spec):
        from mace.calculators import MACECalculator  # noqa: F401

        self.spec = spec

    def setup(self):
        from mace.calculators import MACECalculator

        self.calc = MACECalculator(model_paths=self.spec["model"], device="cpu", default_dtype=self.spec["dtype"])

    def step(self, atoms, prepared):
        return _ase_step(self.calc, atoms)


class _LammpsWrapper(_Impl):
    """mace-torch's LAMMPS_MACE TorchScript module called the way pair_style mace calls it: a data dict
    (positions, edge_index, shifts, unit_shifts, cell, node_attrs, batch, ptr) plus the local_or_ghost
    mask and compute_virials. Here every node is local and periodic images enter through shifts, so the
    wrapper does no redundant ghost-atom work (a lower bound on what it costs inside LAMMPS)."""

    def __init__(self, spec):
        import torch  # noqa: F401

        self.spec = spec

    def setup(self):
        import torch

        self.torch = torch
        self.dtype = {"float64": torch.float64, "float32": torch.float32}[self.spec["dtype"]]
        self.module = torch.jit.load(self.spec["lammps_model"], map_location="cpu")
        self.r_max = float(self.module.r_max)
        self.atomic_numbers = [int(z) for z in self.module.atomic_numbers]

    def prepare(self, atoms):
        torch = self.torch
        i, j, S = _ase_graph_inputs(atoms, self.r_max)
        n = len(atoms)
        index = {z: k for k, z in enumerate(self.atomic_numbers)}
        species = torch.tensor([index[int(z)] for z in atoms.numbers], dtype=torch.long)
        cell = torch.tensor(atoms.cell.array, dtype=self.dtype)
        unit_shifts = torch.tensor(S, dtype=self.dtype)
        # the keys and layout pair_style mace (ACEsuit/lammps src/ML-MACE/pair_mace.cpp) passes in its
        # no_domain_decomposition mode: nodes = local atoms, periodic images through (unit_)shifts
        data = {
            "positions": torch.tensor(atoms.positions, dtype=self.dtype),
            "edge_index": torch.tensor(np.stack([i, j]), dtype=torch.long),  # (sender, receiver), as mace-torch
            "unit_shifts": unit_shifts,
            "shifts": unit_shifts @ cell,
            "cell": cell,
            "node_attrs": torch.nn.functional.one_hot(species, len(self.atomic_numbers)).to(self.dtype),
            "batch": torch.zeros(n, dtype=torch.long),
            "ptr": torch.tensor([0, n], dtype=torch.long),
            "energy": torch.empty(1, dtype=self.dtype),
            "forces": torch.empty((n, 3), dtype=self.dtype),
            "weight": torch.ones(1, dtype=self.dtype),
        }
        return data, torch.ones(n, dtype=torch.bool)

    def step(self, atoms, prepared):
        data, local_or_ghost = prepared
        out = self.module(data, local_or_ghost, True)
        return (float(out["total_energy_local"].sum()), out["forces"].double().numpy(),
                out["virials"].double().numpy())


class _Symmetrix(_Impl):
    def __init__(self, spec):
        from symmetrix import Symmetrix  # noqa: F401

        self.spec = spec

    def setup(self):
        from symmetrix import Symmetrix

        self.calc = Symmetrix(self.spec["symmetrix_model"], dtype=self.spec["dtype"])

    def step(self, atoms, prepared):
        return _ase_step(self.calc, atoms)


IMPLS = {
    "deploy": _DeployCalc,
    "deploy-mdl": _DeployModel,
    "torch": _TorchCalc,
    "lammps": _LammpsWrapper,
    "symmetrix": _Symmetrix,
}


def run_child(spec: Dict[str, Any]) -> Dict[str, Any]:
    threads = int(spec["threads"])
    if spec["impl"] != "symmetrix":  # symmetrix evaluates without torch: do not load it into that child
        import torch

        torch.set_num_threads(threads)
    impl = IMPLS[spec["impl"]](spec)  # imports the implementation's packages
    atoms = _load_atoms(spec["structure"])
    n_warmup, n_steps = int(spec["warmup"]), int(spec["steps"])
    positions = step_positions(atoms.positions, n_warmup + n_steps)
    memory = PeakMemory()
    memory.start()

    t = time.perf_counter()
    impl.setup()
    load_s = time.perf_counter() - t

    times, host_times, energies = [], [], []
    ref_energy = ref_forces = None
    cpu_start = None
    for k, pos in enumerate(positions):
        if k == n_warmup:
            cpu_start = _cpu_times()
        atoms.positions = pos
        t0 = time.perf_counter()
        prepared = impl.prepare(atoms)
        t1 = time.perf_counter()
        energy, forces, stress = impl.step(atoms, prepared)
        t2 = time.perf_counter()
        if not (np.isfinite(energy) and np.all(np.isfinite(forces)) and np.all(np.isfinite(stress))):
            raise RuntimeError(f"non-finite result at step {k}")
        if k == 0:
            ref_energy, ref_forces = energy, np.asarray(forces, dtype=np.float64)
        if k >= n_warmup:
            times.append(t2 - t1)
            host_times.append(t1 - t0)
            energies.append(energy)
    steal = _steal_percent(cpu_start, _cpu_times())
    n = len(atoms)
    us = [1e6 * x / n for x in times]
    return {
        "steal_percent": steal,
        "ok": True,
        "atoms": n,
        "us_per_atom_step": float(np.median(us)),
        "us_per_atom_step_min": float(np.min(us)),
        "us_per_atom_step_mean": float(np.mean(us)),
        "us_per_atom_each_step": [round(x, 2) for x in us],
        "untimed_graph_us_per_atom": float(np.median([1e6 * x / n for x in host_times])),
        "steps": n_steps,
        "warmup": n_warmup,
        "load_s": load_s,
        "baseline_rss_mb": memory.baseline,
        "peak_rss_mb": memory.peak(),
        "peak_mb": memory.peak() - memory.baseline,
        "memory_method": memory.method,
        "energy": ref_energy,
        "forces": ref_forces.tolist(),
        "torch_threads": _torch_threads(),
    }


def _torch_threads() -> Optional[int]:
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    return None


def child_main() -> int:
    spec = json.loads(sys.stdin.read())
    try:
        result = run_child(spec)
    except BaseException as e:  # noqa: BLE001  (any failure becomes an "n/a" cell, with its reason)
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        result = {"ok": False, "error": msg[:300]}
    sys.stdout.write("\n" + RESULT_TAG + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- #
# Parent: prepare files, launch children, print and save the table
# --------------------------------------------------------------------------- #

def _have(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine_info() -> Dict[str, Any]:
    cpu = platform.processor() or "unknown"
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu in ("unknown", "", platform.machine()):
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        usable = os.cpu_count()
    mem_gb = None
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    simd = [s for s in ("avx512f", "avx2", "fma") if f" {s}" in flags]
    versions = {"python": platform.python_version()}
    for dist in ("mace-deploy", "torch", "mace-torch", "e3nn", "ase", "numpy", "matscipy",
                 "symmetrix-xl", "symmetrix-xl-cpu-avx512"):
        versions[dist] = _version(dist)
    if versions["mace-deploy"] == "not installed" and _have("mace_deploy"):
        # an uninstalled development copy on PYTHONPATH
        versions["mace-deploy"] = "uninstalled copy (" + _module_attr("mace_deploy", "__version__") + ")"
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "simd": simd,
        "mace_deploy_cpu_kernels": _cpu_kernel_isa(),
        "memory_gb": round(mem_gb, 1) if mem_gb else None,
        "os": platform.platform(),
        "loadavg_start": list(os.getloadavg()),
        "versions": versions,
    }


def _cpu_kernel_isa() -> str:
    """Instruction set of mace-deploy's CPU kernels on this machine (avx512, avx2, baseline)."""
    try:
        from mace_deploy import _C

        return _C.cpu_kernel_isa()
    except Exception:  # noqa: BLE001
        return "?"


def _module_attr(module: str, attr: str) -> str:
    try:
        import importlib

        return str(getattr(importlib.import_module(module), attr, "?"))
    except Exception:  # noqa: BLE001
        return "?"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare_models(workdir: str, models: List[str], dtypes: List[str], want_lammps: bool,
                   want_symmetrix: bool) -> Dict[str, Dict[str, Any]]:
    """Writes <name>.model (mace-torch), <name>-<dtype>.mace.pt (mace-deploy), <name>-<dtype>-lammps.pt
    (LAMMPS_MACE), <name>.json (symmetrix-xl). A step that fails leaves a reason in files[...]."""
    import warnings

    import torch

    # e3nn's scripting prints this for every module; it is harmless
    warnings.filterwarnings("ignore", message="The TorchScript type system doesn't support instance-level")
    files: Dict[str, Dict[str, Any]] = {}
    for name in models:
        f: Dict[str, Any] = {}
        files[name] = f
        model_path = os.path.join(workdir, f"{name}.model")
        _log(f"[prepare] building {name} model")
        model = build_mace_model(name)
        torch.save(model, model_path)
        f["model"] = model_path
        f["parameters"] = int(sum(p.numel() for p in model.parameters()))
        for dtype in dtypes:
            _prepare_file(f, "artifact", dtype, f"mace-deploy compile {name} {dtype}",
                          lambda: _compile_artifact(model_path, os.path.join(workdir, f"{name}-{dtype}.mace.pt"), dtype))
            if want_lammps:
                _prepare_file(f, "lammps", dtype, f"LAMMPS_MACE script {name} {dtype}",
                              lambda: make_lammps_model(model_path, os.path.join(workdir, f"{name}-{dtype}-lammps.pt"),
                                                        dtype))
        if want_symmetrix:
            out = os.path.join(workdir, f"{name}.json")
            _log(f"[prepare] symmetrix_extract_mace {name}")
            err = _run_quiet([sys.executable, "-m", "symmetrix.cli.extract_mace", "--model", model_path,
                              "--output", out])
            if err is None and os.path.exists(out):
                f["symmetrix"] = out
                # JIT-specialise the kernels now, so that no child compiles C++ in its warm-up
                for dtype in dtypes:
                    _log(f"[prepare] symmetrix_prepare_jit_host_artifact {name} {dtype}")
                    e2 = _run_quiet([sys.executable, "-m", "symmetrix.cli.prepare_jit_host_artifact",
                                     "--model", out, "--precision", dtype])
                    if e2 is not None:
                        f[f"symmetrix_jit_error:{dtype}"] = e2
                        _log(f"[prepare]   failed ({e2}); the children will specialise in their warm-up")
            else:
                f["symmetrix"] = None
                f["symmetrix_error"] = err or "no output file"
                _log(f"[prepare]   failed: {f['symmetrix_error']}")
    return files


def _prepare_file(files: Dict[str, Any], kind: str, dtype: str, what: str, make) -> None:
    """files[kind:dtype] = make() (a path), or None with the reason under kind_error:dtype."""
    _log(f"[prepare] {what}")
    try:
        files[f"{kind}:{dtype}"] = make()
    except Exception as e:  # noqa: BLE001
        files[f"{kind}:{dtype}"] = None
        files[f"{kind}_error:{dtype}"] = _short(e)
        _log(f"[prepare]   failed: {_short(e)}")


def _compile_artifact(model_path: str, out: str, dtype: str) -> str:
    from mace_deploy.convert import compile_model

    compile_model(model_path, out, dtype=dtype)
    return out


def make_lammps_model(model_path: str, out: str, dtype: str) -> str:
    """What mace-torch's `mace_create_lammps_model MODEL --dtype DTYPE` does (mace/cli/create_lammps_model.py)."""
    import torch
    from e3nn.util import jit
    from mace.calculators import LAMMPS_MACE

    model = torch.load(model_path, map_location="cpu", weights_only=False)
    model = model.double() if dtype == "float64" else model.float()
    scripted = jit.compile(LAMMPS_MACE(model.to("cpu")))
    scripted.save(out)
    return out


def _short(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def _run_quiet(cmd: List[str]) -> Optional[str]:
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode == 0:
        return None
    tail = [ln for ln in p.stdout.strip().splitlines() if ln.strip()]
    return f"exit {p.returncode}: " + (tail[-1].strip()[:300] if tail else "")


def launch_child(spec: Dict[str, Any], threads: int, timeout: float) -> Dict[str, Any]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"], input=json.dumps(spec),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    how = f"child exited with code {p.returncode}"
    if p.returncode < 0:
        import signal

        name = signal.Signals(-p.returncode).name if -p.returncode in signal.valid_signals() else "?"
        how = f"child killed by signal {-p.returncode} ({name}{', out of memory?' if name == 'SIGKILL' else ''})"
    return {"ok": False, "error": how + (": " + tail[-1][:300] if tail else "")}


def _cell(r: Optional[Dict[str, Any]], key: str, fmt: str) -> str:
    if r is None:
        return "-"
    if not r.get("ok"):
        return "n/a"
    return "?" if r.get(key) is None else fmt.format(r[key])


def _ratio(a: Optional[Dict[str, Any]], b: Optional[Dict[str, Any]]) -> str:
    if a is None or b is None or not a.get("ok") or not b.get("ok"):
        return "-"
    return f"{a['us_per_atom_step'] / b['us_per_atom_step']:.2f}"


def least_disturbed(kept: Optional[Dict[str, Any]], new: Dict[str, Any]) -> Dict[str, Any]:
    """Of an implementation's rounds, the one with the lowest median (interference from other guests
    or processes only ever adds time); every round's median is kept in `round_medians`."""
    if kept is None:
        best = dict(new)
        best["round_medians"] = []
    elif not new.get("ok") or (kept.get("ok") and kept["us_per_atom_step"] <= new["us_per_atom_step"]):
        best = kept
    else:
        best = dict(new)
        best["round_medians"] = kept["round_medians"]
    if new.get("ok"):
        best["round_medians"] = best["round_medians"] + [new["us_per_atom_step"]]
    return best


def print_table(rows: List[Dict[str, Any]], impls: List[str]) -> None:
    head_speed = [f"{i} us" for i in impls]
    head_mem = [f"{i} MB" for i in impls]
    ratios = [("torch", "deploy", "torch/deploy"), ("lammps", "deploy-mdl", "lammps/deploy-mdl"),
              ("symmetrix", "deploy", "symmetrix/deploy")]
    ratios = [r for r in ratios if r[0] in impls and r[1] in impls]
    head_steal = [f"{i} steal%" for i in impls]
    header = ["model", "system", "atoms", "dtype", "thr"] + head_speed + head_mem + head_steal + [r[2] for r in ratios]
    table = [header]
    for row in rows:
        res = row["results"]
        line = [row["model"], row["system"], str(row["atoms"]), row["dtype"], str(row["threads"])]
        line += [_cell(res.get(i), "us_per_atom_step", "{:.1f}") for i in impls]
        line += [_cell(res.get(i), "peak_mb", "{:.0f}") for i in impls]
        line += [_cell(res.get(i), "steal_percent", "{:.0f}") for i in impls]
        line += [_ratio(res.get(a), res.get(b)) for a, b, _ in ratios]
        table.append(line)
    widths = [max(len(r[k]) for r in table) for k in range(len(header))]
    for n, r in enumerate(table):
        print("  ".join(c.rjust(w) if k >= 2 else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    notes = []
    for row in rows:
        for impl, r in row["results"].items():
            if r is not None and not r.get("ok"):
                notes.append(f"  n/a: {row['model']} {row['system']} {row['dtype']} {row['threads']}t {impl}: "
                             f"{r['error']}")
    if notes:
        print("\nn/a cells:")
        print("\n".join(sorted(set(notes))))


def print_memory_per_atom(rows: List[Dict[str, Any]], impls: List[str]) -> None:
    """Marginal memory per atom: (peak of the larger Cu crystal - peak of the smaller) / (atoms added),
    for each pair of consecutive Cu sizes of one model, dtype and thread count. What a larger system
    costs, free of the fixed part (model, libraries, buffers of the first step)."""
    crystals: Dict[tuple, List[Dict[str, Any]]] = {}
    for row in rows:
        if row["system"].startswith("cu"):
            crystals.setdefault((row["model"], row["dtype"], row["threads"]), []).append(row)
    lines = []
    for (model, dtype, threads), group in crystals.items():
        group = sorted(group, key=lambda r: r["atoms"])
        for small, large in zip(group, group[1:]):
            cells = []
            for impl in impls:
                a, b = small["results"].get(impl), large["results"].get(impl)
                if a and b and a.get("ok") and b.get("ok"):
                    kb = (b["peak_mb"] - a["peak_mb"]) * 1024.0 / (large["atoms"] - small["atoms"])
                    cells.append(f"{impl} {kb:.0f}")
            if cells:
                lines.append(f"  {model} {dtype} {threads}t, {small['system']} -> {large['system']}: " + ", ".join(cells))
    if lines:
        print("\nmarginal memory per atom (KB, from the peaks of two Cu crystal sizes):")
        print("\n".join(lines))


def print_consistency(rows: List[Dict[str, Any]], impls: List[str]) -> None:
    """Energy and forces of the unperturbed structure (warm-up step 0), each implementation against
    mace-torch's calculator in the same dtype: the same model gives the same numbers, or the timings
    compare different things."""
    print("\nagreement with mace-torch on the base structure (|dE|/atom eV, max |dF| eV/A):")
    any_line = False
    for row in rows:
        ref = row["results"].get("torch")
        if ref is None or not ref.get("ok"):
            continue
        parts = []
        for impl in impls:
            r = row["results"].get(impl)
            if impl == "torch" or r is None or not r.get("ok"):
                continue
            de = abs(r["energy"] - ref["energy"]) / row["atoms"]
            df = float(np.max(np.abs(np.asarray(r["forces"]) - np.asarray(ref["forces"]))))
            row.setdefault("agreement", {})[impl] = {"dE_per_atom": de, "max_dF": df}
            parts.append(f"{impl} {de:.1e} / {df:.1e}")
        if parts:
            any_line = True
            print(f"  {row['model']} {row['system']} {row['dtype']} {row['threads']}t: " + ", ".join(parts))
    if not any_line:
        print("  (no mace-torch reference in this run)")


def parse_list(text: str, allowed, what: str) -> List[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise SystemExit(f"bench_cpu.py: unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(allowed)}")
    return items


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: small model, cu256, float64, 1 thread, 2 timed steps")
    ap.add_argument("--models", default="small,medium")
    ap.add_argument("--systems", default="cu256,cu1000,cu4000,water")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--impls", default="deploy,deploy-mdl,torch,lammps,symmetrix",
                    help="implementations to run (default: all; symmetrix only where importable)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per configuration (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every implementation this many times per configuration, interleaved, and report "
                         "each one's least disturbed round (on shared machines)")
    ap.add_argument("--json", default="bench_cpu.json", help="where to write the results")
    ap.add_argument("--workdir", default=None, help="keep models and structures here (default: a temp dir, removed)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per child process")
    args = ap.parse_args(argv)

    if args.quick:
        models, systems, dtypes, threads, steps = ["small"], ["cu256"], ["float64"], [1], 2
    else:
        models = parse_list(args.models, MODEL_SPECS, "model")
        systems = parse_list(args.systems, SYSTEMS, "system")
        dtypes = parse_list(args.dtypes, ("float64", "float32"), "dtype")
        threads = [int(x) for x in parse_list(args.threads, [str(k) for k in range(1, 1025)], "thread count")]
        steps = args.steps
    if steps < 1 or args.warmup < 1 or args.rounds < 1:
        raise SystemExit("bench_cpu.py: --steps, --warmup and --rounds must be >= 1")
    impls = parse_list(args.impls, IMPLS, "implementation")

    for module, what in (("mace", "mace-torch (builds the models)"), ("mace_deploy", "mace-deploy")):
        if not _have(module):
            raise SystemExit(f"bench_cpu.py: {what} is not importable; install it (see benchmarks/README.md)")
    have_symmetrix = _have("symmetrix")

    info = machine_info()
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs ({info['usable_cpus']} usable), "
          f"{info['memory_gb']} GiB, SIMD {'/'.join(info['simd']) or '?'} (mace-deploy kernels: "
          f"{info['mace_deploy_cpu_kernels']}); load average at start "
          + " ".join(f"{x:.2f}" for x in info["loadavg_start"]))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print(f"models: {', '.join(models)} (random weights, seed {MODEL_SEED}); "
          f"steps {steps} timed after {args.warmup} warm-up, {args.rounds} round(s); "
          f"perturbation {PERTURB_SIGMA} A per step")
    sys.stdout.flush()

    workdir = args.workdir or tempfile.mkdtemp(prefix="mace-deploy-bench-")
    os.makedirs(workdir, exist_ok=True)
    if have_symmetrix:
        os.environ.setdefault("SYMMETRIX_JIT_CACHE", os.path.join(workdir, "symmetrix-jit-cache"))
    try:
        t_prep = time.perf_counter()
        files = prepare_models(workdir, models, dtypes, "lammps" in impls, have_symmetrix and "symmetrix" in impls)
        structures = {}
        for name in systems:
            atoms = make_structure(name)
            path = os.path.join(workdir, f"{name}.npz")
            np.savez(path, numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)
            structures[name] = (path, len(atoms))
        _log(f"[prepare] done in {time.perf_counter() - t_prep:.0f} s")

        rows = []
        for model in models:
            for system in systems:
                for dtype in dtypes:
                    for nt in threads:
                        path, n_atoms = structures[system]
                        row = {"model": model, "system": system, "atoms": n_atoms, "dtype": dtype,
                               "threads": nt, "results": {}}
                        for round_, impl in itertools.product(range(args.rounds), impls):
                            f = files[model]
                            spec = {"impl": impl, "dtype": dtype, "threads": nt, "structure": path,
                                    "steps": steps, "warmup": args.warmup, "model": f["model"],
                                    "artifact": f.get(f"artifact:{dtype}"),
                                    "lammps_model": f.get(f"lammps:{dtype}"),
                                    "symmetrix_model": f.get("symmetrix")}
                            if impl == "symmetrix" and not have_symmetrix:
                                res = {"ok": False, "error": "not installed"}
                            elif impl == "symmetrix" and not spec["symmetrix_model"]:
                                res = {"ok": False, "error": f"symmetrix_extract_mace: {f.get('symmetrix_error')}"}
                            elif impl in ("deploy", "deploy-mdl") and not spec["artifact"]:
                                res = {"ok": False, "error": f"compile_model: {f.get(f'artifact_error:{dtype}')}"}
                            elif impl == "lammps" and not spec["lammps_model"]:
                                res = {"ok": False, "error": f"LAMMPS_MACE scripting: {f.get(f'lammps_error:{dtype}')}"}
                            else:
                                _log(f"[run] {model} {system} {dtype} {nt}t {impl}"
                                     + (f" (round {round_ + 1} of {args.rounds})" if args.rounds > 1 else ""))
                                res = launch_child(spec, nt, args.timeout)
                                if res.get("ok"):
                                    steal = res.get("steal_percent")
                                    _log(f"       {res['us_per_atom_step']:.1f} us/atom/step, "
                                         f"peak +{res['peak_mb']:.0f} MB"
                                         + (f", CPU steal {steal:.0f}%" if steal is not None else ""))
                                else:
                                    _log(f"       n/a: {res['error']}")
                            row["results"][impl] = least_disturbed(row["results"].get(impl), res)
                        rows.append(row)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    info["loadavg_end"] = list(os.getloadavg())
    print()
    print_table(rows, impls)
    print_memory_per_atom(rows, impls)
    print_consistency(rows, impls)
    print(f"\nus = median microseconds per atom per step (energy+forces+stress), of the least disturbed of "
          f"{args.rounds} round(s); MB = peak RSS of the child above its RSS after imports (model + evaluation); "
          f"steal% = CPU time the hypervisor gave other guests during the timed steps. Load average at end "
          + " ".join(f"{x:.2f}" for x in info["loadavg_end"]) + ".")
    for row in rows:  # forces are only for the agreement check; keep the JSON small
        for r in row["results"].values():
            if r:
                r.pop("forces", None)
    out = {
        "machine": info,
        "settings": {"models": {m: {**COMMON_MODEL_KWARGS, **MODEL_SPECS[m],
                                    "parameters": files[m]["parameters"]} for m in models},
                     "systems": {s: SYSTEMS[s] for s in systems},
                     "steps": steps, "warmup": args.warmup, "perturbation_A": PERTURB_SIGMA,
                     "model_seed": MODEL_SEED, "structure_seed": STRUCTURE_SEED, "implementations": impls},
        "prepare": {m: {k: v for k, v in f.items() if "error" in k} for m, f in files.items()},
        "rows": rows,
    }
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child_main())
    sys.exit(main())
