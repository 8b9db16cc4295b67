// Chemical element symbols <-> atomic numbers, and standard atomic masses, for hosts that name
// elements (LAMMPS pair_coeff).
#pragma once

#include <cstdint>
#include <string>

namespace mace_deploy {

// Atomic number of `symbol` ("Cu", case-sensitive as in the periodic table), 0 if none.
int64_t atomic_number(const std::string& symbol);

// Standard atomic weight of element `z` in g/mol (1..118), 0 outside that range.
double standard_mass(int64_t z);

// Symbol of atomic number `z` (1..118), "Z=<z>" outside that range.
std::string element_symbol(int64_t z);

}  // namespace mace_deploy
