"""ASE calculator running a mace-deploy artifact through the C++ runtime."""

from typing import Optional

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from . import _C
from .errors import ModelFileError
from .graph import atoms_to_graph


class MACEDeployCalculator(Calculator):
    """Energy (eV), per-atom energies, forces (eV/A) and stress (eV/A^3) from an artifact made by
    `mace-deploy compile`, for molecules, periodic crystals of any cell shape or size, and slabs.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model_path: str, device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        try:
            self.model = _C.Model(str(model_path), device)
        except ValueError as e:
            raise ModelFileError(str(e)) from None
        self.model_path = str(model_path)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        graph = atoms_to_graph(self.atoms, self.model.r_max, self.model.atomic_numbers)
        out = self.model.compute(graph.species, graph.edge_index, graph.edge_vectors, len(self.atoms))
        energy = float(out["energy"])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out["atom_energies"].double().cpu().numpy(),
            "forces": out["forces"].double().cpu().numpy(),
        }
        volume = abs(self.atoms.cell.volume)
        if volume > 0:
            # sigma = (1/V) dE/d(strain) = -W / V
            stress = -out["virial"].double().cpu().numpy() / volume
            self.results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (stress + stress.T))
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a cell with non-zero volume")
