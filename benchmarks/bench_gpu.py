"""GPU benchmark: mace-deploy on CUDA vs mace-torch (e3nn) on CUDA, same model files and structures.

For MACE-MP-0-medium-like and -large-like models (random weights, benchmarks/bench_cpu.py) on
rattled fcc Cu of about 1 000, 10 000 and 50 000 atoms, float32 and float64, it times one
energy + forces + stress evaluation per step (fresh positions every step, warm-up steps first,
the device synchronised before each clock read) of
  deploy        mace_deploy.ase.MACEDeployCalculator(device="cuda"): neighbour list on the host,
                model on the GPU, results back on the host
  deploy-model  the runtime alone (Model.compute, graph built outside the timer)
  torch         mace-torch's MACECalculator(device="cuda")
and prints us/atom/step with the ratio torch / deploy, plus peak GPU memory. Runs that fail (out
of memory, say) are reported as such. Writes the table as JSON with --json.

  python benchmarks/bench_gpu.py [--models medium,large] [--atoms 1000,10000,50000] [--json out.json] [--profile]
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cpu  # noqa: E402  (model builder, step positions)

REPLICAS = {1000: (5, 5, 10), 10000: (10, 10, 25), 50000: (20, 25, 25)}  # cubic fcc cells of 4 atoms


def copper(atoms_count, seed=7):
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * REPLICAS[atoms_count]
    atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=atoms.positions.shape)
    atoms.wrap()
    return atoms


def calculator_step(calc, atoms):
    calc.calculate(atoms, ["energy", "forces", "stress"], ["positions"])
    return calc.results["energy"]


def time_steps(step, atoms, warmup, steps, prepare=lambda atoms: None):
    """Median us/atom of step(atoms, prepare(atoms)) over `steps` steps after `warmup`, with
    prepare (host work such as building the graph) outside the clock; and peak GPU memory (MB)."""
    import torch

    positions = bench_cpu.step_positions(atoms.positions, warmup + steps)
    times = []
    torch.cuda.reset_peak_memory_stats()
    for k, pos in enumerate(positions):
        atoms.positions = pos
        prepared = prepare(atoms)
        torch.cuda.synchronize()
        t = time.perf_counter()
        energy = step(atoms, prepared)
        torch.cuda.synchronize()
        if not np.isfinite(energy):
            raise RuntimeError(f"non-finite energy at step {k}")
        if k >= warmup:
            times.append(time.perf_counter() - t)
    return 1e6 * float(np.median(times)) / len(atoms), torch.cuda.max_memory_allocated() / 2**20


def run_case(impl, model_path, artifact_path, dtype, atoms, warmup, steps):
    if impl == "deploy":
        from mace_deploy.ase import MACEDeployCalculator

        calc = MACEDeployCalculator(artifact_path, device="cuda")
        return time_steps(lambda a, _: calculator_step(calc, a), atoms, warmup, steps)
    if impl == "deploy-model":
        from mace_deploy import _C
        from mace_deploy.graph import atoms_to_graph

        model = _C.Model(artifact_path, "cuda")
        return time_steps(
            lambda a, g: float(model.compute(g.species, g.edge_index, g.edge_vectors, len(a))["energy"]),
            atoms, warmup, steps, prepare=lambda a: atoms_to_graph(a, model.r_max, model.atomic_numbers))
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=model_path, device="cuda", default_dtype=dtype)
    return time_steps(lambda a, _: calculator_step(calc, a), atoms, warmup, steps)


def print_profile(artifact_path, atoms, warmup):
    """torch.profiler's table of one Model.compute step (kernels launched from the C++ runtime too)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from mace_deploy import _C
    from mace_deploy.graph import atoms_to_graph

    model = _C.Model(artifact_path, "cuda")
    g = atoms_to_graph(atoms, model.r_max, model.atomic_numbers)
    for _ in range(warmup):
        model.compute(g.species, g.edge_index, g.edge_vectors, len(atoms))
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        model.compute(g.species, g.edge_index, g.edge_vectors, len(atoms))
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="medium,large")
    ap.add_argument("--atoms", default="1000,10000,50000")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--impls", default="deploy,deploy-model,torch")
    # TorchScript's profiling executor optimises a graph after its first two runs: warm up past them
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--profile", action="store_true",
                    help="also print the CUDA kernels of one runtime step per case (torch.profiler)")
    args = ap.parse_args(argv)

    import torch
    from mace_deploy.convert import compile_model

    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    workdir = tempfile.mkdtemp(prefix="bench_gpu_")
    impls = args.impls.split(",")
    gpu = torch.cuda.get_device_name()
    print(f"GPU: {gpu}; torch {torch.__version__}", flush=True)
    rows = []
    header = f"{'model':<7} {'atoms':>6} {'dtype':<8}" + "".join(f" {i:>14}" for i in impls) + "  torch/deploy"
    print(header + "\n" + "-" * len(header), flush=True)
    for name in args.models.split(","):
        model_path = os.path.join(workdir, f"{name}.model")
        torch.save(bench_cpu.build_mace_model(name), model_path)
        for dtype in args.dtypes.split(","):
            artifact_path = os.path.join(workdir, f"{name}-{dtype}.mace.pt")
            compile_model(model_path, artifact_path, dtype=dtype)
            for count in (int(a) for a in args.atoms.split(",")):
                row = {"model": name, "atoms": count, "dtype": dtype, "gpu": gpu}
                for impl in impls:
                    try:
                        us, mb = run_case(impl, model_path, artifact_path, dtype, copper(count), args.warmup,
                                          args.steps)
                        row[impl] = {"us_per_atom_step": us, "peak_gpu_mb": mb}
                    except Exception as e:  # noqa: BLE001  (out of memory, mostly: reported, not fatal)
                        row[impl] = {"error": str(e).splitlines()[0][:120]}
                    torch.cuda.empty_cache()
                rows.append(row)
                cells = "".join(f" {row[i]['us_per_atom_step']:>14.2f}" if "us_per_atom_step" in row[i]
                                else f" {'failed':>14}" for i in impls)
                ratio = (f"{row['torch']['us_per_atom_step'] / row['deploy']['us_per_atom_step']:.2f}x"
                         if "us_per_atom_step" in row.get("torch", {}) and "us_per_atom_step" in row.get("deploy", {})
                         else "-")
                print(f"{name:<7} {count:>6} {dtype:<8}{cells}  {ratio}", flush=True)
                if args.profile:
                    print_profile(artifact_path, copper(count), args.warmup)
    for row in rows:
        for impl in impls:
            if "error" in row[impl]:
                print(f"{row['model']} {row['atoms']} {row['dtype']} {impl}: {row[impl]['error']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
