"""Committees (several models in one artifact) and node features (descriptors) in ASE, against
mace-torch's MACECalculator with several models and its get_descriptors; the bias of hyperactive
learning against finite differences of the biased energy."""

import numpy as np
import pytest
import torch

import model_zoo
from conftest import float64_default, reference_calculator
from mace_deploy import _C
from mace_deploy.ase import MACEDeployCalculator
from mace_deploy.convert import compile_models
from mace_deploy.errors import ModelFileError, UnsupportedModelError

# Members of each committee: (config, seed). Different shapes (interaction blocks, degrees of the
# spherical harmonics, numbers of layers, hidden irreps), 2 to 5 members.
COMMITTEES = {
    "two_seeds": [("base", 0), ("base", 1)],
    "three_shapes": [("base", 2), ("inter_nonlinear", 0), ("hidden_l2", 0)],
    "five_mixed": [("base", 3), ("max_ell_1", 0), ("max_ell_3", 0), ("num_interactions_1", 0),
                   ("num_interactions_3", 0)],
    "charge_spin": [("joint_embedding", 0), ("joint_embedding", 1)],
}
STRUCTURES = ["molecule", "crystal", "small_triclinic", "slab"]


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    """committee(name) -> (member .model files, compiled committee artifact)."""
    root = tmp_path_factory.mktemp("committees")
    cache = {}

    def get(name):
        if name not in cache:
            paths = []
            for config, seed in COMMITTEES[name]:
                path = root / f"{config}-{seed}.model"
                if not path.exists():
                    model_zoo.save_model(config, str(path), seed=seed)
                paths.append(path)
            artifact = root / f"{name}.mace.pt"
            compile_models([str(p) for p in paths], str(artifact))
            cache[name] = (paths, artifact)
        return cache[name]

    return get


def _results(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    with float64_default():
        atoms.get_potential_energy()
        if atoms.cell.volume > 0:
            atoms.get_stress()
    return calc.results


def _assert_close(ours, ref, rel, what):
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    assert np.abs(ours - ref).max() <= rel * max(1.0, np.abs(ref).max()), (what, np.abs(ours - ref).max())


@pytest.mark.parametrize("name", COMMITTEES)
def test_committee_results_equal_mace_torch(committee, name):
    paths, artifact = committee(name)
    ours_calc, ref_calc = MACEDeployCalculator(str(artifact)), reference_calculator(paths)
    for structure in STRUCTURES:
        atoms = model_zoo.STRUCTURES[structure](1)
        if name == "charge_spin":
            atoms.info.update(charge=1, spin=2)
        ours, ref = _results(ours_calc, atoms), _results(ref_calc, atoms)
        committee_keys = [k for k in ref if k.endswith(("_comm", "_var"))]
        assert {"energy_comm", "energy_var", "forces_comm", "forces_var"} <= set(committee_keys)
        for key in ["energy", "forces", "stress", "energies"] + committee_keys:
            if key.startswith("stress") and not atoms.pbc.all():
                # mace-torch's stress of a slab is its own convention (test_parity.py: periodic cells only);
                # a molecule has none
                assert (key in ours) == (atoms.cell.volume > 0), key
            elif key in ref and not (key == "energies" and name == "charge_spin"):  # see conftest.reference_results
                _assert_close(ours[key], ref[key], 1e-9, f"{structure} {key}")
        std = np.sqrt(ref["forces_var"].sum(axis=1))
        _assert_close(ours["forces_std_atom"], std, 1e-9, f"{structure} forces_std_atom")
        assert np.abs(ref["forces_var"]).max() > 1e-8, "members agree: the test would be blind"


@pytest.mark.parametrize("config", ["base", "hidden_l2", "hidden_scalar", "num_interactions_3", "inter_nonlinear",
                                    "hidden_mixed_parity", "joint_embedding"])
def test_descriptors_equal_mace_torch(artifact, config):
    model_path, artifact_path = artifact(config)
    ours, ref = MACEDeployCalculator(str(artifact_path)), reference_calculator(model_path)
    layers = model_zoo.config(config)["num_interactions"]
    for structure in ["molecule", "small_triclinic"]:
        atoms = model_zoo.STRUCTURES[structure](2)
        for invariants_only in (True, False):
            for num_layers in sorted({-1, 1, layers}):
                with float64_default():
                    expected = ref.get_descriptors(atoms, invariants_only=invariants_only, num_layers=num_layers)
                got = ours.get_descriptors(atoms, invariants_only=invariants_only, num_layers=num_layers)
                _assert_close(got, expected, 1e-9, f"{structure} {invariants_only} {num_layers}")


def test_committee_descriptors_equal_mace_torch(committee):
    paths, artifact = committee("two_seeds")
    atoms = model_zoo.crystal(3)
    with float64_default():
        expected = reference_calculator(paths).get_descriptors(atoms)
    got = MACEDeployCalculator(str(artifact)).get_descriptors(atoms)
    assert len(got) == len(expected) == 2
    for g, e in zip(got, expected):
        _assert_close(g, e, 1e-9, "committee descriptors")


def test_committee_of_different_feature_shapes_has_no_descriptors(committee):
    _, artifact = committee("three_shapes")
    with pytest.raises(ModelFileError, match="not supported"):
        MACEDeployCalculator(str(artifact)).get_descriptors(model_zoo.molecule(0))


def test_descriptor_layers_out_of_range(artifact):
    _, artifact_path = artifact("base")
    with pytest.raises(ValueError, match="num_layers must be -1"):
        MACEDeployCalculator(str(artifact_path)).get_descriptors(model_zoo.molecule(0), num_layers=3)


def _biased_energy(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy()


@pytest.mark.parametrize("structure", ["crystal", "molecule"])
def test_hal_bias_forces_and_stress_are_derivatives_of_the_biased_energy(committee, structure):
    paths, artifact = committee("three_shapes")
    tau = 0.7
    calc = MACEDeployCalculator(str(artifact), hal_tau=tau)
    atoms = model_zoo.STRUCTURES[structure](4)
    results = _results(calc, atoms)
    plain = _results(MACEDeployCalculator(str(artifact)), atoms)
    sigma = np.sqrt(plain["energy_var"])
    assert abs(results["energy"] - (plain["energy"] - tau * sigma)) <= 1e-9 * max(1.0, abs(plain["energy"]))
    bias_forces = results["forces"] - plain["forces"]
    assert np.abs(bias_forces).max() > 1e-3, "the bias moves no atom: the test would be blind"
    h = 1e-5
    rng = np.random.default_rng(0)
    for atom in rng.choice(len(atoms), 3, replace=False):
        for axis in range(3):
            moved = [atoms.copy(), atoms.copy()]
            moved[0].positions[atom, axis] += h
            moved[1].positions[atom, axis] -= h
            fd = -(_biased_energy(calc, moved[0]) - _biased_energy(calc, moved[1])) / (2 * h)
            assert abs(results["forces"][atom, axis] - fd) <= 1e-6 * max(1.0, abs(fd)), (atom, axis)
    if atoms.pbc.all():
        volume = atoms.get_volume()
        for i, j in [(0, 0), (1, 2)]:
            energies = []
            for sign in (1, -1):
                strained = atoms.copy()
                strain = np.eye(3)
                strain[i, j] += sign * h
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(_biased_energy(calc, strained))
            fd = (energies[0] - energies[1]) / (2 * h) / volume
            voigt = {(0, 0): 0, (1, 2): 3}[(i, j)]
            assert abs(results["stress"][voigt] - fd) <= 1e-6 * max(1.0, abs(fd)), (i, j)


def test_member_view_is_each_models_own_result(committee, artifact):
    paths, committee_path = committee("two_seeds")
    atoms = model_zoo.small_triclinic(5)
    for index, path in enumerate(paths):
        with float64_default():
            ref = _results(reference_calculator(path), atoms)
        ours = _results(MACEDeployCalculator(str(committee_path), member=index), atoms)
        for key in ("energy", "forces", "stress"):
            _assert_close(ours[key], ref[key], 1e-9, f"member {index} {key}")


def test_runtime_reports_the_members(committee):
    paths, artifact = committee("five_mixed")
    model = _C.Model(str(artifact))
    assert model.members == [str(p) for p in paths]


def test_committee_refuses_members_of_another_graph(tmp_path):
    a, b, c = tmp_path / "a.model", tmp_path / "b.model", tmp_path / "c.model"
    model_zoo.save_model("base", str(a))
    longer_cutoff = model_zoo.make_model("base", seed=1)
    longer_cutoff.r_max.fill_(5.0)
    torch.save(longer_cutoff, b)
    model_zoo.save_model("mp0_like", str(c))
    with pytest.raises(UnsupportedModelError, match=r"different cutoffs \(4.5 and 5 A\)"):
        compile_models([str(a), str(b)], str(tmp_path / "x.mace.pt"))
    with pytest.raises(UnsupportedModelError, match=r"different elements \(H C O Cu and H He Li"):
        compile_models([str(a), str(c)], str(tmp_path / "x.mace.pt"))
    assert not (tmp_path / "x.mace.pt").exists()


def test_bias_and_members_need_a_committee(artifact):
    _, artifact_path = artifact("base")
    with pytest.raises(ValueError, match="committee artifact"):
        MACEDeployCalculator(str(artifact_path), hal_tau=1.0)
