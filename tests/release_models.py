"""Builds model_zoo models with an older mace-torch release and records that release's own results.

Run with the release first on the path (scripts/setup.sh installs them under
.venv/mace-torch-releases/VERSION):

    PYTHONPATH=.venv/mace-torch-releases/0.3.6 .venv/bin/python tests/release_models.py OUT_DIR CONFIG...

For each configuration the release can build, OUT_DIR gets CONFIG.model (the pickled model, as
that release's training script saves it) and CONFIG.npz (energy, forces and, for periodic cells,
stress of every model_zoo structure, from that release's MACECalculator in float64; not for the
OLD_RELEASE_CONFIGS, made only to be refused). A configuration the release cannot build gets
CONFIG.skip with the reason. The models are then read
by the current mace-torch and by mace-deploy (tests/test_older_releases.py).
"""

import contextlib
import io
import os
import sys
import warnings

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import model_zoo  # noqa: E402

PERIODIC = {"crystal", "small_triclinic", "water_box"}


def release_results(model_path: str) -> dict:
    from mace.calculators import MACECalculator

    torch.set_default_dtype(torch.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        calc = MACECalculator(model_paths=model_path, device="cpu", default_dtype="float64")
    out = {}
    for name, make in model_zoo.STRUCTURES.items():
        atoms = make(0)
        atoms.calc = calc
        out[f"{name}/energy"] = np.array(atoms.get_potential_energy())
        out[f"{name}/forces"] = atoms.get_forces()
        if name in PERIODIC:
            out[f"{name}/stress"] = atoms.get_stress()
    return out


def main(out_dir: str, configs) -> None:
    import mace

    warnings.simplefilter("ignore")
    print(f"mace-torch {getattr(mace, '__version__', '?')} from {os.path.dirname(mace.__file__)}", flush=True)
    for name in configs:
        try:
            model = model_zoo.make_model(name)
        except model_zoo.NotInRelease as e:
            with open(os.path.join(out_dir, f"{name}.skip"), "w") as f:
                f.write(str(e))
            continue
        path = os.path.join(out_dir, f"{name}.model")
        torch.save(model, path)
        if name in model_zoo.OLD_RELEASE_CONFIGS:
            continue  # made only to be refused; those blocks do not run in a MACE model of any release
        np.savez(os.path.join(out_dir, f"{name}.npz"), **release_results(path))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
