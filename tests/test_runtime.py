"""The C++ runtime (csrc/runtime) loads and evaluates artifacts with no Python in the model call,
and refuses bad files and bad graphs with actionable messages."""

import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch
from ase import Atoms

import model_zoo
from conftest import reference_results
from mace_deploy import _C

# Evaluates an artifact through the pybind11 module in a fresh interpreter that never imports
# mace-torch, e3nn or mace-deploy's Python model code; the graph comes from plain numpy.
STANDALONE = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from mace_deploy import _C
    path, numbers, positions = sys.argv[1], json.loads(sys.argv[2]), np.array(json.loads(sys.argv[3]))
    model = _C.Model(path)
    species = torch.tensor([list(model.atomic_numbers).index(z) for z in numbers])
    d = positions[None, :, :] - positions[:, None, :]          # d[i, j] = x_j - x_i
    senders, receivers = np.nonzero((np.linalg.norm(d, axis=-1) < model.r_max) & ~np.eye(len(numbers), dtype=bool))
    out = model.compute(species, torch.tensor(np.stack([senders, receivers])),
                        torch.tensor(d[senders, receivers]), len(numbers))
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("mace", "e3nn") or m.startswith("mace_deploy.model"))
    print(json.dumps({"energy": float(out["energy"]), "forces": out["forces"].tolist(), "leaked": leaked}))
""")


def test_standalone_runtime_matches_mace_torch(artifact):
    model_path, path = artifact("base")
    atoms = model_zoo.molecule(0)
    run = subprocess.run([sys.executable, "-c", STANDALONE, str(path), json.dumps(atoms.numbers.tolist()),
                          json.dumps(atoms.positions.tolist())], capture_output=True, text=True, check=True)
    out = json.loads(run.stdout)
    assert out["leaked"] == []
    ref = reference_results(model_path, atoms)
    assert abs(out["energy"] - ref["energy"]) <= 1e-9 * len(atoms)
    assert np.abs(np.array(out["forces"]) - ref["forces"]).max() <= 1e-9 * max(1, np.abs(ref["forces"]).max())


def test_metadata(artifact):
    _, path = artifact("base")
    model = _C.Model(str(path))
    assert list(model.atomic_numbers) == model_zoo.config("base")["atomic_numbers"]
    assert model.r_max == model_zoo.config("base")["r_max"]
    assert model.dtype == "float64" and model.num_interactions == 2


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        _C.Model(str(tmp_path / "nope.mace.pt"))


def test_corrupt_file(tmp_path, artifact):
    _, path = artifact("base")
    truncated = tmp_path / "truncated.mace.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match="corrupt, truncated or not a TorchScript file") as error:
        _C.Model(str(truncated))
    # torch's reason in one sentence, without its generic advice
    assert "\n" not in str(error.value) and "If you are seeing this error" not in str(error.value)
    garbage = tmp_path / "garbage.mace.pt"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="corrupt, truncated or not a TorchScript file"):
        _C.Model(str(garbage))


def test_changed_weight_bytes(tmp_path, artifact):
    """Bytes changed inside a tensor (torch's zip reader checks no CRC) fail the weights' checksum."""
    _, path = artifact("base")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        largest = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    header = largest.header_offset  # local header: 30 bytes, then the name and extra field
    start = header + 30 + int.from_bytes(data[header + 26:header + 28], "little") + \
        int.from_bytes(data[header + 28:header + 30], "little")
    data[start + largest.file_size // 2] ^= 0x10
    damaged = tmp_path / "damaged.mace.pt"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is corrupt: its weights do not match the checksum"):
        _C.Model(str(damaged))


def test_torchscript_file_that_is_not_an_artifact(tmp_path):
    path = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(ValueError, match="not a mace-deploy artifact"):
        _C.Model(str(path))


@pytest.mark.parametrize("attribute,value,message", [
    ("format_version", 999, "format version 999"),
    ("ops_version", 999, "op library version 999"),
])
def test_incompatible_version(tmp_path, artifact, attribute, value, message):
    _, path = artifact("base")
    module = torch.jit.load(str(path))
    setattr(module, attribute, value)
    changed = tmp_path / "changed.mace.pt"
    torch.jit.save(module, str(changed))
    with pytest.raises(ValueError, match=message):
        _C.Model(str(changed))


def test_bad_graphs_are_refused(artifact):
    _, path = artifact("base")
    model = _C.Model(str(path))
    species = torch.tensor([0, 1])
    edges = torch.tensor([[0, 1], [1, 0]])
    vectors = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="species indices"):
        model.compute(torch.tensor([0, 7]), edges, vectors, 2)
    with pytest.raises(RuntimeError, match="n_local"):
        model.compute(species, edges, vectors, 3)
    with pytest.raises(RuntimeError, match="edge_vectors"):
        model.compute(species, edges, vectors[:1], 2)
    with pytest.raises(RuntimeError, match="receivers must be local"):
        model.compute(species, edges, vectors, 1)


# Non-residual first blocks apply their element-dependent skip to the message: with no local atom
# it must still hang on the edge vectors' autograd graph (an MPI rank without atoms runs every
# reverse halo exchange through it).
@pytest.mark.parametrize("config", ["base", "train_default_mace", "inter_density", "inter_mixed"])
def test_empty_and_isolated_atoms(artifact, config):
    """No atoms gives zero; atoms without neighbours give mace-torch's isolated-atom energies."""
    model_path, path = artifact(config)
    model = _C.Model(str(path))
    none = model.compute(torch.zeros(0, dtype=torch.int64), torch.zeros(2, 0, dtype=torch.int64),
                         torch.zeros(0, 3, dtype=torch.float64), 0)
    assert float(none["energy"]) == 0.0 and none["forces"].shape == (0, 3)
    lone = model.compute(torch.tensor([0, 3]), torch.zeros(2, 0, dtype=torch.int64),
                         torch.zeros(0, 3, dtype=torch.float64), 2)
    ref = reference_results(model_path, Atoms("HCu", positions=[[0, 0, 0], [10.0, 0, 0]]))
    assert np.allclose(lone["atom_energies"].numpy(), ref["energies"], rtol=0, atol=1e-12)
    assert torch.all(lone["forces"] == 0)


class CallsLinear(torch.nn.Module):
    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.ops.mace_deploy.linear(x, w)


def test_op_call_of_another_version_asks_to_recompile(tmp_path):
    """An artifact whose code calls an op with another schema (compiled by a mace-deploy whose ops
    differ, e.g. message_passing before op version 6) fails in TorchScript's loader, before its
    metadata is read: the user still gets the one-line "recompile" message."""
    saved = tmp_path / "calls_linear.pt"
    torch.jit.save(torch.jit.script(CallsLinear()), str(saved))
    changed = tmp_path / "other_version.mace.pt"
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(changed, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith(".py"):
                data = data.replace(b"mace_deploy.linear(x, w)", b"mace_deploy.linear(x, w, w)")
            zout.writestr(item, data)
    with pytest.raises(ValueError, match=r"uses mace_deploy ops this build does not have .*recompile it with "
                                         r"`mace-deploy compile`: mace_deploy::linear\(Tensor x"):
        _C.Model(str(changed))
