"""ASE calculator running a mace-deploy artifact through the C++ runtime."""

from typing import Dict, Optional

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from . import _C
from .errors import ModelFileError, StructureError
from .graph import atoms_to_graph


# atoms.info keys of the per-structure inputs, as mace-torch's MACECalculator reads them: the total
# charge (e) and the spin multiplicity 2S + 1.
INFO_KEYS = {"total_charge": "charge", "total_spin": "spin"}


class MACEDeployCalculator(Calculator):
    """Energy (eV), per-atom energies, forces (eV/A) and stress (eV/A^3) from an artifact made by
    `mace-deploy compile`, for molecules, periodic crystals of any cell shape or size, and slabs.
    Models with embeddings of total charge and spin read atoms.info["charge"] and
    atoms.info["spin"] (multiplicity), 0 and 1 where absent, as mace-torch's calculator.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model_path: str, device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        try:
            self.model = _C.Model(str(model_path), device)
        except ValueError as e:
            raise ModelFileError(str(e)) from None
        self.model_path = str(model_path)

    def graph_inputs(self, atoms) -> Dict[str, float]:
        """The model's per-structure inputs that `atoms.info` gives (the model's defaults for the rest)."""
        return {name: float(atoms.info[INFO_KEYS[name]]) for name in self.model.graph_inputs
                if INFO_KEYS.get(name) in atoms.info}

    def check_state(self, atoms, tol=1e-15):
        """ASE's changes, and a changed total charge or spin for a model that takes them."""
        changes = super().check_state(atoms, tol)
        if self.atoms is not None and self.graph_inputs(atoms) != self.graph_inputs(self.atoms):
            changes.append("info")
        return changes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        graph_inputs = self.graph_inputs(self.atoms)
        try:
            self.model.graph_input_values(graph_inputs)
        except ValueError as e:
            raise StructureError(str(e)) from None
        graph = atoms_to_graph(self.atoms, self.model.r_max, self.model.atomic_numbers)
        out = self.model.compute(graph.species, graph.edge_index, graph.edge_vectors, len(self.atoms),
                                 graph_inputs=graph_inputs)
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
