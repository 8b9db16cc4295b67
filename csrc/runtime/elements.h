// Chemical element symbols <-> atomic numbers, for hosts that name elements (LAMMPS pair_coeff).
#pragma once

#include <cstdint>
#include <string>

namespace mace_deploy {

// Atomic number of `symbol` ("Cu", case-sensitive as in the periodic table), 0 if none.
int64_t atomic_number(const std::string& symbol);

// Symbol of atomic number `z` (1..118), "Z=<z>" outside that range.
std::string element_symbol(int64_t z);

}  // namespace mace_deploy
