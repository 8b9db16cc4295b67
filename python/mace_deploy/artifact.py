"""Reading the metadata of a mace-deploy artifact (validated by the C++ runtime first)."""

from typing import Any, Dict

import torch

from . import _C
from .errors import ModelFileError

METADATA_KEYS = ("format_version", "ops_version", "mace_deploy_version", "model_class", "dtype", "head", "heads",
                 "r_max", "atomic_numbers", "num_interactions", "halo_feature_sizes", "e0s", "source_file",
                 "source_sha256", "mace_torch_version", "graph_inputs", "graph_input_defaults", "graph_input_bounds",
                 "members", "feature_irreps", "descriptor_columns")
# Absent from artifacts of older format versions: no per-structure inputs (3), one model without node
# features (4).
OPTIONAL_DEFAULTS = {"graph_inputs": [], "graph_input_defaults": [], "graph_input_bounds": [], "members": [],
                     "feature_irreps": [], "descriptor_columns": []}


def load_runtime_model(path: str, device: str = "cpu") -> "_C.Model":
    """The C++ runtime's model; a missing, corrupt or incompatible file raises ModelFileError."""
    try:
        return _C.Model(str(path), device)
    except ValueError as e:
        raise ModelFileError(str(e)) from None


def read_metadata(path: str) -> Dict[str, Any]:
    load_runtime_model(path)
    module = torch.jit.load(str(path), map_location="cpu")
    return {key: getattr(module, key) if hasattr(module, key) else OPTIONAL_DEFAULTS[key] for key in METADATA_KEYS}
