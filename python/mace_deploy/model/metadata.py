"""The metadata attributes of an artifact's top-level module (a MACEModel or a Committee), read by
the C++ runtime (csrc/runtime/metadata.h) and `mace-deploy info`; set by convert/compile.py."""

from typing import List

METADATA = {
    "format_version": int,
    "weights_crc32": int,  # set on the scripted module (csrc/runtime/checksum.h)
    "ops_version": int,
    "mace_deploy_version": str,
    "r_max": float,
    "atomic_numbers": List[int],
    "num_interactions": int,  # a committee: the most of any member
    "halo_feature_sizes": List[int],  # numbers per node each halo exchange sends, in the order of the exchanges
    "dtype": str,
    "head": str,
    "heads": List[str],
    "e0s": List[float],
    "model_class": str,
    "source_file": str,
    "source_sha256": str,
    "mace_torch_version": str,
    "graph_inputs": List[str],  # names of the per-structure inputs (mace-torch's data keys), in order
    "graph_input_defaults": List[float],  # their values where a host gives none (mace-torch's defaults)
    "graph_input_bounds": List[float],  # lowest and highest embedded value of each
    "members": List[str],  # a committee's member model files; empty for one model
    "feature_irreps": List[str],  # e3nn irreps of each layer's node features (energies_and_features)
    "feature_irrep_dims": List[List[int]],  # the dimension of each of those irreps
    "descriptor_columns": List[int],  # the columns of mace-torch's invariant descriptors (descriptors.py)
}


def with_metadata(cls):
    """Declares the metadata attributes' types on a module class, as TorchScript needs for the ones
    that may be empty lists."""
    cls.__annotations__ = {**METADATA, **cls.__dict__.get("__annotations__", {})}
    return cls
