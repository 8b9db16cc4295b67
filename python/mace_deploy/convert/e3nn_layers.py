"""Conversion of e3nn building blocks into mace-deploy layers.

All arithmetic happens in float64; `to` casts the finished tensors to the artifact dtype.
Normalisation constants come from the e3nn modules themselves (path weights, normalize2mom
constants) or, where e3nn folds them into generated code, from probing the module with unit
inputs, so the conversion follows e3nn exactly instead of re-deriving its conventions.
"""

import copy
import math
from typing import List, Optional, Tuple

import torch
from e3nn import o3

from ..errors import UnsupportedModelError
from ..model.layers import ElementLinear, ElementLinearBlock, EquivariantLinear, LinearBlock, MLPLayer, ScalarMLP

F64 = torch.float64


def channels(irreps: o3.Irreps, what: str) -> int:
    """The common multiplicity of `irreps`; mace-deploy stores features as [N, K, C]."""
    muls = {mul for mul, _ in irreps}
    if len(muls) != 1:
        raise UnsupportedModelError(
            f"not supported: {what} irreps {irreps} mix multiplicities; mace-deploy needs the same number of "
            "channels for every irrep (as in all published MACE models)")
    return muls.pop()


def component_offsets(irreps: o3.Irreps) -> List[int]:
    """Offset of each irrep block along the component axis of a [N, K, C] tensor."""
    offsets, k = [], 0
    for _, ir in irreps:
        offsets.append(k)
        k += ir.dim
    return offsets


def interleaved_components(irreps: o3.Irreps) -> torch.Tensor:
    """Position of each component of [N, K, C] features when every run of equal consecutive irreps
    (the paths that an equivariant linear mixes into one output irrep) is stored component-major:
    in a run of P irreps of dimension D from component o, component m of irrep p moves from
    o + p D + m to o + m P + p. The linear then reads the run as [N, D, P C] in place
    (model/layers.py side_by_side) instead of transposing a copy."""
    irs, offsets, position = [ir for _, ir in irreps], component_offsets(irreps), []
    start = 0
    while start < len(irs):
        end = start
        while end < len(irs) and irs[end] == irs[start]:
            end += 1
        paths, dim = end - start, irs[start].dim
        position += [offsets[start] + m * paths + p for p in range(paths) for m in range(dim)]
        start = end
    return torch.tensor(position, dtype=torch.int64)


def activation_name(fn) -> str:
    """Name of an activation function in `mace_deploy.model.layers.activation`; "" for none."""
    if fn is None:
        return ""
    known = [(torch.nn.functional.silu, "silu"), (torch.tanh, "tanh"), (torch.nn.functional.tanh, "tanh"),
             (torch.sigmoid, "sigmoid"), (torch.nn.functional.sigmoid, "sigmoid"), (torch.abs, "abs"),
             (torch.relu, "relu"), (torch.nn.functional.relu, "relu")]
    for candidate, name in known:
        if fn is candidate:
            return name
    if isinstance(fn, torch.nn.SiLU):
        return "silu"
    raise UnsupportedModelError(f"not supported: activation function {fn!r}")


def normalized_activation(act) -> Tuple[str, float]:
    """(name, constant) of an e3nn `normalize2mom`-wrapped activation; 1.0 where e3nn skips it."""
    if act is None:
        return "", 1.0
    return activation_name(act.f), (1.0 if act._is_id else float(act.cst))


def _consecutive(indices: List[int], what: str) -> None:
    if indices and indices != list(range(indices[0], indices[0] + len(indices))):
        raise UnsupportedModelError(f"not supported: {what} reads non-adjacent input irreps {indices}")


def merged_irreps(merged: o3.Irreps, actual: o3.Irreps, what: str) -> List[List[Tuple[int, int]]]:
    """For each irrep of `merged`, the (index, multiplicity) of the consecutive irreps of `actual`
    it stands for. `merged` is `actual` with runs of equal irreps joined into one (e3nn's
    `simplify`), as mace-torch <= 0.3.8 declared the input of the linear after a convolution
    (`16x0e` for the convolution's `8x0e+8x0e`). The memory layout is the same, so the merged
    weight rows are the actual irreps' rows one after the other."""
    parts, j = [], 0
    for mul, ir in merged:
        mine = []
        while mul > 0 and j < len(actual) and actual[j].ir == ir and actual[j].mul <= mul:
            mine.append((j, actual[j].mul))
            mul -= actual[j].mul
            j += 1
        if mul != 0:
            raise UnsupportedModelError(f"not supported: {what} reads irreps {merged}, which do not match the "
                                        f"irreps {actual} it is given")
        parts.append(mine)
    if j != len(actual):
        raise UnsupportedModelError(f"not supported: {what} reads irreps {merged}, which do not match the "
                                    f"irreps {actual} it is given")
    return parts


def linear(lin: o3.Linear, dtype: torch.dtype, keep_output: Optional[List[int]] = None,
           in_channels: Optional[slice] = None, out_channels: Optional[slice] = None,
           interleaved_input: bool = False, input_irreps: Optional[o3.Irreps] = None) -> EquivariantLinear:
    """e3nn `o3.Linear` -> EquivariantLinear.

    keep_output: indices of the output irreps to produce (all by default), for maps whose output
    irreps mix multiplicities and are therefore split. in_channels / out_channels: keep only these
    channels of a scalar map (selecting one head of a multi-head readout). interleaved_input: the
    input comes in the order of `interleaved_components` (a convolution's output). input_irreps:
    the irreps the input really has, where the linear declares them merged (`merged_irreps`).
    """
    irreps_in, irreps_out = lin.irreps_in, lin.irreps_out
    parts = [[(i, mul)] for i, (mul, _) in enumerate(irreps_in)]
    if input_irreps is not None:
        parts = merged_irreps(irreps_in, input_irreps, f"linear map {irreps_in} -> {irreps_out}")
        irreps_in = input_irreps
    offsets = component_offsets(irreps_in)
    # Weights and biases are flat in instruction order (e3nn's weight_views cannot read biases).
    weights, biases, flat_w, flat_b = {}, {}, 0, 0
    for ins in lin.instructions:
        size = math.prod(ins.path_shape)
        if ins.i_in == -1:
            biases[ins.i_out] = lin.bias.detach().to(F64)[flat_b:flat_b + size] * ins.path_weight
            flat_b += size
        else:
            w = lin.weight.detach().to(F64)[flat_w:flat_w + size].reshape(ins.path_shape) * ins.path_weight
            for i_in, rows in zip((i for i, _ in parts[ins.i_in]), w.split([m for _, m in parts[ins.i_in]])):
                weights[(i_in, ins.i_out)] = rows
            flat_w += size

    blocks = []
    for i_out, (_, ir_out) in enumerate(irreps_out):
        if keep_output is not None and i_out not in keep_output:
            continue
        inputs = sorted(i_in for (i_in, o) in weights if o == i_out)
        _consecutive(inputs, f"linear map {irreps_in} -> {irreps_out}")
        weight = torch.cat([weights[(i_in, i_out)] for i_in in inputs], dim=0) if inputs else \
            torch.zeros(0, irreps_out[i_out].mul, dtype=F64)
        bias = biases.get(i_out)
        if in_channels is not None:
            weight = weight[in_channels]
        if out_channels is not None:
            weight = weight[:, out_channels]
            bias = bias[out_channels] if bias is not None else None
        blocks.append(LinearBlock(offsets[inputs[0]] if inputs else 0, ir_out.dim, len(inputs), weight.to(dtype).contiguous(),
                                  bias.to(dtype) if bias is not None else None, interleaved_input))
    return EquivariantLinear(blocks)


def element_linear(tp: torch.nn.Module, num_elements: int, dtype: torch.dtype) -> ElementLinear:
    """e3nn `FullyConnectedTensorProduct(features, one-hot element)` -> ElementLinear.

    The effective matrices (path weights and Clebsch-Gordan factors included) are read by
    evaluating the product on unit inputs: channel u of component m = 0 of each input irrep,
    for each element.
    """
    irreps_in, irreps_out = tp.irreps_in1, tp.irreps_out
    if tp.irreps_in2.dim != num_elements or tp.irreps_in2.lmax != 0:
        raise UnsupportedModelError(f"not supported: skip tensor product with attributes {tp.irreps_in2}")
    c_in = channels(irreps_in, "skip tensor product input")
    flat_in = [s.start for s in irreps_in.slices()]
    flat_out = [s.start for s in irreps_out.slices()]
    offsets = component_offsets(irreps_in)

    rows = len(irreps_in) * c_in
    x1 = torch.zeros(num_elements, rows, irreps_in.dim, dtype=F64)
    for i, (_, ir) in enumerate(irreps_in):
        for u in range(c_in):
            x1[:, i * c_in + u, flat_in[i] + u * ir.dim] = 1.0
    x2 = torch.eye(num_elements, dtype=F64).unsqueeze(1).expand(num_elements, rows, num_elements)
    tp64 = _as_float64(tp)
    with torch.no_grad():
        out = tp64(x1.reshape(-1, irreps_in.dim), x2.reshape(-1, num_elements)).reshape(num_elements, rows, -1)

    blocks = []
    for i_out, (mul_out, ir_out) in enumerate(irreps_out):
        inputs = [i for i, (_, ir) in enumerate(irreps_in) if ir == ir_out]
        _consecutive(inputs, "skip tensor product")
        cols = flat_out[i_out] + torch.arange(mul_out) * ir_out.dim
        weight = torch.cat([out[:, i * c_in:(i + 1) * c_in][:, :, cols] for i in inputs], dim=1) if inputs else \
            torch.zeros(num_elements, 0, mul_out, dtype=F64)
        blocks.append(ElementLinearBlock(offsets[inputs[0]] if inputs else 0, ir_out.dim, len(inputs),
                                         weight.to(dtype).contiguous()))
    return ElementLinear(blocks)


def embedding_table(lin: o3.Linear, num_elements: int) -> torch.Tensor:
    """[elements, C] rows of an `o3.Linear` applied to one-hot element attributes (float64)."""
    if lin.irreps_in.dim != num_elements or lin.irreps_out.lmax != 0:
        raise UnsupportedModelError(f"not supported: element embedding {lin.irreps_in} -> {lin.irreps_out}")
    ((_, ins, w),) = list(lin.weight_views(yield_instruction=True))
    return w.detach().to(F64) * ins.path_weight


def scalar_mlp(net: torch.nn.Module, dtype: torch.dtype) -> ScalarMLP:
    """e3nn `nn.FullyConnectedNet` -> ScalarMLP, with e3nn's weight normalisation applied exactly
    as `_Layer.forward` applies it. The constant a hidden layer multiplies its activations by
    (normalize2mom constant x sqrt(var_out)) is folded into the rows of the next layer's weights,
    act(z) * s @ W = act(z) @ (s W), which saves two passes over every hidden layer's output."""
    layers = []
    modules = list(net)
    input_scale = 1.0  # the previous layer's activation constant, carried into this layer's weights
    for i, layer in enumerate(modules):
        w = layer.weight.detach().to(F64)
        if layer.act is not None:
            name, cst = normalized_activation(layer.act)
            weight = w * input_scale / (layer.h_in * layer.var_in) ** 0.5
            if i + 1 < len(modules):
                layers.append(MLPLayer(weight.to(dtype), name, 1.0, 1.0))
                input_scale = cst * layer.var_out ** 0.5
            else:
                layers.append(MLPLayer(weight.to(dtype), name, cst, layer.var_out ** 0.5))
        else:
            weight = w * input_scale / (layer.h_in * layer.var_in / layer.var_out) ** 0.5
            layers.append(MLPLayer(weight.to(dtype), "", 1.0, 1.0))
            input_scale = 1.0
    return ScalarMLP(layers)


def tensor_product_program(tp: torch.nn.Module) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
    """Sparse Clebsch-Gordan program of mace-torch's 'uvu' convolution tensor product.

    Returns (cg_index [nnz, 4] = (k_in, k_sh, k_out, path), cg_coeff [nnz] float64, num_paths,
    num_out_components), read by evaluating the product for every pair of unit inputs
    (component k_in of channel 0, spherical harmonic k_sh) with unit weights on channel 0.
    """
    irreps_in, irreps_sh, irreps_out = tp.irreps_in1, tp.irreps_in2, tp.irreps_out
    c = channels(irreps_in, "convolution input")
    for ins in tp.instructions:
        if ins.connection_mode != "uvu" or not ins.has_weight:
            raise UnsupportedModelError(f"not supported: convolution instruction mode {ins.connection_mode}")
    path_of_output = {}
    for p, ins in enumerate(tp.instructions):
        if ins.i_out in path_of_output:
            raise UnsupportedModelError("not supported: convolution with two paths into one output irrep")
        path_of_output[ins.i_out] = p
    flat_in = [s.start for s in irreps_in.slices()]
    comp_in = component_offsets(irreps_in)
    k_in_total, k_sh_total = sum(ir.dim for _, ir in irreps_in), irreps_sh.dim

    rows = k_in_total * k_sh_total
    x1 = torch.zeros(rows, irreps_in.dim, dtype=F64)
    x2 = torch.zeros(rows, k_sh_total, dtype=F64)
    for i, (_, ir) in enumerate(irreps_in):
        for m in range(ir.dim):
            for k_sh in range(k_sh_total):
                row = (comp_in[i] + m) * k_sh_total + k_sh
                x1[row, flat_in[i] + m] = 1.0  # channel u = 0
                x2[row, k_sh] = 1.0
    weights = torch.zeros(rows, tp.weight_numel, dtype=F64)
    weights[:, torch.arange(len(tp.instructions)) * c] = 1.0  # channel u = 0 of every path
    with torch.no_grad():
        out = _as_float64(tp)(x1, x2, weights)

    entries, coeffs = [], []
    comp_out = component_offsets(irreps_out)
    for i_out, (_, ir) in enumerate(irreps_out):
        start = irreps_out.slices()[i_out].start
        for m in range(ir.dim):
            column = out[:, start + m]  # channel 0, component m
            for row in torch.nonzero(column).flatten().tolist():
                entries.append((row // k_sh_total, row % k_sh_total, comp_out[i_out] + m, path_of_output[i_out]))
                coeffs.append(column[row].item())
    return (torch.tensor(entries, dtype=torch.int64).reshape(-1, 4), torch.tensor(coeffs, dtype=F64),
            len(tp.instructions), sum(ir.dim for _, ir in irreps_out))


def _as_float64(module: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(module).to(F64)
