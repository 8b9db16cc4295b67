"""Run a compiled artifact in OpenMM: a periodic TIP3P water box, first entirely with MACE, then
ML/MM with three MACE waters in the TIP3P solvent. Run after
`mace-deploy compile examples/small_random.model -o small.mace.pt` (random weights: the numbers
only show that it runs)."""

import sys

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

from mace_deploy.openmm import create_mixed_system, mace_force_from_topology

model = sys.argv[1] if len(sys.argv) > 1 else "small.mace.pt"
force_field = app.ForceField("tip3p.xml")
modeller = app.Modeller(app.Topology(), [])
modeller.addSolvent(force_field, model="tip3p", boxSize=openmm.Vec3(1.4, 1.4, 1.4) * unit.nanometer)
topology, positions = modeller.topology, modeller.positions

# 1. Everything with MACE: a System with the particles and the box, and one MACEForce.
system = openmm.System()
for atom in topology.atoms():
    system.addParticle(atom.element.mass)
system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
system.addForce(mace_force_from_topology(model, topology))  # periodic, since the topology has a box
integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtosecond)
simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"))
simulation.context.setPositions(positions)
simulation.step(10)
state = simulation.context.getState(getEnergy=True)
print(f"MACE water box ({topology.getNumAtoms()} atoms): E = {state.getPotentialEnergy()}")

# 2. ML/MM: water 0 and its two nearest neighbours with MACE, the rest with TIP3P (mechanical embedding).
mm_system = force_field.createSystem(topology, nonbondedMethod=app.PME, nonbondedCutoff=0.6 * unit.nanometer)
xyz = np.asarray(positions.value_in_unit(unit.nanometer))
oxygens = [next(residue.atoms()).index for residue in topology.residues()]
d = xyz[oxygens] - xyz[oxygens[0]]
d -= 1.4 * np.round(d / 1.4)  # minimum image in the 1.4 nm cube
ml_atoms = [oxygens[k] + j for k in np.argsort(np.linalg.norm(d, axis=1))[:3] for j in range(3)]
mixed = create_mixed_system(topology, mm_system, ml_atoms, model)
integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtosecond)
simulation = app.Simulation(topology, mixed, integrator, openmm.Platform.getPlatformByName("CPU"))
simulation.context.setPositions(positions)
simulation.step(10)
print(f"ML/MM ({len(ml_atoms)} MACE atoms): E = {simulation.context.getState(getEnergy=True).getPotentialEnergy()}")
