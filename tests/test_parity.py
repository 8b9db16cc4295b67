"""mace-deploy artifacts reproduce mace-torch's MACECalculator for every supported component
(each config of model_zoo.py) on a molecule, a periodic crystal, a triclinic cell smaller than
2 r_max, a slab and a water box."""

import numpy as np
import pytest
import torch

import model_zoo
from conftest import assert_close_results, deploy_results, reference_results
from mace_deploy.ase import MACEDeployCalculator
from mace_deploy.convert import compile_model

SINGLE_HEAD = [name for name in model_zoo.CONFIGS if model_zoo.config(name).get("heads") is None]
MULTI_HEAD = [name for name in model_zoo.CONFIGS if model_zoo.config(name).get("heads") is not None]
FULLY_PERIODIC = {"crystal", "small_triclinic", "water_box"}


def check_parity(model_path, artifact_path, rel, head=None, seed=0, device="cpu"):
    for name, make in model_zoo.STRUCTURES.items():
        atoms = make(seed)
        stress = name in FULLY_PERIODIC
        ref = reference_results(model_path, atoms, head=head, stress=stress)
        assert np.abs(ref["forces"]).max() > 1e-3, f"{name}: reference forces vanish, the test would be blind"
        ours = deploy_results(MACEDeployCalculator(str(artifact_path), device=device), atoms, stress)
        try:
            assert_close_results(ours, ref, rel, len(atoms))
        except AssertionError as e:
            raise AssertionError(f"structure {name}: {e}") from None


@pytest.mark.parametrize("config", SINGLE_HEAD)
def test_float64_parity(artifact, config):
    model_path, artifact_path = artifact(config)
    check_parity(model_path, artifact_path, rel=1e-9)


@pytest.mark.parametrize("config", MULTI_HEAD)
def test_float64_parity_every_head(artifact, config):
    heads = model_zoo.config(config)["heads"]
    for head in heads:
        model_path, artifact_path = artifact(config, head=head)
        check_parity(model_path, artifact_path, rel=1e-9, head=head)


@pytest.mark.parametrize("config", ["base", "inter_nonlinear", "inter_density", "max_ell_3", "pair_repulsion",
                                    "foundation_like", "mh1_like", "radial_gaussian"])
def test_float32_parity(artifact, config):
    head = (model_zoo.config(config).get("heads") or [None])[0]
    model_path, artifact_path = artifact(config, dtype="float32", head=head)
    check_parity(model_path, artifact_path, rel=1e-4, head=head)


def test_other_seed_other_weights(artifact):
    """A second random draw of the weights, so that no single draw hides a wrong path."""
    model_path, artifact_path = artifact("foundation_like", seed=7)
    check_parity(model_path, artifact_path, rel=1e-9, seed=3)


def test_coupling_tensors_are_read_from_the_file(tmp_path):
    """Models trained with reduced (cuequivariance) Clebsch-Gordan bases store other U tensors than
    e3nn's: the converter must fold the U tensors the file holds. Perturbing them changes
    mace-torch's result, and the artifact must follow."""
    model = model_zoo.make_model("base")
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for product in model.products:
            for contraction in product.symmetric_contractions.contractions:
                for name, u in contraction.named_buffers():
                    if name.startswith("U_matrix"):
                        u.add_(0.3 * torch.randn(u.shape, generator=generator, dtype=u.dtype) * (u != 0))
    model_path, artifact_path = tmp_path / "other_u.model", tmp_path / "other_u.mace.pt"
    torch.save(model, model_path)
    compile_model(str(model_path), str(artifact_path))
    check_parity(model_path, artifact_path, rel=1e-9)
