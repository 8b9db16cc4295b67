"""Shared test helpers: random mace-torch models (model_zoo.py) compiled once per session, and
the mace-torch reference evaluated the way mace-torch's own scripts do (float64 default dtype)."""

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mace.calculators  # noqa: E402

import model_zoo  # noqa: E402
from mace_deploy.convert import compile_model, compile_models  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MACE_DEPLOY_SHARED", REPO.parent / "shared"))
SOLVENT = SHARED / "models" / "solvent"


@contextlib.contextmanager
def float64_default():
    """mace-torch computes a few constants in the default dtype; its float64 result is the truth."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def reference_calculator(model_path, head=None):
    """mace-torch's calculator of one model file, or of a committee (a list of them)."""
    kwargs = {"head": head} if head is not None else {}
    paths = [str(p) for p in model_path] if isinstance(model_path, (list, tuple)) else str(model_path)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mace.calculators.MACECalculator(model_paths=paths, device="cpu", default_dtype="float64", **kwargs)


def reference_results(model_path, atoms, head=None, stress=False):
    """Energy, per-atom energies, forces (and stress) of mace-torch's MACECalculator."""
    atoms = atoms.copy()
    with float64_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atoms.calc = reference_calculator(model_path, head)
        out = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        # mace-torch's per-atom energies leave out the energy of an embedding readout (charge/spin
        # models; mace-deploy's include it so that they add up to the energy): no reference there.
        if not hasattr(atoms.calc.models[0], "embedding_readout"):
            out["energies"] = atoms.get_potential_energies()
        if stress:
            out["stress"] = atoms.get_stress()
    return out


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    """artifact(config, dtype="float64", head=None, seed=0) -> (mace-torch .model, compiled artifact)."""
    root = tmp_path_factory.mktemp("models")
    cache = {}

    def get(config, dtype="float64", head=None, seed=0):
        key = (config, dtype, head, seed)
        if key not in cache:
            model_path = root / f"{config}-{seed}.model"
            if not model_path.exists():
                model_zoo.save_model(config, str(model_path), seed=seed)
            out = root / f"{config}-{seed}-{dtype}-{head}.mace.pt"
            compile_model(str(model_path), str(out), dtype=dtype, head=head)
            cache[key] = (model_path, out)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def committee_artifact(tmp_path_factory):
    """A committee artifact of three models of one shape (config "base", seeds 0-2): their node
    features have the same shape, so it has descriptors (members side by side)."""
    root = tmp_path_factory.mktemp("committee")
    paths = []
    for seed in range(3):
        paths.append(root / f"base-{seed}.model")
        model_zoo.save_model("base", str(paths[-1]), seed=seed)
    artifact = root / "committee.mace.pt"
    compile_models([str(p) for p in paths], str(artifact))
    return artifact


def deploy_results(calc, atoms, stress=False):
    """The same quantities from a MACEDeployCalculator."""
    atoms = atoms.copy()
    atoms.calc = calc
    out = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(),
           "energies": atoms.get_potential_energies()}
    if stress:
        out["stress"] = atoms.get_stress()
    return out


def assert_close_results(ours, ref, rel, num_atoms):
    """The acceptance bounds: |dE| <= rel*N, |dF| <= rel*max(1, max|F|), stress likewise."""
    f_scale = max(1.0, np.abs(ref["forces"]).max())
    assert abs(ours["energy"] - ref["energy"]) <= rel * num_atoms, (ours["energy"], ref["energy"])
    assert np.abs(ours["forces"] - ref["forces"]).max() <= rel * f_scale
    if "energies" in ref:
        assert np.abs(ours["energies"] - ref["energies"]).max() <= rel * max(1.0, np.abs(ref["energies"]).max())
    if "stress" in ref:
        assert np.abs(ours["stress"] - ref["stress"]).max() <= rel * max(1.0, np.abs(ref["stress"]).max())
