"""Which columns of an artifact's node features (every layer's side by side, e3nn layout) are the
descriptors of mace-torch's `MACECalculator.get_descriptors`, by its rule: the first layer's
irreps (lmax, dimension D) give F = D / (lmax + 1)^2 features per layer, taken at the start of
each layer's block of D columns, and the last layer counts F columns. For MACE's hidden irreps
("128x0e+128x1o": one multiplicity, the last layer scalars only) these are each layer's scalars."""

from typing import List

import numpy as np


def _irreps(irreps: str):
    """(multiplicity, l) of each term of e3nn irreps written as "128x0e+128x1o"."""
    terms = []
    for term in irreps.replace(" ", "").split("+"):
        mul, _, ir = term.rpartition("x")
        terms.append((int(mul) if mul else 1, int(ir[:-1])))
    return terms


def irreps_dim(irreps: str) -> int:
    return sum(mul * (2 * l + 1) for mul, l in _irreps(irreps))


def descriptor_columns(feature_irreps: List[str], invariants_only: bool = True, num_layers: int = -1) -> np.ndarray:
    """The columns of get_descriptors(invariants_only, num_layers) (-1: all layers) in the features
    of layers with `feature_irreps`."""
    layers = len(feature_irreps)
    if num_layers == -1:
        num_layers = layers
    if not 1 <= num_layers <= layers:
        raise ValueError(f"num_layers must be -1 (all) or 1 to {layers}, the model's layers, not {num_layers}")
    total = sum(irreps_dim(irreps) for irreps in feature_irreps)
    first = feature_irreps[0]
    per_component = (max(l for _, l in _irreps(first)) + 1) ** 2
    features = irreps_dim(first) // per_component
    to_keep = irreps_dim(first) * (num_layers - 1) + (features if num_layers == layers else irreps_dim(first))
    if not invariants_only:
        return np.arange(min(to_keep, total))
    columns = [c for i in range(num_layers) for c in range(i * per_component * features,
                                                           min((i * per_component + 1) * features, total))]
    return np.array(columns[:to_keep], dtype=np.int64)
