"""Models built by older mace-torch releases compile and reproduce those releases' own results.

Releases up to 0.3.8 (MACE-MP-0, MACE-OFF23 and most models trained in 2023-2024) declared the
linear after each convolution on merged irreps, and older releases lack attributes that newer ones
add; the converter reads the layout from the modules. scripts/setup.sh installs the releases
named here beside the venv (.venv/mace-torch-releases/VERSION, `pip install --no-deps --target`);
tests/release_models.py builds model_zoo models with each of them and records that release's
energies, forces and stresses, the reference these tests compare with.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from conftest import REPO, assert_close_results, deploy_results, reference_results
from mace_deploy.ase import MACEDeployCalculator
from mace_deploy.convert import compile_model
from test_cli import assert_one_line_error, run

RELEASES_DIR = Path(os.environ.get("MACE_DEPLOY_RELEASES", REPO / ".venv" / "mace-torch-releases"))

# Block types and layouts every release builds (the 0.3.16 zoo's other blocks came later).
COMMON = ["base", "train_default_mace", "mp0_like", "inter_agnostic", "inter_att", "hidden_l2", "hidden_scalar",
          "max_ell_3", "num_interactions_3", "correlation_list", "plain_mace", "gate_tanh"]
RELEASES = {
    "0.3.3": COMMON,
    "0.3.6": COMMON + ["pair_repulsion", "transform_agnesi", "radial_gaussian"],
    "0.3.8": COMMON + ["inter_density", "inter_density_residual", "pair_repulsion", "radial_gaussian"],
    "0.3.9": COMMON + ["inter_density", "multihead"],
    "0.3.12": ["base", "mp0_like", "inter_density_residual", "multihead"],
}
CASES = [(release, name) for release, names in RELEASES.items() for name in names]
FLOAT32 = {"base", "mp0_like", "multihead"}  # float32 too (float64 for all)
REMOVED_BLOCKS = {"0.3.3": ["agnostic_nonlinear"]}  # blocks the current mace-torch no longer has
PERIODIC = {"crystal", "small_triclinic", "water_box"}


@pytest.fixture(scope="session")
def release_models(tmp_path_factory):
    """release_models(release) -> folder with CONFIG.model and CONFIG.npz for RELEASES[release]."""
    built = {}

    def get(release):
        if release not in built:
            site = RELEASES_DIR / release
            if not (site / "mace").is_dir():
                pytest.fail(f"mace-torch {release} is not installed in {site}: run scripts/setup.sh")
            out = tmp_path_factory.mktemp(f"mace-torch-{release}")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO / "tests")]))
            configs = RELEASES[release] + REMOVED_BLOCKS.get(release, [])
            run = subprocess.run([sys.executable, str(REPO / "tests" / "release_models.py"), str(out), *configs],
                                 env=env, capture_output=True, text=True)
            assert run.returncode == 0, run.stderr[-3000:]
            assert f"mace-torch {release} from {site}" in run.stdout, run.stdout  # not the venv's mace-torch
            built[release] = out
        return built[release]

    return get


def release_reference(npz, structure: str) -> dict:
    ref = {"energy": float(npz[f"{structure}/energy"]), "forces": npz[f"{structure}/forces"]}
    if structure in PERIODIC:
        ref["stress"] = npz[f"{structure}/stress"]
    return ref


@pytest.mark.parametrize("release, config", CASES, ids=[f"{r}-{c}" for r, c in CASES])
def test_release_model_parity(release_models, tmp_path, release, config):
    folder = release_models(release)
    skipped = folder / f"{config}.skip"
    assert not skipped.exists(), f"mace-torch {release} cannot build {config}: {skipped.read_text()}"
    model_path, npz = folder / f"{config}.model", np.load(folder / f"{config}.npz")
    heads = model_zoo.config(config).get("heads") or [None]
    for dtype, rel in (("float64", 1e-9), ("float32", 1e-4)) if config in FLOAT32 else (("float64", 1e-9),):
        for head in heads if dtype == "float64" else heads[-1:]:
            artifact = tmp_path / f"{config}-{dtype}-{head}.mace.pt"
            compile_model(str(model_path), str(artifact), dtype=dtype, head=head)
            calc = MACEDeployCalculator(str(artifact))
            for structure, make in model_zoo.STRUCTURES.items():
                atoms = make(0)
                ours = deploy_results(calc, atoms, stress=structure in PERIODIC)
                if head == heads[-1]:  # what the release's calculator evaluates without a head given
                    ours.pop("energies")  # releases before 0.3.10 report per-atom energies without E0s
                    ref = release_reference(npz, structure)
                else:
                    ref = reference_results(model_path, atoms, head=head, stress=structure in PERIODIC)
                try:
                    assert_close_results(ours, ref, rel, len(atoms))
                except AssertionError as e:
                    raise AssertionError(f"{dtype} head {head}, {structure}: {e}") from None


def test_blocks_the_current_mace_torch_removed_are_named(release_models, tmp_path):
    """mace-torch 0.3.13 removed the non-"Real" blocks of the first MACE releases: neither it nor
    mace-deploy can read such a model, and the refusal names the block instead of an unpickling error."""
    folder = release_models("0.3.3")
    assert_one_line_error(run("compile", folder / "agnostic_nonlinear.model", "-o", tmp_path / "x.mace.pt"),
                          "not supported:", "uses AgnosticResidualNonlinearInteractionBlock (mace.modules.blocks), "
                          "which the installed mace-torch 0.3.16 no longer has")
