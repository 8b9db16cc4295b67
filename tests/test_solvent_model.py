"""The real trained model of ../shared/models/solvent (H/C/O liquid) against mace-torch."""

import numpy as np
import pytest
from ase.io import read

from conftest import SOLVENT, assert_close_results, deploy_results, reference_results
from mace_deploy.ase import MACEDeployCalculator
from mace_deploy.convert import compile_model

pytestmark = pytest.mark.skipif(not (SOLVENT / "mace01_swa.model").exists(),
                                reason=f"shared solvent model not found at {SOLVENT}")


@pytest.mark.parametrize("dtype,rel", [("float64", 1e-9), ("float32", 1e-4)])
def test_liquid_box(tmp_path, dtype, rel):
    model = SOLVENT / "mace01_swa.model"
    artifact = tmp_path / f"solvent-{dtype}.mace.pt"
    compile_model(str(model), str(artifact), dtype=dtype)
    atoms = read(SOLVENT / "solvent_liquid.xyz")
    ref = reference_results(model, atoms, stress=True)
    ours = deploy_results(MACEDeployCalculator(str(artifact)), atoms, stress=True)
    assert_close_results(ours, ref, rel, len(atoms))


def test_training_clusters(tmp_path):
    model = SOLVENT / "mace01_swa.model"
    artifact = tmp_path / "solvent.mace.pt"
    compile_model(str(model), str(artifact))
    calc = MACEDeployCalculator(str(artifact))
    clusters = [atoms for atoms in read(SOLVENT / "solvent_xtb_train_20.xyz", ":") if len(atoms) > 1][:5]
    assert clusters
    for atoms in clusters:
        ref = reference_results(model, atoms)
        ours = deploy_results(calc, atoms)
        assert_close_results(ours, ref, 1e-9, len(atoms))
        # and the model is a trained one: it tracks the xTB reference forces
        assert np.corrcoef(ours["forces"].ravel(), atoms.arrays["forces_xtb"].ravel())[0, 1] > 0.9
