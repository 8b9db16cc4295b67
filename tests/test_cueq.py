"""Models in cuEquivariance layout compile (converted back to e3nn by mace-torch's own converter,
on the CPU) and reproduce mace-torch; without cuequivariance-torch the refusal says what to install.

scripts/setup.sh installs cuequivariance(-torch) into .venv/cuequivariance, outside the venv's
site-packages (there it would change what mace-torch builds for every other test); the steps that
need it run in subprocesses with that folder on PYTHONPATH.
"""

import os
import subprocess
import sys

import pytest

import model_zoo
from conftest import REPO, assert_close_results, deploy_results, reference_results
from mace_deploy.ase import MACEDeployCalculator
from test_cli import MACE_DEPLOY, assert_one_line_error, run

CUEQ_SITE = REPO / ".venv" / "cuequivariance"
PERIODIC = {"crystal", "small_triclinic", "water_box"}

MAKE_CUEQ_MODEL = """
import sys, torch, model_zoo
from mace.cli.convert_e3nn_cueq import run
model = model_zoo.make_model(sys.argv[1])
torch.save(model, sys.argv[2])
torch.save(run(model, device="cpu", return_model=True, layout=sys.argv[4]), sys.argv[3])
"""


def with_cueq() -> dict:
    if not (CUEQ_SITE / "cuequivariance_torch").is_dir():
        pytest.fail(f"cuequivariance-torch is not installed in {CUEQ_SITE}: run scripts/setup.sh")
    paths = [str(CUEQ_SITE), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


@pytest.mark.parametrize("config, layout", [("base", "ir_mul"), ("multihead", "mul_ir")])
def test_cueq_layout_model_compiles_and_matches(tmp_path, config, layout):
    e3nn_path, cueq_path = tmp_path / "e3nn.model", tmp_path / "cueq.model"
    made = subprocess.run([sys.executable, "-c", MAKE_CUEQ_MODEL, config, str(e3nn_path), str(cueq_path), layout],
                          env=with_cueq(), capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]

    # Without cuequivariance-torch the file cannot even be read: say what to install.
    assert_one_line_error(run("compile", cueq_path, "-o", tmp_path / "x.mace.pt"),
                          "cuEquivariance layout", "pip install cuequivariance-torch")

    heads = model_zoo.config(config).get("heads") or [None]
    for dtype, rel in (("float64", 1e-9), ("float32", 1e-4)):
        artifact = tmp_path / f"{dtype}.mace.pt"
        head = ["--head", heads[-1]] if heads[-1] else []
        compiled = subprocess.run([MACE_DEPLOY, "compile", str(cueq_path), "-o", str(artifact), "--dtype", dtype, *head],
                                  env=with_cueq(), capture_output=True, text=True)
        assert compiled.returncode == 0, compiled.stderr
        assert "self-check    agrees with mace-torch" in compiled.stdout
        calc = MACEDeployCalculator(str(artifact))
        for name, make in model_zoo.STRUCTURES.items():
            atoms = make(0)
            ref = reference_results(e3nn_path, atoms, head=heads[-1], stress=name in PERIODIC)
            try:
                assert_close_results(deploy_results(calc, atoms, stress=name in PERIODIC), ref, rel, len(atoms))
            except AssertionError as e:
                raise AssertionError(f"{dtype}, {name}: {e}") from None

