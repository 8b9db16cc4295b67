#!/usr/bin/env python
"""Cost of committees and descriptors: the runtime's energy + forces + virial step of one
medium-like model (bench_cpu.py's), of committees of 2 and 4 such models (mean, each member's
forces and virial, and the bias of hyperactive learning), and of one model with its descriptors
(node features) besides. One process, interleaved rounds after TorchScript's warm-up calls; the
graph is built outside the timer. Ratios to the single model: a committee of M members should
cost at most M times it plus a small shared part, descriptors at most 10 % more.

    python benchmarks/bench_committee.py [--system cu256] [--dtype float64] [--rounds 5] [--threads 1]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bench_cpu  # noqa: E402  (models and structures)

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="cu256", choices=["cu256", "cu1000", "water"])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from mace_deploy import _C
    from mace_deploy.convert import compile_models
    from mace_deploy.graph import atoms_to_graph

    with tempfile.TemporaryDirectory() as work:
        paths = []
        for seed in range(4):
            paths.append(os.path.join(work, f"medium-{seed}.model"))
            torch.save(bench_cpu.build_mace_model("medium", seed=seed), paths[-1])
        artifacts = {}
        for members in (1, 2, 4):
            artifacts[members] = os.path.join(work, f"committee-{members}.mace.pt")
            compile_models(paths[:members], artifacts[members], dtype=args.dtype, check=False)
        models = {members: _C.Model(path) for members, path in artifacts.items()}
        atoms = bench_cpu.make_structure(args.system)
        graph = atoms_to_graph(atoms, models[1].r_max, models[1].atomic_numbers)

        def step(model, **options):
            return lambda: model.compute(graph.species, graph.edge_index, graph.edge_vectors, len(atoms), **options)

        variants = {
            "one model": step(models[1]),
            "one model + descriptors": step(models[1], node_features=True),
            "committee of 2 (+ HAL bias)": step(models[2], member_results=True, hal_tau=0.5),
            "committee of 4 (+ HAL bias)": step(models[4], member_results=True, hal_tau=0.5),
        }
        for run in variants.values():  # TorchScript's profiling runs
            for _ in range(3):
                run()
        times = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)

    print(f"{args.system} ({len(atoms)} atoms), medium-like model, {args.dtype}, {args.threads} thread(s), "
          f"median of {args.rounds} interleaved rounds")
    single = float(np.median(times["one model"]))
    print(f"{'variant':<30}{'ms/step':>10}{'x one model':>13}")
    for name, values in times.items():
        median = float(np.median(values))
        print(f"{name:<30}{1e3 * median:>10.1f}{median / single:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
