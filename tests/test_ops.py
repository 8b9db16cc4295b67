"""The fused ops of torch.ops.mace_deploy against straightforward torch references, and their
derivatives against torch.autograd.gradcheck (float64)."""

import pytest
import torch

from mace_deploy import _C  # noqa: F401  (registers torch.ops.mace_deploy)

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


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_symmetric_contraction_matches_reference(degree, dtype, tol):
    x, species, monomials, coefficients, num_out = random_contraction(degree, degree=degree, dtype=dtype)
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


def reference_message_passing(x, sh, w, weight_rows, senders, receivers, num_receivers, cg_index, cg_coeff, num_out):
    """Per-edge messages materialised and summed with index_add, in plain torch."""
    k_in, k_sh, k_out, path = cg_index.unbind(1)
    terms = x[senders][:, k_in, :] * w[weight_rows][:, path, :] * (sh[:, k_sh] * cg_coeff).unsqueeze(-1)
    per_edge = torch.zeros(len(senders), num_out, x.shape[2], dtype=x.dtype).index_add(1, k_out, terms)
    return torch.zeros(num_receivers, num_out, x.shape[2], dtype=x.dtype).index_add(0, receivers, per_edge)


def random_message_passing(seed, nodes=9, receivers=6, edges=30, k_in=4, k_sh=9, channels=5, paths=3, k_out=7,
                           nnz=25, weight_rows=12, dtype=torch.float64):
    """Random inputs; edges share `weight_rows` rows of radial weights (several edges per row)."""
    g = torch.Generator().manual_seed(seed)
    cg_index = torch.stack([torch.randint(0, k_in, (nnz,), generator=g), torch.randint(0, k_sh, (nnz,), generator=g),
                            torch.randint(0, k_out, (nnz,), generator=g), torch.randint(0, paths, (nnz,), generator=g)], 1)
    return (torch.randn(nodes, k_in, channels, generator=g, dtype=dtype),
            torch.randn(edges, k_sh, generator=g, dtype=dtype),
            torch.randn(weight_rows, paths, channels, generator=g, dtype=dtype),
            torch.randint(0, weight_rows, (edges,), generator=g),
            torch.randint(0, nodes, (edges,), generator=g), torch.randint(0, receivers, (edges,), generator=g),
            receivers, cg_index, torch.randn(nnz, generator=g, dtype=dtype), k_out)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_message_passing_matches_reference(dtype, tol):
    args = random_message_passing(1, dtype=dtype)
    ours = ops.message_passing(*args)
    ref = reference_message_passing(*[a.double() if torch.is_tensor(a) and a.is_floating_point() else a for a in args])
    assert torch.allclose(ours.double(), ref, rtol=tol, atol=tol)


def test_message_passing_gradient():
    x, sh, w, rows, senders, receivers, r, cg_index, cg_coeff, k_out = random_message_passing(2)
    inputs = tuple(t.requires_grad_(True) for t in (x, sh, w))
    assert torch.autograd.gradcheck(
        lambda x, sh, w: ops.message_passing(x, sh, w, rows, senders, receivers, r, cg_index, cg_coeff, k_out),
        inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_message_passing_without_edges_and_bad_indices():
    x, sh, w, rows, senders, receivers, r, cg_index, cg_coeff, k_out = random_message_passing(3)
    empty = ops.message_passing(x, sh[:0], w[:0], rows[:0], senders[:0], receivers[:0], r, cg_index, cg_coeff, k_out)
    assert empty.shape == (r, k_out, x.shape[2]) and torch.all(empty == 0)
    with pytest.raises(RuntimeError, match="receiver index is outside"):
        ops.message_passing(x, sh, w, rows, senders, receivers, 2, cg_index, cg_coeff, k_out)
    with pytest.raises(RuntimeError, match="sender index is outside"):
        ops.message_passing(x[:2], sh, w, rows, senders, receivers, r, cg_index, cg_coeff, k_out)
    with pytest.raises(RuntimeError, match="weight row is outside"):
        ops.message_passing(x, sh, w[:2], rows, senders, receivers, r, cg_index, cg_coeff, k_out)
