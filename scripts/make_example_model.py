"""Writes examples/small_random.model: a small random-weight mace-torch ScaleShiftMACE (H, C, O,
Cu; 16 channels, L=1, max_ell 2, correlation 3, 2 interactions, r_max 5 A) used by the README
quick start. Its weights are random (fixed seed), so it is smooth but not physical.

    python scripts/make_example_model.py [OUTPUT]
"""

import contextlib
import io
import os
import sys
import warnings

import numpy as np
import torch

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from e3nn import o3
    from mace import modules


def main(output: str) -> None:
    torch.manual_seed(20261122)
    torch.set_default_dtype(torch.float64)
    model = modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=2,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=4, hidden_irreps=o3.Irreps("16x0e+16x1o"), MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.array([[-13.6, -1029.8, -2041.8, -45050.0]]), avg_num_neighbors=12.0,
        atomic_numbers=[1, 6, 8, 29], correlation=3, gate=torch.nn.functional.silu, radial_MLP=[32, 32, 32],
        atomic_inter_scale=0.5, atomic_inter_shift=0.0, use_reduced_cg=False)
    torch.save(model.eval(), output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "examples",
                                                            "small_random.model"))
