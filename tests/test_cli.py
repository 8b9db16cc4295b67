"""The `mace-deploy` console script: compile, info, verify, and one-line errors."""

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
import zipfile

import pytest
import torch

import model_zoo
from mace_deploy import _C
from mace_deploy.errors import SelfCheckError

MACE_DEPLOY = shutil.which("mace-deploy", path=os.path.dirname(sys.executable))


def run(*args, check_exit=None):
    assert MACE_DEPLOY, "the mace-deploy console script is not installed next to this Python"
    proc = subprocess.run([MACE_DEPLOY, *map(str, args)], capture_output=True, text=True)
    if check_exit is not None:
        assert proc.returncode == check_exit, proc.stdout + proc.stderr
    return proc


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def multihead_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "multihead.model"
    model_zoo.save_model("multihead", str(path))
    return path


def test_compile_info_verify(tmp_path, multihead_model):
    out = tmp_path / "mh.mace.pt"
    proc = run("compile", multihead_model, "-o", out, "--head", "r2scan", check_exit=0)
    assert "Wrote" in proc.stdout and "r2scan" in proc.stdout and out.exists()

    info = json.loads(run("info", out, "--json", check_exit=0).stdout)
    assert info["head"] == "r2scan" and info["heads"] == model_zoo.HEADS
    assert info["atomic_numbers"] == model_zoo.config("multihead")["atomic_numbers"]
    assert info["dtype"] == "float64" and info["format_version"] == _C.FORMAT_VERSION and len(info["source_sha256"]) == 64
    assert info["halo_feature_sizes"] and info["mace_torch_version"] == "0.3.16"
    assert "atomic_numbers" in run("info", out, check_exit=0).stdout

    proc = run("verify", out, "--reference", multihead_model, check_exit=0)
    assert "OK" in proc.stdout and "small triclinic cell" in proc.stdout


def test_version():
    from mace_deploy import __version__

    assert run("--version", check_exit=0).stdout.strip() == f"mace-deploy {__version__}"


def test_info_into_a_pipe_closed_early(tmp_path, multihead_model):
    """`mace-deploy info x | head -1`: the reader stops after one line; no BrokenPipeError traceback."""
    out = tmp_path / "mh.mace.pt"
    run("compile", multihead_model, "-o", out, "--head", "pbe", "--no-check", check_exit=0)
    proc = subprocess.Popen([MACE_DEPLOY, "info", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `head` does once it has its lines
    assert proc.wait() == 0
    assert proc.stderr.read() == b""


def test_committee_compile_info_verify(tmp_path):
    a, b = tmp_path / "a.model", tmp_path / "b.model"
    model_zoo.save_model("base", str(a), seed=0)
    model_zoo.save_model("inter_nonlinear", str(b), seed=1)
    out = tmp_path / "committee.mace.pt"
    proc = run("compile", a, b, "-o", out, check_exit=0)
    assert "a committee of 2 models" in proc.stdout and "members" in proc.stdout
    assert f"--reference {a} {b}" in proc.stdout
    info = json.loads(run("info", out, "--json", check_exit=0).stdout)
    assert info["members"] == [str(a), str(b)] and info["model_class"].startswith("Committee of 2")
    proc = run("verify", out, "--reference", a, b, check_exit=0)
    assert "OK" in proc.stdout and "member 2: small triclinic cell" in proc.stdout
    # the members in the other order are not the models the committee was compiled from
    run("verify", out, "--reference", b, a, check_exit=1)
    assert_one_line_error(run("verify", out, "--reference", a), "1 reference model(s)", "its 2 members")


def test_float32_compile_verifies_at_float32_tolerance(tmp_path, multihead_model):
    out = tmp_path / "f32.mace.pt"
    run("compile", multihead_model, "-o", out, "--dtype", "float32", "--head", "pbe", check_exit=0)
    assert "1e-04" in run("verify", out, "--reference", multihead_model, check_exit=0).stdout


def test_verify_fails_against_another_model(tmp_path):
    a, b = tmp_path / "a.model", tmp_path / "b.model"
    model_zoo.save_model("base", str(a), seed=0)
    model_zoo.save_model("base", str(b), seed=1)
    run("compile", a, "-o", tmp_path / "a.mace.pt", check_exit=0)
    proc = run("verify", tmp_path / "a.mace.pt", "--reference", b, check_exit=1)
    assert "FAILED" in proc.stdout


def test_missing_model_file(tmp_path):
    assert_one_line_error(run("compile", tmp_path / "none.model", "-o", tmp_path / "x.pt"), "does not exist")


def test_not_a_model_file(tmp_path):
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"\x00\x01 definitely not a pickle")
    assert_one_line_error(run("compile", junk, "-o", tmp_path / "x.pt"), "is not a mace-torch model file")
    notes = tmp_path / "notes.txt"  # a newcomer's mix-up: no unpickler jargon, say what the file is not
    notes.write_text("some notes\n")
    proc = run("compile", notes, "-o", tmp_path / "x.pt")
    assert_one_line_error(proc, "'" + str(notes) + "' is not a mace-torch model file", "torch.save")
    assert "pickl" not in proc.stderr and "Memo" not in proc.stderr
    damaged = tmp_path / "damaged.model"  # a zip archive whose pickle is cut short
    with zipfile.ZipFile(damaged, "w") as archive:
        archive.writestr("damaged/data.pkl", b"\x80\x02}q\x00")
    assert_one_line_error(run("compile", damaged, "-o", tmp_path / "x.pt"), "not a readable mace-torch model file")
    state = tmp_path / "state_dict.model"
    torch.save({"weight": torch.zeros(2)}, state)
    assert_one_line_error(run("compile", state, "-o", tmp_path / "x.pt"), "holds a dict, not a mace-torch model")


def test_unsupported_component(tmp_path):
    model = model_zoo.make_model("base")
    model.readouts[0] = torch.nn.Linear(8, 1)
    path = tmp_path / "odd.model"
    torch.save(model, path)
    assert_one_line_error(run("compile", path, "-o", tmp_path / "x.pt"), "not supported: readout block Linear")


def test_unknown_and_missing_head(tmp_path, multihead_model):
    assert_one_line_error(run("compile", multihead_model, "-o", tmp_path / "x.pt", "--head", "b3lyp"),
                          "head 'b3lyp' is not in this model", "pbe, r2scan")
    assert_one_line_error(run("compile", multihead_model, "-o", tmp_path / "x.pt"), "choose one with --head")


def test_info_on_bad_artifacts(tmp_path, multihead_model):
    assert_one_line_error(run("info", tmp_path / "none.mace.pt"), "does not exist")
    assert_one_line_error(run("info", multihead_model), "corrupt, truncated or not a TorchScript file",
                          "mace-deploy compile")


def test_output_path_errors(tmp_path, multihead_model):
    assert_one_line_error(run("compile", multihead_model, "-o", tmp_path / "missing" / "x.mace.pt", "--head", "pbe"),
                          "does not exist")
    assert_one_line_error(run("compile", multihead_model, "-o", tmp_path, "--head", "pbe"), "is a directory")


def test_verify_reference_errors(tmp_path, multihead_model):
    out = tmp_path / "mh.mace.pt"
    run("compile", multihead_model, "-o", out, "--head", "pbe", check_exit=0)
    assert_one_line_error(run("verify", out, "--reference", tmp_path / "none.model"), "does not exist")
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a pickle")
    assert_one_line_error(run("verify", out, "--reference", junk), "is not a mace-torch model file")
    other = tmp_path / "base.model"
    model_zoo.save_model("base", str(other))
    assert_one_line_error(run("verify", out, "--reference", other), "not the model")
    for option, value in [("--seed", "-5"), ("--tolerance", "-1")]:
        proc = run("verify", out, "--reference", multihead_model, option, value)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "must be" in proc.stderr


@contextlib.contextmanager
def package_not_installed(name):
    """A stand-in for an extension package that is not installed here, present only while a
    model that refers to it is saved: the file then names classes that cannot be imported."""
    assert importlib.util.find_spec(name) is None, f"{name} is installed; the test needs it absent"
    package = types.ModuleType(name)
    package.Extension = type("Extension", (torch.nn.Module,), {"__module__": name})
    sys.modules[name] = package
    try:
        yield package
    finally:
        del sys.modules[name]


@pytest.mark.parametrize("cls, package, fragment", [
    ("extensions.MACELES", "les", "MACELES (latent Ewald summation long-range electrostatics)"),
    ("extensions.PolarMACE", "graph_longrange", "PolarMACE (charges, polarisation and external electric fields)"),
    ("models.AtomicDipolesMACE", None, "AtomicDipolesMACE (a dipole model without energies)"),
    ("models.EnergyDipolesMACE", None, "EnergyDipolesMACE (energies with dipoles)"),
])
def test_unsupported_model_classes_are_named(tmp_path, cls, package, fragment):
    """Refused from the class names in the file, also where the extension package they need is not
    installed (unpickling would fail with an unrelated message)."""
    import mace.modules

    module, name = cls.split(".")
    model = model_zoo.make_model("base")
    model.__class__ = getattr(getattr(mace.modules, module), name)
    path = tmp_path / f"{name}.model"
    if package is None:
        torch.save(model, path)
    else:
        with package_not_installed(package) as extension:
            model.long_range = extension.Extension()
            torch.save(model, path)
    assert_one_line_error(run("compile", path, "-o", tmp_path / "x.pt"), "not supported", fragment)


def test_missing_package_is_named(tmp_path):
    model = model_zoo.make_model("base")
    with package_not_installed("openequivariance") as extension:
        model.interactions[0].conv_fusion = extension.Extension()
        torch.save(model, tmp_path / "oeq.model")
    assert_one_line_error(run("compile", tmp_path / "oeq.model", "-o", tmp_path / "x.pt"),
                          "needs the Python package 'openequivariance' (openequivariance.Extension)")


def test_compile_refuses_an_artifact_that_fails_its_self_check(tmp_path):
    """The self-check runs the new artifact against mace-torch before anything is written: a
    converter defect (here the one of mace-torch <= 0.3.8 models before the fix: the linear after
    the convolution read as declared, on merged irreps) is a one-line error, not a broken file."""
    from mace_deploy.convert import compile as compile_module, mace_blocks

    from e3nn import o3

    model = model_zoo.make_model("hidden_l2")
    torch.manual_seed(0)
    for block in model.interactions:  # the 0.3.8 layout: the linear declares merged input irreps
        block.linear = o3.Linear(block.conv_tp.irreps_out.simplify(), block.linear.irreps_out).to(torch.float64)
    path, out = tmp_path / "merged.model", tmp_path / "merged.mace.pt"
    out.write_bytes(b"an older artifact")
    torch.save(model, path)

    def as_declared(lin, block, dtype, **kwargs):
        return mace_blocks.layers.linear(lin, dtype, interleaved_input=True, **kwargs)

    original = mace_blocks.linear_after_convolution
    mace_blocks.linear_after_convolution = as_declared
    try:
        with pytest.raises(SelfCheckError, match=r"^self-check failed: the compiled model cannot be evaluated"):
            compile_module.compile_model(str(path), str(out))
    finally:
        mace_blocks.linear_after_convolution = original
    assert out.read_bytes() == b"an older artifact"  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.mace.pt", "merged.model"]  # no scratch left

    proc = run("compile", path, "-o", out, check_exit=0)  # the converter as it is reads the layout
    assert "self-check    agrees with mace-torch" in proc.stdout
    assert "skipped" in run("compile", path, "-o", out, "--no-check", check_exit=0).stdout
