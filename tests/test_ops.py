"""The fused ops of torch.ops.mace_deploy against straightforward torch references, and their
derivatives against torch.autograd.gradcheck (float64).

The CPU kernels exist once per instruction set (AVX-512, AVX2, baseline x86-64); the default run
tests the one this CPU picks and `test_every_instruction_set_build` reruns this file with each
other build forced through MACE_DEPLOY_CPU_ISA. Channel counts cover the vector blocks and the
scalar tails of the kernels (5, 16, 37, 128)."""

import os
import subprocess
import sys

import pytest
import torch

from mace_deploy import _C  # registers torch.ops.mace_deploy

ops = torch.ops.mace_deploy


def reference_symmetric_contraction(x, species, monomials, coefficients, num_out):
    """sum_m coefficients[species, m] * prod_j x[:, k_j(m)] accumulated into k_out(m), in plain torch."""
    products = torch.ones(x.shape[0], monomials.shape[0], x.shape[2], dtype=x.dtype)
    for j in range(1, monomials.shape[1]):
        k = monomials[:, j]
        factor = x[:, k.clamp(min=0), :]
        products = products * torch.where((k >= 0).view(1, -1, 1), factor, torch.ones_like(factor))
    terms = products * coefficients[species]
    return torch.zeros(x.shape[0], num_out, x.shape[2], dtype=x.dtype).index_add(1, monomials[:, 0], terms)


def random_contraction(seed, nodes=7, components=9, channels=5, out_components=4, monomials=40, degree=3,
                       elements=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(monomials):
        d = int(torch.randint(1, degree + 1, (1,), generator=g))
        factors = sorted(torch.randint(0, components, (d,), generator=g).tolist())  # squares and cubes included
        rows.append([int(torch.randint(0, out_components, (1,), generator=g))] + factors + [-1] * (degree - d))
    x = torch.randn(nodes, components, channels, generator=g, dtype=dtype)
    species = torch.randint(0, elements, (nodes,), generator=g)
    coefficients = torch.randn(elements, monomials, channels, generator=g, dtype=dtype)
    return x, species, torch.tensor(rows), coefficients, out_components


CHANNELS = [5, 16, 37, 128]


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_symmetric_contraction_matches_reference(degree, dtype, tol, channels):
    x, species, monomials, coefficients, num_out = random_contraction(degree, degree=degree, dtype=dtype,
                                                                      channels=channels)
    ours = ops.symmetric_contraction(x, species, monomials, coefficients, num_out)
    ref = reference_symmetric_contraction(x.double(), species, monomials, coefficients.double(), num_out)
    assert torch.allclose(ours.double(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_symmetric_contraction_gradient(degree):
    x, species, monomials, coefficients, num_out = random_contraction(10 + degree, degree=degree)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: ops.symmetric_contraction(x, species, monomials, coefficients, num_out),
                                     (x,), eps=1e-6, atol=1e-9, rtol=1e-7)


def test_symmetric_contraction_empty_and_bad_input():
    x, species, monomials, coefficients, num_out = random_contraction(0)
    empty = ops.symmetric_contraction(x[:0], species[:0], monomials, coefficients, num_out)
    assert empty.shape == (0, num_out, x.shape[2])
    with pytest.raises(RuntimeError, match="correlation 4"):
        ops.symmetric_contraction(x, species, torch.cat([monomials, monomials[:, :1]], 1), coefficients, num_out)
    with pytest.raises(RuntimeError, match="coefficients must be"):
        ops.symmetric_contraction(x, species, monomials, coefficients.float(), num_out)


def reference_message_passing(x, sh, hidden, radial_weight, weight_rows, senders, receivers, num_receivers, cg_index,
                              cg_coeff, num_out):
    """Radial weights and per-edge messages materialised and summed with index_add, in plain torch."""
    w = (hidden @ radial_weight).view(hidden.shape[0], -1, x.shape[2])
    k_in, k_sh, k_out, path = cg_index.unbind(1)
    terms = x[senders][:, k_in, :] * w[weight_rows][:, path, :] * (sh[:, k_sh] * cg_coeff).unsqueeze(-1)
    per_edge = torch.zeros(len(senders), num_out, x.shape[2], dtype=x.dtype).index_add(1, k_out, terms)
    return torch.zeros(num_receivers, num_out, x.shape[2], dtype=x.dtype).index_add(0, receivers, per_edge)


def random_message_passing(seed, nodes=9, receivers=6, edges=30, k_in=4, k_sh=9, channels=5, paths=3, k_out=7,
                           nnz=25, weight_rows=12, hidden=8, dtype=torch.float64):
    """Random inputs (x, sh, radial_hidden, radial_weight, weight_rows, senders, receivers,
    num_receivers, cg_index, cg_coeff, k_out); edges share `weight_rows` rows of radial hidden
    features (several edges per row)."""
    g = torch.Generator().manual_seed(seed)
    cg_index = torch.stack([torch.randint(0, k_in, (nnz,), generator=g), torch.randint(0, k_sh, (nnz,), generator=g),
                            torch.randint(0, k_out, (nnz,), generator=g), torch.randint(0, paths, (nnz,), generator=g)], 1)
    return (torch.randn(nodes, k_in, channels, generator=g, dtype=dtype),
            torch.randn(edges, k_sh, generator=g, dtype=dtype),
            torch.randn(weight_rows, hidden, generator=g, dtype=dtype),
            torch.randn(hidden, paths * channels, generator=g, dtype=dtype) / hidden ** 0.5,
            torch.randint(0, weight_rows, (edges,), generator=g),
            torch.randint(0, nodes, (edges,), generator=g), torch.randint(0, receivers, (edges,), generator=g),
            receivers, cg_index, torch.randn(nnz, generator=g, dtype=dtype), k_out)


def in_float64(args):
    return [a.double() if torch.is_tensor(a) and a.is_floating_point() else a for a in args]


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_message_passing_matches_reference(dtype, tol, channels):
    args = random_message_passing(1, dtype=dtype, channels=channels)
    ours = ops.message_passing(*args)
    ref = reference_message_passing(*in_float64(args))
    assert torch.allclose(ours.double(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_message_passing_many_edges_per_receiver(dtype, tol, channels):
    """Receivers with more edges than one forward chunk, a receiver without edges, and (path, k_in)
    groups of more entries than the kernels keep in registers at once."""
    args = list(random_message_passing(5, nodes=40, receivers=4, edges=300, k_in=2, paths=2, nnz=70, weight_rows=150,
                                       dtype=dtype, channels=channels, hidden=64))
    args[6] = args[6].clamp(max=2)  # receiver 3 gets no edge
    ours = ops.message_passing(*args)
    ref = reference_message_passing(*in_float64(args))
    assert torch.allclose(ours.double(), ref, rtol=tol, atol=tol * float(ref.abs().max()))
    assert torch.all(ours[3] == 0)


def check_gradients_against_reference(args, dtype, tol, seed):
    """The three gradients (node features, harmonics, radial hidden features) at once against
    autograd through the reference."""
    x, sh, hidden, radial_weight, rows, senders, receivers, r, cg_index, cg_coeff, k_out = args
    grad_out = torch.randn(r, k_out, x.shape[2], dtype=dtype, generator=torch.Generator().manual_seed(seed))
    ours = torch.autograd.grad(ops.message_passing(*(t.requires_grad_(True) for t in (x, sh, hidden)), radial_weight,
                                                   rows, senders, receivers, r, cg_index, cg_coeff, k_out),
                               (x, sh, hidden), grad_out)
    inputs = tuple(t.detach().double().requires_grad_(True) for t in (x, sh, hidden))
    ref = torch.autograd.grad(reference_message_passing(*inputs, radial_weight.double(), rows, senders, receivers, r,
                                                        cg_index, cg_coeff.double(), k_out), inputs, grad_out.double())
    for a, b in zip(ours, ref):
        assert torch.allclose(a.double(), b, rtol=tol, atol=tol * float(b.abs().max()))


# Also shapes like a real second layer: 40 output components, 128 or 37 channels (vector blocks
# and a scalar tail), a 64-wide radial MLP, many edges per receiver and more edges than one
# backward block.
@pytest.mark.parametrize("shape", [dict(channels=37),
                                   dict(channels=128, k_out=40, nnz=120, edges=90, receivers=3, hidden=64, paths=10),
                                   dict(channels=37, k_out=40, nnz=120, edges=90, receivers=3, hidden=65)])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_message_passing_backward_matches_reference(dtype, tol, shape):
    """With a vector block and a scalar tail of channels and rows shared by several edges."""
    check_gradients_against_reference(random_message_passing(4, dtype=dtype, **shape), dtype, tol, seed=5)


@pytest.mark.parametrize("channels", [16, 37])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_message_passing_backward_shared_rows(dtype, tol, channels):
    """The backward takes two edges of one receiver at once: here they also share their sender
    and their weight row, so both add into the same gradient rows (an odd edge count leaves one
    edge alone)."""
    x, sh, hidden, radial_weight, _, _, _, _, cg_index, cg_coeff, k_out = random_message_passing(
        6, dtype=dtype, channels=channels, edges=7)
    senders = torch.tensor([2, 2, 2, 5, 5, 2, 2])
    rows = torch.tensor([3, 3, 3, 3, 1, 1, 1])
    receivers = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    args = (x, sh, hidden, radial_weight, rows, senders, receivers, 2, cg_index, cg_coeff, k_out)
    check_gradients_against_reference(args, dtype, tol, seed=7)


@pytest.mark.parametrize("channels", [5, 37])
def test_message_passing_gradient(channels):
    x, sh, hidden, radial_weight, rows, senders, receivers, r, cg_index, cg_coeff, k_out = random_message_passing(
        2, channels=channels)
    inputs = tuple(t.requires_grad_(True) for t in (x, sh, hidden))
    assert torch.autograd.gradcheck(
        lambda x, sh, h: ops.message_passing(x, sh, h, radial_weight, rows, senders, receivers, r, cg_index, cg_coeff,
                                             k_out),
        inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_message_passing_without_edges_and_bad_indices():
    x, sh, hidden, radial_weight, rows, senders, receivers, r, cg_index, cg_coeff, k_out = random_message_passing(3)
    empty = ops.message_passing(x, sh[:0], hidden[:0], radial_weight, rows[:0], senders[:0], receivers[:0], r,
                                cg_index, cg_coeff, k_out)
    assert empty.shape == (r, k_out, x.shape[2]) and torch.all(empty == 0)
    with pytest.raises(RuntimeError, match="receiver index is outside"):
        ops.message_passing(x, sh, hidden, radial_weight, rows, senders, receivers, 2, cg_index, cg_coeff, k_out)
    with pytest.raises(RuntimeError, match="sender index is outside"):
        ops.message_passing(x[:2], sh, hidden, radial_weight, rows, senders, receivers, r, cg_index, cg_coeff, k_out)
    with pytest.raises(RuntimeError, match="weight row is outside"):
        ops.message_passing(x, sh, hidden[:2], radial_weight, rows, senders, receivers, r, cg_index, cg_coeff, k_out)
    with pytest.raises(RuntimeError, match=r"radial_weight \[H, paths \* C\]"):
        ops.message_passing(x, sh, hidden, radial_weight[1:], rows, senders, receivers, r, cg_index, cg_coeff, k_out)
    with pytest.raises(RuntimeError, match="must not require grad"):
        ops.message_passing(x, sh, hidden, radial_weight.clone().requires_grad_(True), rows, senders, receivers, r,
                            cg_index, cg_coeff, k_out)


def reference_species_density(radial, sh, weight_rows, sender_species, receivers, num_receivers, num_species):
    """Per-edge outer products materialised and summed with index_add, in plain torch."""
    per_edge = sh.unsqueeze(2) * radial[weight_rows].unsqueeze(1)  # [E, M, K]
    out = torch.zeros(num_receivers * num_species, sh.shape[1], radial.shape[1], dtype=radial.dtype)
    out = out.index_add(0, receivers * num_species + sender_species, per_edge)
    return out.view(num_receivers, num_species, sh.shape[1], radial.shape[1]).transpose(1, 2)


def random_species_density(seed, receivers=6, edges=40, k=37, m=16, species=3, rows=15, dtype=torch.float64):
    """Random inputs; edges share `rows` radial rows and some receiver has no edges."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, k, generator=g, dtype=dtype), torch.randn(edges, m, generator=g, dtype=dtype),
            torch.randint(0, rows, (edges,), generator=g), torch.randint(0, species, (edges,), generator=g),
            torch.randint(0, receivers - 1, (edges,), generator=g), receivers, species)


@pytest.mark.parametrize("k", [5, 64])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_species_density_matches_reference(k, dtype, tol):
    args = random_species_density(6, k=k, dtype=dtype)
    radial, sh = (t.requires_grad_(True) for t in args[:2])
    ours = ops.species_density(radial, sh, *args[2:])
    inputs = tuple(t.detach().double().requires_grad_(True) for t in args[:2])
    ref = reference_species_density(*inputs, *args[2:])
    assert ours.shape == ref.shape and torch.allclose(ours.double(), ref, rtol=tol, atol=tol)
    grad_out = torch.randn(ref.shape, dtype=dtype, generator=torch.Generator().manual_seed(7))
    for a, b in zip(torch.autograd.grad(ours, (radial, sh), grad_out),
                    torch.autograd.grad(ref, inputs, grad_out.double())):
        assert torch.allclose(a.double(), b, rtol=tol, atol=tol * float(b.abs().max()))


def test_species_density_gradient_and_errors():
    radial, sh, rows, species, receivers, r, s = random_species_density(8, k=7, m=4)
    inputs = (radial.requires_grad_(True), sh.requires_grad_(True))
    assert torch.autograd.gradcheck(lambda a, b: ops.species_density(a, b, rows, species, receivers, r, s),
                                    inputs, eps=1e-6, atol=1e-7, rtol=1e-6)
    empty = ops.species_density(radial, sh[:0], rows[:0], species[:0], receivers[:0], r, s)
    assert empty.shape == (r, 4, s, 7) and torch.all(empty == 0)
    with pytest.raises(RuntimeError, match="sender_species entry is outside"):
        ops.species_density(radial, sh, rows, species, receivers, r, 1)
    with pytest.raises(RuntimeError, match="receivers entry is outside"):
        ops.species_density(radial, sh, rows, species, receivers, 2, s)
    with pytest.raises(RuntimeError, match="weight_rows entry is outside"):
        ops.species_density(radial[:2], sh, rows, species, receivers, r, s)


# The last three outputs exceed 32 MB, where the kernel writes around the caches: with aligned rows
# (7000 x 1280), rows not a whole number of vectors (300 columns), and K beyond one block of depth.
@pytest.mark.parametrize("shape", [(1000, 64, 1280), (997, 64, 64), (50, 10, 64), (37, 13, 29), (7, 300, 5),
                                   (3, 0, 4), (0, 8, 8), (7000, 64, 1280), (30000, 8, 300), (9000, 130, 1024)])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
def test_linear_matches_matmul(shape, dtype, tol):
    m, k, n = shape
    g = torch.Generator().manual_seed(m + k + n)
    x, weight = torch.randn(m, k, generator=g, dtype=dtype), torch.randn(k, n, generator=g, dtype=dtype)
    ours = ops.linear(x, weight)
    ref = x.double() @ weight.double()
    assert ours.shape == (m, n) and ours.dtype == dtype
    scale = float(ref.abs().max()) if ref.numel() else 1.0
    assert torch.allclose(ours.double(), ref, rtol=tol, atol=tol * max(1.0, scale))


def strided_inputs(g, dtype):
    """Operands read in place: components 3..8 and 4 of [n, 11, K] features as [n, d, K], columns
    of a wider matrix; a transposed matrix (copied first); and [n, 0, K] / [0, d, K]."""
    feats = torch.randn(13, 11, 37, generator=g, dtype=dtype)
    wide = torch.randn(29, 50, generator=g, dtype=dtype)
    return [feats[:, 3:8], feats[2:9, 4:5], wide[:, 7:44], wide[:9, :37].t().contiguous().t(), feats[:, 3:3],
            feats[:0, 3:8]]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
def test_linear_on_strided_inputs(dtype, tol):
    g = torch.Generator().manual_seed(11)
    weight = torch.randn(37, 70, generator=g, dtype=dtype)
    for x in strided_inputs(g, dtype):
        ours = ops.linear(x, weight)
        ref = x.double() @ weight.double()
        assert ours.shape == x.shape[:-1] + (70,) and ours.is_contiguous()
        scale = float(ref.abs().max()) if ref.numel() else 1.0
        assert torch.allclose(ours.double(), ref, rtol=tol, atol=tol * max(1.0, scale))


def test_linear_gradient_and_errors():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(23, 11, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(11, 19, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: ops.linear(x, weight), (x,), eps=1e-6, atol=1e-9, rtol=1e-7)
    wide = torch.randn(37, 70, generator=g, dtype=torch.float64)
    for strided in strided_inputs(g, torch.float64)[:4]:  # gradients of strided outputs are strided too
        assert torch.autograd.gradcheck(lambda s: ops.linear(s, wide).narrow(-1, 5, 40),
                                        (strided.detach().requires_grad_(True),), eps=1e-6, atol=1e-7, rtol=1e-6)
    with pytest.raises(RuntimeError, match="differentiable in x only"):
        ops.linear(x, weight.clone().requires_grad_(True))
    with pytest.raises(RuntimeError, match=r"x must be \[M, K\] or \[n, d, K\] and weight \[K, N\]"):
        ops.linear(x, weight.t())
    with pytest.raises(RuntimeError, match="one dtype"):
        ops.linear(x, weight.float())


def test_kernel_instruction_set():
    """The build MACE_DEPLOY_CPU_ISA names is the one in use; by default the widest this CPU runs."""
    wanted = os.environ.get("MACE_DEPLOY_CPU_ISA")
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    widest = "avx512" if " avx512bw" in flags else "avx2" if " avx2" in flags else "baseline"
    assert _C.cpu_kernel_isa() == (wanted or widest)


def _cpu_runs(isa):
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    return {"baseline": True, "avx2": " avx2" in flags and " fma" in flags, "avx512": " avx512bw" in flags}[isa]


@pytest.mark.skipif("MACE_DEPLOY_CPU_ISA" in os.environ, reason="already running one forced instruction set")
@pytest.mark.parametrize("isa", ["avx512", "avx2", "baseline"])
def test_every_instruction_set_build(isa):
    """This file again with the kernels of one instruction set forced."""
    if not _cpu_runs(isa):
        pytest.skip(f"this CPU does not run {isa} code")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                         env={**os.environ, "MACE_DEPLOY_CPU_ISA": isa}, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout


def reference_radial_mlp(x, scale, weights, activation):
    act = {"silu": torch.nn.functional.silu, "tanh": torch.tanh}[activation]
    for w in weights:
        x = act(x @ w)
    return x * scale


@pytest.mark.parametrize("activation", ["silu", "tanh"])
@pytest.mark.parametrize("rows", [0, 5, 4096 + 37])  # none, one block, more than one block
def test_radial_mlp_matches_reference(activation, rows):
    """Values and both gradients (input, output scale) of the hidden layers, whose backward
    recomputes them a block of rows at a time."""
    g = torch.Generator().manual_seed(8)
    x = torch.randn(rows, 10, generator=g, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(rows, 1, generator=g, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(10, 16, generator=g, dtype=torch.float64), torch.randn(16, 16, generator=g,
                                                                                    dtype=torch.float64) / 4]
    ours = ops.radial_mlp(x, scale, weights, activation)
    ref = reference_radial_mlp(x, scale, weights, activation)
    assert torch.allclose(ours, ref, rtol=1e-13, atol=1e-13)
    grad_out = torch.randn(rows, 16, generator=g, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(ours, (x, scale), grad_out), torch.autograd.grad(ref, (x, scale), grad_out)):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_radial_mlp_gradcheck_and_bad_input():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(7, 4, generator=g, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(7, 1, generator=g, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)]
    assert torch.autograd.gradcheck(lambda a, b: ops.radial_mlp(a, b, weights, "silu"), (x, scale))
    with pytest.raises(RuntimeError, match="weights must chain"):
        ops.radial_mlp(x, scale, weights[::-1], "silu")
    with pytest.raises(RuntimeError, match="unknown activation 'gelu'"):
        ops.radial_mlp(x, scale, weights, "gelu")
