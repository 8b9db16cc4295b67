"""Evaluate a compiled artifact with ASE: energy, forces and stress of a small Cu crystal and a
water molecule. Run after `mace-deploy compile examples/small_random.model -o small.mace.pt`."""

import sys

from ase.build import bulk, molecule

from mace_deploy.ase import MACEDeployCalculator

calc = MACEDeployCalculator(sys.argv[1] if len(sys.argv) > 1 else "small.mace.pt")

crystal = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
crystal.rattle(0.05, seed=1)
crystal.calc = calc
print(f"Cu32 crystal: E = {crystal.get_potential_energy():.6f} eV, "
      f"max |F| = {abs(crystal.get_forces()).max():.4f} eV/A, stress[xx] = {crystal.get_stress()[0]:.6f} eV/A^3")

water = molecule("H2O")
water.calc = calc
print(f"H2O molecule: E = {water.get_potential_energy():.6f} eV, per-atom {water.get_potential_energies().round(4)}")
