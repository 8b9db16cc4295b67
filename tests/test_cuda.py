"""GPU paths: the CUDA kernels of the fused ops against their CPU kernels (values and gradients),
whole models on CUDA against mace-torch, and pair_style mace with `device cuda` on 1 and 2 ranks.

Skipped, with the reason, where there is no CUDA GPU or mace-deploy was built against a CPU-only
torch (CI: the CUDA kernels are compiled there, but cannot run).
"""

import numpy as np
import pytest
import torch

import lammps_runner as lr
import model_zoo
import test_ops as cpu_ops
from test_lammps import assert_matches_references, copper_oxide
from test_lammps_errors import assert_lammps_error, run_script
from test_parity import SINGLE_HEAD, check_parity
from mace_deploy import _C  # registers torch.ops.mace_deploy
from mace_deploy.ase import MACEDeployCalculator


def no_cuda_reason():
    if not torch.cuda.is_available():
        return "no CUDA GPU here (torch.cuda.is_available() is False)"
    if not torch._C._dispatch_has_kernel_for_dispatch_key("mace_deploy::message_passing", "CUDA"):
        return "mace-deploy was built against a CPU-only torch: no CUDA kernels"
    return None


pytestmark = pytest.mark.skipif(no_cuda_reason() is not None, reason=str(no_cuda_reason()))

ops = torch.ops.mace_deploy
# CUDA vs CPU kernel: float64 round-off, float32 1e-5 relative (norm of the difference over the norm).
REL = {torch.float64: 1e-12, torch.float32: 1e-5}


def relative_error(gpu, cpu):
    """Norm of the difference over the norm of the CPU result (the difference alone if that is 0)."""
    gpu, cpu = gpu.detach().cpu().double(), cpu.detach().double()
    scale = float(cpu.norm())
    return float((gpu - cpu).norm()) / (scale if scale > 0 else 1.0)


def assert_same_on_both_devices(op, args, differentiable, seed=0):
    """op(*args) and the gradients of a random projection of it agree between CPU and CUDA."""
    float_args = [a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
    rel = REL[float_args[0].dtype]
    on_cpu = [a.clone().requires_grad_(i in differentiable) if isinstance(a, torch.Tensor) else a
              for i, a in enumerate(args)]
    on_gpu = [a.detach().cuda().requires_grad_(i in differentiable) if isinstance(a, torch.Tensor) else a
              for i, a in enumerate(args)]
    out_cpu, out_gpu = op(*on_cpu), op(*on_gpu)
    assert out_gpu.is_cuda and out_gpu.shape == out_cpu.shape
    assert torch.isfinite(out_gpu).all()
    assert relative_error(out_gpu, out_cpu) <= rel
    projection = torch.randn(out_cpu.shape, generator=torch.Generator().manual_seed(seed), dtype=out_cpu.dtype)
    grads_cpu = torch.autograd.grad(out_cpu, [on_cpu[i] for i in differentiable], projection)
    grads_gpu = torch.autograd.grad(out_gpu, [on_gpu[i] for i in differentiable], projection.cuda())
    for i, g_cpu, g_gpu in zip(differentiable, grads_cpu, grads_gpu):
        assert relative_error(g_gpu, g_cpu) <= rel, f"gradient of argument {i}"


DTYPES = [torch.float64, torch.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [dict(channels=5), dict(channels=37), dict(channels=128),
                                   dict(channels=300, k_out=9),  # several channel tiles per receiver
                                   dict(channels=64, k_out=40, nnz=120, edges=400, receivers=7, nodes=30,
                                        weight_rows=150),
                                   dict(channels=16, edges=0)])
def test_message_passing(dtype, shape):
    args = cpu_ops.random_message_passing(1, dtype=dtype, **shape)
    assert_same_on_both_devices(ops.message_passing, args, differentiable=(0, 1, 2))


def test_message_passing_shared_rows_and_idle_receivers():
    """Edges in pairs sharing a weight row (an edge and its reverse), receivers and senders without
    edges, on the float64 gradient check of autograd."""
    x, sh, hidden, radial_weight, _, senders, receivers, num_receivers, cg_index, cg_coeff, k_out = (
        cpu_ops.random_message_passing(2, nodes=12, receivers=10, edges=20, channels=37))
    rows = torch.arange(20) // 2
    hidden = hidden.new_empty(10, hidden.shape[1]).normal_()
    args = (x, sh, hidden, radial_weight, rows, senders, receivers.clamp(max=num_receivers - 3), num_receivers,
            cg_index, cg_coeff, k_out)
    assert_same_on_both_devices(ops.message_passing, args, differentiable=(0, 1, 2))
    gpu = [a.cuda() if isinstance(a, torch.Tensor) else a for a in args]
    for i in (0, 1, 2):
        gpu[i] = gpu[i].requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: ops.message_passing(a, b, c, *gpu[3:]), gpu[:3])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [dict(k=5), dict(k=64, m=16, species=4), dict(k=37, species=89, m=9),
                                   dict(k=16, edges=0)])
def test_species_density(dtype, shape):
    args = cpu_ops.random_species_density(3, dtype=dtype, **shape)
    assert_same_on_both_devices(ops.species_density, args, differentiable=(0, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("channels", [5, 37, 128, 200])
def test_symmetric_contraction(dtype, degree, channels):
    args = cpu_ops.random_contraction(4, nodes=30, components=16, channels=channels, monomials=120, degree=degree,
                                      dtype=dtype)
    assert_same_on_both_devices(ops.symmetric_contraction, args, differentiable=(0,))


def test_symmetric_contraction_gradcheck():
    x, species, monomials, coefficients, k_out = cpu_ops.random_contraction(5, channels=37)
    x = x.cuda().requires_grad_()
    rest = (species.cuda(), monomials.cuda(), coefficients.cuda(), k_out)
    assert torch.autograd.gradcheck(lambda a: ops.symmetric_contraction(a, *rest), (x,))


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_plain_and_strided(dtype):
    g = torch.Generator().manual_seed(6)
    weight = torch.randn(64, 96, generator=g, dtype=dtype)
    assert_same_on_both_devices(ops.linear, (torch.randn(1000, 64, generator=g, dtype=dtype), weight), (0,))
    wide = torch.randn(50, 9, 128, generator=g, dtype=dtype)
    assert_same_on_both_devices(lambda x, w: ops.linear(x[:, 1:4, 32:96], w), (wide, weight), (0,))


def test_inputs_on_two_devices_are_refused():
    args = list(cpu_ops.random_message_passing(7))
    args[0] = args[0].cuda()
    with pytest.raises(RuntimeError, match="must be on one device"):
        ops.message_passing(*args)


# ---- whole models ------------------------------------------------------------------------------

@pytest.mark.parametrize("config", SINGLE_HEAD)
def test_float64_model_parity_on_cuda(artifact, config):
    model_path, artifact_path = artifact(config)
    check_parity(model_path, artifact_path, rel=1e-9, device="cuda")


@pytest.mark.parametrize("config", ["base", "max_ell_3", "foundation_like"])
def test_float32_model_parity_on_cuda(artifact, config):
    model_path, artifact_path = artifact(config, dtype="float32")
    check_parity(model_path, artifact_path, rel=1e-4, device="cuda")


def test_one_artifact_same_numbers_on_cpu_and_cuda(artifact):
    _, artifact_path = artifact("foundation_like")
    atoms = model_zoo.water_box(2)
    on_cpu = MACEDeployCalculator(str(artifact_path)).get_forces(atoms.copy())
    atoms_gpu = atoms.copy()
    atoms_gpu.calc = MACEDeployCalculator(str(artifact_path), device="cuda")
    assert np.abs(atoms_gpu.get_forces() - on_cpu).max() <= 1e-11 * max(1.0, np.abs(on_cpu).max())


# ---- LAMMPS ------------------------------------------------------------------------------------

@pytest.mark.parametrize("nprocs", [1, 2])
def test_lammps_on_one_gpu(tmp_path, artifact, nprocs):
    model_path, artifact_path = artifact("num_interactions_3")
    atoms = copper_oxide(seed=1)
    pair = f"pair_style mace device cuda ranks_per_gpu {nprocs}\npair_coeff * * {artifact_path} Cu O"
    result = lr.evaluate(atoms, artifact_path, tmp_path, nprocs, elements=["Cu", "O"], pair=pair)
    assert_matches_references(result, model_path, artifact_path, atoms)


def test_lammps_more_ranks_than_gpus(tmp_path, artifact):
    _, artifact_path = artifact("base")
    nprocs = torch.cuda.device_count() + 1
    proc = run_script(tmp_path, f"pair_style mace device cuda\npair_coeff * * {artifact_path} Cu O", nprocs=nprocs)
    assert_lammps_error(proc, f"{nprocs} MPI ranks on this node but {nprocs - 1} GPU(s)")
