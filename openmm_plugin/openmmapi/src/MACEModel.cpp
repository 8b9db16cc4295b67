#include "internal/MACEModel.h"

#include <algorithm>

#include "openmm/OpenMMException.h"

namespace MACEPlugin {
namespace {

std::string elementName(int64_t z) {
  static const char* const kSymbols[] = {
      "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",  "Cl", "Ar",
      "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr",
      "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe",
      "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf",
      "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
      "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs",
      "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};
  if (z >= 1 && z <= 118) return kSymbols[z - 1];
  return "Z=" + std::to_string(z);
}

}  // namespace

mace_deploy::Model loadModel(const std::string& path) {
  try {
    return mace_deploy::Model::load(path, "cpu");
  } catch (const std::exception& e) {
    throw OpenMM::OpenMMException(std::string("MACEForce: ") + e.what());
  }
}

std::vector<int64_t> speciesIndices(const mace_deploy::Metadata& metadata, const std::vector<int>& atomicNumbers,
                                    const std::vector<int>& atoms, const std::string& path) {
  const auto& known = metadata.atomic_numbers;
  std::vector<int64_t> species;
  for (size_t k = 0; k < atomicNumbers.size(); k++) {
    const auto found = std::find(known.begin(), known.end(), atomicNumbers[k]);
    if (found == known.end()) {
      std::string names;
      for (int64_t z : known) names += (names.empty() ? "" : ", ") + elementName(z);
      const int particle = atoms.empty() ? static_cast<int>(k) : atoms[k];
      throw OpenMM::OpenMMException("MACEForce: element " + elementName(atomicNumbers[k]) + " of particle " +
                                    std::to_string(particle) + " is not in the model '" + path + "', which knows " +
                                    names);
    }
    species.push_back(found - known.begin());
  }
  return species;
}

}  // namespace MACEPlugin
