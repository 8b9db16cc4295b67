"""`mace-deploy verify`: an artifact against the mace-torch model it came from."""

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
from ase import Atoms

from .artifact import read_metadata
from .ase import MACEDeployCalculator
from .errors import ModelFileError
from .structures import verification_structures

# Relative bounds: float64 artifacts reproduce mace-torch to round-off; float32 ones to 1e-4.
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


@dataclass
class Comparison:
    structure: str
    num_atoms: int
    energy_error: float  # |dE| / N, eV/atom
    force_error: float  # max |dF| / max(1, max |F|)
    stress_error: Optional[float]  # max |d sigma| / max(1e-3, max |sigma|), periodic only

    def worst(self) -> float:
        return max(self.energy_error, self.force_error, self.stress_error or 0.0)


def reference_calculator(model, head: str):
    """mace-torch's calculator of a loaded model and head, in float64, without its notices and warnings."""
    from mace.calculators import MACECalculator

    from .convert.source import model_heads

    head_kw = {"head": head} if len(model_heads(model)) > 1 else {}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MACECalculator(models=model, device="cpu", default_dtype="float64", **head_kw)


def _load_reference(model_path: str, meta: dict):
    """The mace-torch model of `model_path`, after checking that the artifact can come from it
    (same elements, the artifact's head among its heads)."""
    from .convert.source import load_mace_model, model_heads

    model = load_mace_model(model_path)  # clear errors for missing or unreadable files
    elements = [int(z) for z in model.atomic_numbers]
    if elements != list(meta["atomic_numbers"]):
        raise ModelFileError(f"'{model_path}' has elements {elements} but the artifact {list(meta['atomic_numbers'])}: "
                             "not the model it was compiled from")
    heads = model_heads(model)
    if meta["head"] not in heads:
        raise ModelFileError(f"'{model_path}' has no head '{meta['head']}' (its heads: {', '.join(heads)}): "
                             "not the model the artifact was compiled from")
    return model


def compare_calculators(ours, reference, structures: Dict[str, Atoms]) -> List[Comparison]:
    """Energy, forces and (periodic cells) stress of two calculators on each structure. mace-torch
    computes some constants in the default dtype: its float64 result is the reference."""
    import torch

    results = []
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for name, atoms in structures.items():
            ref_atoms = atoms.copy()
            atoms = atoms.copy()
            atoms.calc, ref_atoms.calc = ours, reference
            e, e_ref = atoms.get_potential_energy(), ref_atoms.get_potential_energy()
            f, f_ref = atoms.get_forces(), ref_atoms.get_forces()
            stress_error = None
            if atoms.pbc.all():
                s, s_ref = atoms.get_stress(), ref_atoms.get_stress()
                stress_error = float(np.abs(s - s_ref).max() / max(1e-3, np.abs(s_ref).max()))
            results.append(Comparison(name, len(atoms), abs(e - e_ref) / len(atoms),
                                      float(np.abs(f - f_ref).max() / max(1.0, np.abs(f_ref).max())), stress_error))
    finally:
        torch.set_default_dtype(previous)
    return results


def compare(artifact: str, reference_models: List[str], seed: int = 0) -> List[Comparison]:
    """Rows of each structure; a committee's members one after the other against their references."""
    meta = read_metadata(artifact)
    members = meta["members"]
    if len(reference_models) != max(1, len(members)):
        expected = f"its {len(members)} members' model files, in order" if members else "one model file"
        raise ModelFileError(f"{len(reference_models)} reference model(s) for '{artifact}', which needs {expected}")
    structures = verification_structures(meta["atomic_numbers"], meta["r_max"], seed)
    rows = []
    for index, reference_model in enumerate(reference_models):
        reference = reference_calculator(_load_reference(reference_model, meta), meta["head"])
        ours = MACEDeployCalculator(artifact, member=index if members else None)
        for row in compare_calculators(ours, reference, structures):
            if members:
                row.structure = f"member {index + 1}: {row.structure}"
            rows.append(row)
    return rows
