"""Writes examples/small_random.model: a small random-weight mace-torch ScaleShiftMACE (H, C, O,
Cu; 16 channels, L=1, max_ell 2, correlation 3, 2 interactions, r_max 5 A) used by the README
quick start. Its weights are random (fixed seed), so it is smooth but not physical.

With --member K it writes another member of an example committee instead: the same model with
every weight scaled by 1 + 0.05 N(0, 1) (seed K), as models trained on the same data differ
(examples/small_random_member2.model is --member 2; README, "Committees").

    python scripts/make_example_model.py [OUTPUT] [--member K]
"""

import argparse
import contextlib
import io
import os
import warnings

import numpy as np
import torch

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from e3nn import o3
    from mace import modules

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def build() -> torch.nn.Module:
    torch.manual_seed(20261122)
    torch.set_default_dtype(torch.float64)
    return modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=2,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=4, hidden_irreps=o3.Irreps("16x0e+16x1o"), MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.array([[-13.6, -1029.8, -2041.8, -45050.0]]), avg_num_neighbors=12.0,
        atomic_numbers=[1, 6, 8, 29], correlation=3, gate=torch.nn.functional.silu, radial_MLP=[32, 32, 32],
        atomic_inter_scale=0.5, atomic_inter_shift=0.0, use_reduced_cg=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?")
    parser.add_argument("--member", type=int, help="write committee member K (weights perturbed with seed K)")
    args = parser.parse_args()
    model = build()
    if args.member is not None:
        generator = torch.Generator().manual_seed(args.member)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(1 + 0.05 * torch.randn(parameter.shape, generator=generator))
    name = "small_random.model" if args.member is None else f"small_random_member{args.member}.model"
    output = args.output or os.path.join(EXAMPLES, name)
    torch.save(model.eval(), output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
