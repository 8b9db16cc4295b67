"""OpenMM integration: the native `MACEForce` plugin and ML/MM systems with mechanical embedding.

Importing this module loads the plugin's kernel library (Reference and CPU platforms) from
mace_deploy/openmm_plugins, so no OPENMM_PLUGIN_DIR is needed; a library that fails to load
raises ImportError with OpenMM's reason.
"""

import copy
import os
import xml.etree.ElementTree as ET
from typing import Iterable, Optional, Sequence

import openmm
import openmm.app

PLUGIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openmm_plugins")


def _load_kernels(directory: str = PLUGIN_DIR) -> None:
    """Registers the kernels with OpenMM's platforms; getPluginLoadFailures() then lists this load's
    failures only (OpenMM keeps those of the last directory loaded)."""
    loaded = openmm.Platform.loadPluginsFromDirectory(directory)
    failures = openmm.Platform.getPluginLoadFailures()
    if failures or not loaded:
        reason = "; ".join(failures) if failures else "no library found there"
        raise ImportError(f"mace_deploy.openmm: cannot load the MACEForce kernels from {directory}: {reason}")


_load_kernels()

from .mace_openmm import MACEForce  # noqa: E402  (after the kernels, so a Context can use it at once)

__all__ = ["MACEForce", "mace_force_from_topology", "create_mixed_system"]


def _elements(topology: openmm.app.Topology, atoms: Sequence[int]) -> list:
    topology_atoms = list(topology.atoms())
    numbers = []
    for index in atoms:
        if not 0 <= index < len(topology_atoms):
            raise openmm.OpenMMException(
                f"MACEForce: atom index {index} is out of range for a topology of {len(topology_atoms)} atoms")
        element = topology_atoms[index].element
        if element is None:
            raise openmm.OpenMMException(
                f"MACEForce: atom {index} ({topology_atoms[index].name}) of the topology has no element")
        numbers.append(element.atomic_number)
    return numbers


def mace_force_from_topology(model_path, topology: openmm.app.Topology, atoms: Optional[Iterable[int]] = None,
                             precision: str = "auto") -> MACEForce:
    """A MACEForce on `atoms` of `topology` (all if None) with their elements; periodic when the
    topology has box vectors."""
    subset = None if atoms is None else [int(i) for i in atoms]
    numbers = _elements(topology, range(topology.getNumAtoms()) if subset is None else subset)
    force = MACEForce(model_path, numbers, subset)
    force.setUsesPeriodicBoundaryConditions(topology.getPeriodicBoxVectors() is not None)
    force.setPrecision(precision)
    return force


# Forces whose terms list their particles in XML children Bonds/Angles/Torsions (p1.., or a1.. b1..
# for CMAP): a term with all particles in the ML region is the ML model's business.
_BONDED = ("HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce", "RBTorsionForce",
           "CMAPTorsionForce", "CustomBondForce", "CustomAngleForce", "CustomTorsionForce")
_NONBONDED = ("NonbondedForce", "CustomNonbondedForce")
# Forces with no particle-particle terms, kept as they are.
_UNTOUCHED = ("CMMotionRemover", "MonteCarloBarostat", "MonteCarloAnisotropicBarostat",
              "MonteCarloFlexibleBarostat", "MonteCarloMembraneBarostat", "AndersenThermostat",
              "CustomExternalForce")


def _bonded_terms(system: openmm.System, ml: set, keep_ml_terms: bool) -> openmm.System:
    """A copy of `system` whose bonded forces keep only the terms inside the ML region
    (keep_ml_terms) or only those that are not."""
    root = ET.fromstring(openmm.XmlSerializer.serialize(system))
    for group in root.findall("./Forces/Force/Bonds") + root.findall("./Forces/Force/Angles") + \
            root.findall("./Forces/Force/Torsions"):
        for term in list(group):
            particles = [int(v) for k, v in term.attrib.items() if len(k) == 2 and k[0] in "pab" and k[1].isdigit()]
            if all(p in ml for p in particles) != keep_ml_terms:
                group.remove(term)
    return openmm.XmlSerializer.deserialize(ET.tostring(root, encoding="unicode"))


def _exclude_ml_pairs(force: openmm.Force, ml_atoms: Sequence[int]) -> None:
    """No MM nonbonded interaction between two ML atoms (the model has them)."""
    if isinstance(force, openmm.NonbondedForce):
        for a, i in enumerate(ml_atoms):
            for j in ml_atoms[:a]:
                force.addException(i, j, 0.0, 1.0, 0.0, True)
    else:
        excluded = {tuple(sorted(force.getExclusionParticles(k))) for k in range(force.getNumExclusions())}
        for a, i in enumerate(ml_atoms):
            for j in ml_atoms[:a]:
                if tuple(sorted((i, j))) not in excluded:
                    force.addExclusion(i, j)


def create_mixed_system(topology: openmm.app.Topology, mm_system: openmm.System, ml_atoms: Iterable[int],
                        model_path, interpolate: bool = False, remove_constraints: bool = True,
                        precision: str = "auto") -> openmm.System:
    """ML/MM with mechanical embedding (as openmm-ml's createMixedSystem): a copy of `mm_system`
    without the MM bonded terms and nonbonded interactions inside the ML region (and, with
    remove_constraints, the constraints inside it), plus a MACEForce on `ml_atoms`. ML-MM
    interactions stay with the MM force field.

    interpolate=True adds the global parameter `lambda_interpolate` (default 1): the energy is
    lambda * E_mixed + (1 - lambda) * E_MM, so 0 gives the pure MM system and 1 the ML/MM one.
    """
    ml_atoms = [int(i) for i in ml_atoms]
    ml = set(ml_atoms)
    if len(ml) != len(ml_atoms):
        raise openmm.OpenMMException("create_mixed_system: ml_atoms lists an atom twice")
    if topology.getNumAtoms() != mm_system.getNumParticles():
        raise openmm.OpenMMException(
            f"create_mixed_system: the topology has {topology.getNumAtoms()} atoms but the System "
            f"{mm_system.getNumParticles()} particles")
    for force in mm_system.getForces():
        name = type(force).__name__
        if name not in _BONDED + _NONBONDED + _UNTOUCHED:
            raise openmm.OpenMMException(
                f"not supported: create_mixed_system cannot split a {name} between the ML and MM regions")
    ml_force = mace_force_from_topology(model_path, topology, ml_atoms, precision)
    ml_force.setUsesPeriodicBoundaryConditions(mm_system.usesPeriodicBoundaryConditions())

    system = _bonded_terms(mm_system, ml, keep_ml_terms=False)
    for force in system.getForces():
        if isinstance(force, (openmm.NonbondedForce, openmm.CustomNonbondedForce)):
            _exclude_ml_pairs(force, ml_atoms)
    if remove_constraints:
        for k in reversed(range(system.getNumConstraints())):
            i, j, _ = system.getConstraintParameters(k)
            if i in ml and j in ml:
                system.removeConstraint(k)

    if not interpolate:
        system.addForce(ml_force)
        return system

    # E(lambda) = E_bonded_outside + lambda (E_ML + E_nb_mixed) + (1 - lambda) (E_bonded_inside + E_nb_MM).
    # The two weighted sums are separate CustomCVForces: their nonbonded forces have different
    # exclusions, which platforms refuse within one (inner) Context.
    ml_side = openmm.CustomCVForce("")
    mm_side = openmm.CustomCVForce("")
    ml_side.addCollectiveVariable("ml", ml_force)
    inside = _bonded_terms(mm_system, ml, keep_ml_terms=True)
    for k, force in enumerate(inside.getForces()):
        if type(force).__name__ in _BONDED:
            mm_side.addCollectiveVariable(f"bonded{k}", copy.deepcopy(force))
    for k in reversed(range(system.getNumForces())):
        if isinstance(system.getForce(k), (openmm.NonbondedForce, openmm.CustomNonbondedForce)):
            ml_side.addCollectiveVariable(f"nonbonded{k}", copy.deepcopy(system.getForce(k)))
            mm_side.addCollectiveVariable(f"nonbonded{k}", copy.deepcopy(mm_system.getForce(k)))
            system.removeForce(k)
    for side, weight in ((ml_side, "lambda_interpolate"), (mm_side, "(1-lambda_interpolate)")):
        names = [side.getCollectiveVariableName(i) for i in range(side.getNumCollectiveVariables())]
        side.setEnergyFunction(f"{weight}*({'+'.join(names) or '0'})")
        side.addGlobalParameter("lambda_interpolate", 1.0)
        system.addForce(side)
    return system
