"""The `mace-deploy` command: compile, info, verify.

Exit codes: 0 success, 1 `verify` found differences above tolerance, 2 an error (one line on
stderr, no traceback).
"""

import argparse
import json
import os
import sys
import time
from typing import List, Optional

from ase.data import chemical_symbols

from .errors import MACEDeployError


def _symbols(atomic_numbers) -> str:
    return " ".join(chemical_symbols[z] for z in atomic_numbers)


def _compile(args) -> int:
    from .convert.compile import compile_models

    start = time.perf_counter()
    what = args.models[0] if len(args.models) == 1 else f"a committee of {len(args.models)} models"
    print(f"Compiling {what} ({args.dtype}) ...", flush=True)
    result = compile_models(args.models, args.output, dtype=args.dtype, head=args.head, check=not args.no_check)
    if result.members:
        print(f"  members       {', '.join(result.members)}")
    print(f"  elements      {_symbols(result.atomic_numbers)}")
    print(f"  r_max         {result.r_max:g} A")
    print(f"  interactions  {result.num_interactions}")
    print(f"  head          {result.head}" + (f" (of {', '.join(result.heads)})" if len(result.heads) > 1 else ""))
    if result.self_check_error is None:
        print("  self-check    skipped (--no-check)")
    else:
        print(f"  self-check    agrees with mace-torch to {result.self_check_error:.1e} (relative)")
    print(f"Wrote {result.path} in {time.perf_counter() - start:.1f} s. "
          f"Check it with: mace-deploy verify {result.path} --reference {' '.join(args.models)}")
    return 0


def _info(args) -> int:
    from .artifact import read_metadata

    meta = read_metadata(args.artifact)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    width = max(len(k) for k in meta)
    for key, value in meta.items():
        if key == "atomic_numbers":
            value = f"{list(value)} ({_symbols(value)})"
        elif key == "descriptor_columns":
            value = f"{len(value)} columns (--json lists them)"
        print(f"{key:<{width}}  {value}")
    return 0


def _verify(args) -> int:
    from .artifact import read_metadata
    from .verify import TOLERANCE, compare

    dtype = read_metadata(args.artifact)["dtype"]
    tolerance = args.tolerance if args.tolerance is not None else TOLERANCE[dtype]
    print(f"Comparing {args.artifact} ({dtype}) with mace-torch on {' '.join(args.reference)} ...", flush=True)
    rows = compare(args.artifact, args.reference, seed=args.seed)
    print(f"{'structure':<28}{'atoms':>6}{'|dE|/N (eV)':>14}{'max|dF| rel':>14}{'max|dS| rel':>14}")
    for r in rows:
        stress = f"{r.stress_error:14.2e}" if r.stress_error is not None else f"{'-':>14}"
        print(f"{r.structure:<28}{r.num_atoms:>6}{r.energy_error:14.2e}{r.force_error:14.2e}{stress}")
    worst = max(r.worst() for r in rows)
    if worst > tolerance:
        print(f"FAILED: largest difference {worst:.2e} exceeds the tolerance {tolerance:.0e}")
        return 1
    print(f"OK: largest difference {worst:.2e} is within the tolerance {tolerance:.0e}")
    return 0


def parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="mace-deploy", description="Deploy mace-torch models to LAMMPS, OpenMM and ASE.")
    p.add_argument("--version", action="version", version=f"mace-deploy {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="convert a mace-torch .model file (several: a committee) into a mace-deploy "
                                       "artifact")
    c.add_argument("models", nargs="+", metavar="model",
                   help="mace-torch model file (.model); several make one committee artifact (same elements, "
                        "cutoff and per-structure inputs) whose potential is their mean, with their spread")
    c.add_argument("-o", "--output", required=True, help="artifact to write (e.g. model.mace.pt)")
    c.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    c.add_argument("--head", help="head of a multi-head model (default: its only head, or 'default')")
    c.add_argument("--no-check", action="store_true",
                   help="write the artifact without first checking it against mace-torch on a generated structure")
    c.set_defaults(run=_compile)

    i = sub.add_parser("info", help="print an artifact's metadata")
    i.add_argument("artifact")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(run=_info)

    v = sub.add_parser("verify", help="compare an artifact with its mace-torch model on generated structures")
    v.add_argument("artifact")
    v.add_argument("--reference", required=True, nargs="+",
                   help="the mace-torch .model file it was compiled from (a committee's: each member's, in order)")
    v.add_argument("--tolerance", type=_positive_float,
                   help="relative bound (default 1e-9 for float64, 1e-4 for float32)")
    v.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the generated structures")
    v.set_defaults(run=_verify)
    return p


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, not {text}")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a pipe closed by its reader shows here, not in the interpreter's exit
        return code
    except MACEDeployError as e:
        print(f"mace-deploy {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (`mace-deploy info x | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
