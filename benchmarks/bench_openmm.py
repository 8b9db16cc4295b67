#!/usr/bin/env python
"""OpenMM benchmark on CPU: the native MACEForce against an openmm-ml-style PythonForce calling mace-torch.

Both run the same model on the same System, with the same VerletIntegrator, on the same platform:

    python benchmarks/bench_openmm.py                       # small model, 1029-atom water box, 20 steps
    python benchmarks/bench_openmm.py --system cu256 --model medium --steps 10 --threads 2

Columns:

  MACEForce    mace_deploy.openmm.MACEForce: own O(N) neighbour list + C++ runtime inside the OpenMM kernel
  PythonForce  openmm.PythonForce calling mace-torch every step the way openmm-ml's MACE potential does
               (openmmml/models/macepotential.py, reimplemented here because openmm-ml is not a
               dependency): mace.data.neighborhood.get_neighborhood in Python, then the eager model

The model and structures come from bench_cpu.py (random MACE-MP-0-small/medium-like models, same seeds).
Reported: ms/step (median over the timed blocks) and ns/day at the given time step.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu import MODEL_SPECS, SYSTEMS, build_mace_model, make_structure  # noqa: E402

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

KJ_PER_MOL_PER_EV = 1.602176634e-19 * 6.02214076e23 / 1000.0


def _mace_torch_compute(state, model, node_attrs, periodic, dtype):
    """One PythonForce evaluation: eV and eV/A from mace-torch, returned in kJ/mol and kJ/mol/nm."""
    import openmm.unit as unit
    import torch
    from mace.data.neighborhood import get_neighborhood

    positions = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
    cell = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.angstrom) if periodic else np.eye(3)
    edge_index, shifts, _, _ = get_neighborhood(positions, float(model.r_max), [periodic] * 3, cell)
    n = len(positions)
    batch = {
        "ptr": torch.tensor([0, n]), "batch": torch.zeros(n, dtype=torch.long), "node_attrs": node_attrs,
        "pbc": torch.tensor([periodic] * 3), "positions": torch.tensor(positions, dtype=dtype),
        "edge_index": torch.tensor(edge_index, dtype=torch.long), "shifts": torch.tensor(shifts, dtype=dtype),
        "cell": torch.tensor(cell, dtype=dtype),
    }
    out = model(batch, compute_force=True)
    forces = out["forces"].detach().double().numpy() * KJ_PER_MOL_PER_EV * 10.0
    return float(out["energy"].detach()) * KJ_PER_MOL_PER_EV, forces


def python_force(model_file, atoms, periodic):
    import openmm
    import torch
    from mace.tools import to_one_hot

    model = torch.load(model_file, map_location="cpu").double().eval()
    index = {int(z): i for i, z in enumerate(model.atomic_numbers)}
    species = torch.tensor([[index[int(z)]] for z in atoms.numbers])
    node_attrs = to_one_hot(species, num_classes=len(index)).double()
    force = openmm.PythonForce(partial(_mace_torch_compute, model=model, node_attrs=node_attrs,
                                       periodic=periodic, dtype=torch.float64))
    force.setUsesPeriodicBoundaryConditions(periodic)
    return force


def mace_force(artifact, atoms, periodic):
    from mace_deploy.openmm import MACEForce

    force = MACEForce(artifact, atoms.numbers)
    force.setUsesPeriodicBoundaryConditions(periodic)
    return force


def time_md(force, atoms, platform, steps, warmup, timestep_fs, blocks=5):
    """Median ms/step over `blocks` blocks of steps/blocks Verlet steps, after `warmup` steps."""
    import openmm

    system = openmm.System()
    for mass in atoms.get_masses():
        system.addParticle(mass)
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) / 10.0 for row in atoms.cell.array))
    system.addForce(force)
    integrator = openmm.VerletIntegrator(timestep_fs * 1e-3)
    ctx = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    ctx.setPositions(atoms.positions / 10.0)
    ctx.setVelocitiesToTemperature(300.0, 1)
    integrator.step(warmup)
    per_block = max(1, steps // blocks)
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        integrator.step(per_block)
        ctx.getState(getEnergy=True)  # wait for the block to finish
        times.append((time.perf_counter() - start) / per_block * 1e3)
    return float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="small", choices=sorted(MODEL_SPECS))
    parser.add_argument("--system", default="water", choices=sorted(SYSTEMS))
    parser.add_argument("--platform", default="CPU", choices=["CPU", "Reference"])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per implementation")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)

    import torch

    from mace_deploy.convert import compile_model

    if args.threads:
        torch.set_num_threads(args.threads)
    atoms = make_structure(args.system)
    with tempfile.TemporaryDirectory() as tmp:
        model_file = os.path.join(tmp, f"{args.model}.model")
        torch.save(build_mace_model(args.model), model_file)
        artifact = os.path.join(tmp, f"{args.model}.mace.pt")
        compile_model(model_file, artifact, dtype="float64")
        rows = []
        for name, make in [("MACEForce", partial(mace_force, artifact)),
                           ("PythonForce", partial(python_force, model_file))]:
            ms = time_md(make(atoms, True), atoms, args.platform, args.steps, args.warmup, args.timestep)
            rows.append((name, ms, args.timestep * 1e-6 * 86400e3 / ms))
    print(f"model {args.model}, system {args.system} ({len(atoms)} atoms), platform {args.platform}, "
          f"float64, {torch.get_num_threads()} torch threads, Verlet {args.timestep} fs, {args.steps} steps")
    print(f"{'implementation':<14}{'ms/step':>10}{'ns/day':>10}")
    for name, ms, ns_day in rows:
        print(f"{name:<14}{ms:>10.1f}{ns_day:>10.4f}")
    print(f"MACEForce speed-up: {rows[1][1] / rows[0][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
