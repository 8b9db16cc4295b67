"""ASE calculator running a mace-deploy artifact through the C++ runtime."""

from typing import Dict, Optional

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from . import _C
from .descriptors import descriptor_columns
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

    A committee artifact (`mace-deploy compile a.model b.model ...`) gives the members' mean and,
    as mace-torch's calculator with several models, energy_comm [M], forces_comm [M, N, 3],
    stress_comm [M, 3, 3] (each member's), energy_var, forces_var [N, 3], stress_var [3, 3] (their
    variance over the members), and forces_std_atom [N] (the norm of each atom's force standard
    deviation). hal_tau adds hyperactive learning's bias -hal_tau * sigma_E (sigma_E the members'
    energy standard deviation) to energy, forces and stress (not to the per-atom energies).
    member=m reports member m's energy, forces and stress alone (a committee's `verify`).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    committee_properties = ["energy_comm", "energy_var", "forces_comm", "forces_var", "stress_comm", "stress_var",
                            "forces_std_atom"]

    def __init__(self, model_path: str, device: str = "cpu", hal_tau: float = 0.0, member: Optional[int] = None,
                 **kwargs):
        super().__init__(**kwargs)
        try:
            self.model = _C.Model(str(model_path), device)
        except ValueError as e:
            raise ModelFileError(str(e)) from None
        self.model_path = str(model_path)
        self.num_models = max(1, len(self.model.members))
        if self.num_models > 1:
            self.implemented_properties = self.implemented_properties + self.committee_properties
        elif hal_tau != 0.0 or member is not None:
            raise ValueError("hal_tau and member need a committee artifact (mace-deploy compile a.model b.model ...)")
        if member is not None and not 0 <= member < self.num_models:
            raise ValueError(f"member must be 0 to {self.num_models - 1}, not {member}")
        self.hal_tau = float(hal_tau)
        self.member = member

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

    def _graph(self, atoms):
        graph_inputs = self.graph_inputs(atoms)
        try:
            self.model.graph_input_values(graph_inputs)
        except ValueError as e:
            raise StructureError(str(e)) from None
        return atoms_to_graph(atoms, self.model.r_max, self.model.atomic_numbers), graph_inputs

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        graph, graph_inputs = self._graph(self.atoms)
        committee = self.num_models > 1
        out = self.model.compute(graph.species, graph.edge_index, graph.edge_vectors, len(self.atoms),
                                 graph_inputs=graph_inputs, member_results=committee, hal_tau=self.hal_tau)
        volume = abs(self.atoms.cell.volume)

        def stress(virial):  # sigma = (1/V) dE/d(strain) = -W / V, symmetric
            s = -virial / volume
            return 0.5 * (s + np.swapaxes(s, -1, -2))

        if self.member is not None:
            energy = float(out["member_energies"][self.member])
            forces, virial = out["member_forces"][self.member], out["member_virials"][self.member]
            self.results = {}
        else:
            energy = float(out["energy"]) + (float(out["bias_energy"]) if committee else 0.0)
            forces, virial = out["forces"], out["virial"]
            self.results = {"energies": out["atom_energies"].double().cpu().numpy()}
        self.results.update({"energy": energy, "free_energy": energy, "forces": forces.double().cpu().numpy()})
        if volume > 0:
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress(virial.double().cpu().numpy()))
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a cell with non-zero volume")
        if committee and self.member is None:
            member_forces = out["member_forces"].double().cpu().numpy()
            forces_var = np.var(member_forces, axis=0)
            self.results.update({
                "energy_comm": out["member_energies"].numpy(),
                "energy_var": float(np.var(out["member_energies"].numpy())),
                "forces_comm": member_forces,
                "forces_var": forces_var,
                "forces_std_atom": np.sqrt(forces_var.sum(axis=1)),
            })
            if volume > 0:
                member_stress = stress(out["member_virials"].double().cpu().numpy())
                self.results.update({"stress_comm": member_stress, "stress_var": np.var(member_stress, axis=0)})

    def get_descriptors(self, atoms=None, invariants_only: bool = True, num_layers: int = -1):
        """The node features of mace-torch's `get_descriptors` (same signature): [N, features] of the
        first num_layers layers (-1: all), only their invariants unless invariants_only is False; a
        list of one such array per member for a committee."""
        if atoms is None:
            atoms = self.atoms
        if atoms is None:
            raise ValueError("atoms not set")
        if not self.model.feature_irreps:
            raise ModelFileError(f"not supported: '{self.model_path}' cannot return node features (made by an "
                                 "older mace-deploy, or a committee whose members' features differ); recompile it")
        columns = descriptor_columns(self.model.feature_irreps, invariants_only, num_layers)
        graph, graph_inputs = self._graph(atoms)
        out = self.model.compute(graph.species, graph.edge_index, graph.edge_vectors, len(atoms), forces=False,
                                 virial=False, graph_inputs=graph_inputs, node_features=True)
        descriptors = [member[:, columns].cpu().numpy() for member in out["node_features"]]
        return descriptors[0] if self.num_models == 1 else descriptors
