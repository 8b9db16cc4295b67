"""Equivariant linear maps and scalar MLPs on node features laid out [nodes, components, channels].

A feature tensor holds irreps of one multiplicity C: component k of irrep (l, p) block b is
x[:, offset_b + m, :] with m in 0..2l. Weights are stored with e3nn's normalisation constants
already folded in, so every module here is a plain matrix product.
"""

from typing import List, Optional, Tuple

import torch


def activation(x: torch.Tensor, name: str) -> torch.Tensor:
    """Elementwise activation by name (the set e3nn/mace-torch models use); "" is the identity."""
    if name == "":
        return x
    if name == "silu":
        return torch.nn.functional.silu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "abs":
        return torch.abs(x)
    if name == "relu":
        return torch.relu(x)
    raise RuntimeError("unknown activation " + name)


def side_by_side(x: torch.Tensor, dim: int, num_paths: int, interleaved: bool) -> torch.Tensor:
    """`num_paths` irrep blocks of dimension `dim` ([N, num_paths * dim, C]) side by side along
    channels: [N, dim, num_paths * C]. Stored one block after the other this takes a copy;
    `interleaved` (component-major, e3nn_layers.interleaved_components) it is a view. No paths (an
    output irrep no input feeds, which e3nn leaves at zero) gives [N, dim, 0]."""
    n, c = x.shape[0], x.shape[2]
    if num_paths == 0:
        return torch.zeros((n, dim, 0), dtype=x.dtype, device=x.device)
    if num_paths == 1:
        return x
    if interleaved:
        return x.reshape(n, dim, num_paths * c)
    return x.reshape(n, num_paths, dim, c).transpose(1, 2).reshape(n, dim, num_paths * c)


class ComponentPieces(torch.nn.Module):
    """Cuts [N, K, C] features along components into the ranges (start, size) that the blocks of a
    linear map read, with one `split`: its backward concatenates the blocks' gradients, where a
    slice per block would add each into its own zeroed copy of the whole input. Ranges must not
    overlap unless equal; components no block reads form pieces of their own."""

    sizes: List[int]  # of the pieces up to the end of the last range (empty when no range has a size)

    def __init__(self, ranges: List[Tuple[int, int]]):
        super().__init__()
        bounds = sorted({0} | {b for start, size in ranges if size > 0 for b in (start, start + size)})
        self.piece_of_range = [bounds.index(start) if size > 0 else -1 for start, size in ranges]
        for (start, size), piece in zip(ranges, self.piece_of_range):
            if size > 0 and bounds[piece + 1] != start + size:
                raise ValueError(f"overlapping component ranges {ranges}")
        self.sizes = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
        self.end = bounds[-1]  # components from here on: a piece no block reads

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The piece of each range (an empty [N, 0, C] for a range of size 0)."""
        sizes = self.sizes + [x.shape[1] - self.end] if x.shape[1] > self.end else self.sizes
        pieces = torch.split(x, sizes, dim=1)
        out: List[torch.Tensor] = []
        for piece in self.piece_of_range:
            out.append(pieces[piece] if piece >= 0 else x.narrow(1, 0, 0))
        return out


def matmul_components(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """[N, dim, K] @ [K, C_out] -> [N, dim, C_out] as one [N * dim, K] product
    (`torch.ops.mace_deploy.linear`, which reads a slice of components in place; torch.matmul
    would run N small batched products)."""
    return torch.ops.mace_deploy.linear(x, weight)


class LinearBlock(torch.nn.Module):
    """One output irrep of an equivariant linear map: reads `num_paths` consecutive input irrep
    blocks of the same (l, p) starting at component `start` (`interleaved`: stored
    component-major) and mixes their channels."""

    def __init__(self, start: int, dim: int, num_paths: int, weight: torch.Tensor,
                 bias: Optional[torch.Tensor], interleaved: bool = False):
        super().__init__()
        self.start = start
        self.dim = dim
        self.num_paths = num_paths
        self.interleaved = interleaved
        self.register_buffer("weight", weight)  # [num_paths * C_in, C_out]
        self.has_bias = bias is not None
        self.register_buffer("bias", bias if bias is not None else torch.zeros(0, dtype=weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: the block's input components [N, num_paths * dim, C_in]."""
        out = matmul_components(side_by_side(x, self.dim, self.num_paths, self.interleaved), self.weight)
        if self.has_bias:
            out = out + self.bias
        return out


class EquivariantLinear(torch.nn.Module):
    """e3nn `o3.Linear` on [N, K_in, C_in] -> [N, K_out, C_out] (output irreps in order)."""

    def __init__(self, blocks: List[LinearBlock]):
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)
        self.pieces = ComponentPieces([(b.start, b.dim * b.num_paths) for b in blocks])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = self.pieces(x)
        outs: List[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            outs.append(block(pieces[i]))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


class ElementLinearBlock(torch.nn.Module):
    """One output irrep of a linear map whose weights depend on the node's element: e3nn's
    fully connected tensor product of features with one-hot element attributes."""

    def __init__(self, start: int, dim: int, num_paths: int, weight: torch.Tensor):
        super().__init__()
        self.start = start
        self.dim = dim
        self.num_paths = num_paths
        self.register_buffer("weight", weight)  # [num_elements, num_paths * C_in, C_out]

    def forward(self, x: torch.Tensor, species: torch.Tensor, elements: List[int]) -> torch.Tensor:
        """x: the block's input components [N, num_paths * dim, C_in]."""
        x = side_by_side(x, self.dim, self.num_paths, False)
        if len(elements) <= 1:
            # One element (a pure metal, say): no gather and scatter of the rows. No element (an MPI
            # rank without atoms): the empty product still depends on x, so the energy keeps its
            # path to the edge vectors and this rank's backward takes part in every halo exchange.
            return matmul_components(x, self.weight[elements[0] if len(elements) == 1 else 0])
        out = torch.zeros((x.shape[0], self.dim, self.weight.shape[2]), dtype=x.dtype, device=x.device)
        for e in elements:
            rows = torch.nonzero(species == e).squeeze(1)
            out = out.index_copy(0, rows, matmul_components(x.index_select(0, rows), self.weight[e]))
        return out


class ElementLinear(torch.nn.Module):
    """Element-dependent equivariant linear map (mace-torch's `skip_tp`)."""

    def __init__(self, blocks: List[ElementLinearBlock]):
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)
        self.pieces = ComponentPieces([(b.start, b.dim * b.num_paths) for b in blocks])

    def forward(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        elements: List[int] = torch.unique(species).tolist()
        pieces = self.pieces(x)
        outs: List[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            outs.append(block(pieces[i], species, elements))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


class MLPLayer(torch.nn.Module):
    """x @ W, then (hidden layers only) act(x) * cst * sqrt(var_out), as e3nn's `_Layer` with W
    already divided by e3nn's sqrt(fan_in * var_in [/ var_out]). x is [edges, features]; the
    product is `torch.ops.mace_deploy.linear` (register-blocked kernel, radial MLPs are its
    largest products)."""

    def __init__(self, weight: torch.Tensor, act: str, act_scale: float, out_scale: float):
        super().__init__()
        self.register_buffer("weight", weight)
        self.act = act  # "" for the linear output layer
        # e3nn normalize2mom constant (exactly 1.0 where e3nn skips it) and sqrt(var_out); both 1.0
        # where the converter folded them into the next layer
        self.act_scale = act_scale
        self.out_scale = out_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.ops.mace_deploy.linear(x, self.weight)
        if self.act != "":
            x = activation(x, self.act)
            if self.act_scale * self.out_scale != 1.0:
                x = x * (self.act_scale * self.out_scale)
        return x


class ScalarMLP(torch.nn.Module):
    """e3nn `nn.FullyConnectedNet` (radial MLPs, density functions)."""

    def __init__(self, layers: List[MLPLayer]):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.linear_output = len(layers) > 0 and layers[-1].act == ""
        # Hidden layers x -> act(x W) with one activation and no scale (the converter folds the
        # scales into the next layer) run as one op that recomputes them in the backward pass
        # instead of keeping their activations (torch.ops.mace_deploy.radial_mlp).
        hidden = layers[:-1]
        self.hidden_activation = hidden[0].act if hidden else ""
        self.fused_hidden = len(hidden) > 0 and all(
            layer.act == self.hidden_activation and layer.act != "" and layer.act_scale * layer.out_scale == 1.0
            for layer in hidden)

    def hidden(self, x: torch.Tensor, output_scale: Optional[torch.Tensor]) -> torch.Tensor:
        """The input of the (linear) last layer, its rows times output_scale [rows, 1]."""
        last = len(self.layers) - 1
        if self.fused_hidden:
            weights: List[torch.Tensor] = []
            for i, layer in enumerate(self.layers):
                if i < last:
                    weights.append(layer.weight)
            scale = output_scale if output_scale is not None else torch.ones_like(x[:, :1])
            return torch.ops.mace_deploy.radial_mlp(x, scale, weights, self.hidden_activation)
        for i, layer in enumerate(self.layers):
            if i < last:
                x = layer(x)
        if output_scale is not None:
            x = x * output_scale
        return x

    def output_weight(self) -> torch.Tensor:
        """The last layer's weight [hidden, outputs]."""
        weight = torch.zeros(0)
        for layer in self.layers:
            weight = layer.weight
        return weight

    def output(self, hidden: torch.Tensor) -> torch.Tensor:
        """The (linear) last layer applied to `hidden`."""
        return torch.ops.mace_deploy.linear(hidden, self.output_weight())

    def forward(self, x: torch.Tensor, output_scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        """output_scale [rows, 1] multiplies the output rows (the radial cutoff). It is applied to
        the input of the last layer when that layer is linear, (x s) W = (x W) s: a row of 64
        hidden numbers instead of the paths x channels of the output (exact up to rounding)."""
        if self.linear_output:
            return self.output(self.hidden(x, output_scale))
        for layer in self.layers:
            x = layer(x)
        if output_scale is not None:
            x = x * output_scale
        return x


class AffineOutputMLP(torch.nn.Module):
    """mace-torch `RadialMLP` (Linear -> LayerNorm -> SiLU stack ending in a biased Linear) split for
    the message passing: the layers before the last give the hidden features, and the last layer
    y = h W^T + b becomes a bias-free product [h, 1] @ [W^T; b], so that the kernel can form it per
    edge (`Convolution`)."""

    def __init__(self, hidden_layers: torch.nn.Sequential, last: torch.nn.Linear):
        super().__init__()
        self.hidden_layers = hidden_layers
        self.register_buffer("weight", torch.cat([last.weight.detach().t(), last.bias.detach().unsqueeze(0)]))

    def hidden(self, x: torch.Tensor, output_scale: Optional[torch.Tensor]) -> torch.Tensor:
        """[h, 1] for the rows of x, times output_scale [rows, 1] (the radial cutoff) if given."""
        h = self.hidden_layers(x)
        h = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
        if output_scale is not None:
            h = h * output_scale
        return h

    def output_weight(self) -> torch.Tensor:
        """[W^T; b], [hidden + 1, outputs]."""
        return self.weight
