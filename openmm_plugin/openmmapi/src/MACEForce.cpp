#include "MACEForce.h"

#include <set>

#include "MACEKernels.h"
#include "internal/MACEForceImpl.h"
#include "internal/MACEModel.h"
#include "internal/Sha256.h"
#include "openmm/OpenMMException.h"

namespace MACEPlugin {

using OpenMM::OpenMMException;

MACEForce::MACEForce(const std::string& modelPath, const std::vector<int>& atomicNumbers,
                     const std::vector<int>& atoms)
    : modelPath(modelPath), atomicNumbers(atomicNumbers), atoms(atoms) {
  if (atomicNumbers.empty()) {
    throw OpenMMException("MACEForce: no atomic numbers given; pass the element of every particle the model sees");
  }
  if (!atoms.empty() && atoms.size() != atomicNumbers.size()) {
    throw OpenMMException("MACEForce: " + std::to_string(atoms.size()) + " atoms but " +
                          std::to_string(atomicNumbers.size()) + " atomic numbers; give one element per atom");
  }
  std::set<int> seen;
  for (int index : atoms) {
    if (index < 0) throw OpenMMException("MACEForce: atom index " + std::to_string(index) + " is negative");
    if (!seen.insert(index).second) {
      throw OpenMMException("MACEForce: atom index " + std::to_string(index) + " is given twice");
    }
  }
  const auto model = loadModel(modelPath);  // validates the file; its kernels load their own copy
  speciesIndices(model.metadata(), atomicNumbers, atoms, modelPath);
  modelDtype = model.metadata().dtype;
  for (size_t i = 0; i < model.metadata().graph_inputs.size(); i++) {
    graphInputDefaults[model.metadata().graph_inputs[i]] = model.metadata().graph_input_defaults[i];
  }
  cutoff = model.metadata().r_max / 10.0;  // Angstrom -> nm
  numMembers = static_cast<int>(model.metadata().committee_size());
  modelSha256 = sha256File(modelPath);
}

void MACEForce::setPrecision(const std::string& value) {
  if (value != "auto" && value != "float64" && value != "float32") {
    throw OpenMMException("MACEForce: precision must be 'auto', 'float64' or 'float32', not '" + value + "'");
  }
  precision = value;
}

void MACEForce::setGraphInput(const std::string& name, double value) {
  auto given = graphInputs;
  given[name] = value;
  try {
    loadModel(modelPath).graph_input_values(given);
  } catch (const std::exception& e) {
    throw OpenMMException("MACEForce: '" + modelPath + "': " + e.what());
  }
  graphInputs = std::move(given);
}

double MACEForce::getGraphInput(const std::string& name) const {
  const auto set = graphInputs.find(name);
  if (set != graphInputs.end()) return set->second;
  const auto fallback = graphInputDefaults.find(name);
  if (fallback != graphInputDefaults.end()) return fallback->second;
  throw OpenMMException("MACEForce: the model '" + modelPath + "' takes no " + name + " input");
}

void MACEForce::setHalBias(double tau) {
  if (numMembers < 2 && tau != 0.0) {
    throw OpenMMException("MACEForce: '" + modelPath + "' is one model; the bias of hyperactive learning needs a " +
                          "committee artifact (mace-deploy compile a.model b.model ... -o committee.mace.pt)");
  }
  if (!(tau >= 0.0)) throw OpenMMException("MACEForce: the hyperactive-learning bias tau must be >= 0");
  halBias = tau;
}

double MACEForce::getEnergyUncertainty(OpenMM::Context& context) const {
  return dynamic_cast<const MACEForceImpl&>(getImplInContext(context)).getKernel().getEnergyUncertainty();
}

std::vector<double> MACEForce::getForceUncertainty(OpenMM::Context& context) const {
  return dynamic_cast<const MACEForceImpl&>(getImplInContext(context)).getKernel().getForceUncertainty();
}

std::vector<std::vector<double>> MACEForce::getDescriptors(OpenMM::Context& context) const {
  const auto& impl = dynamic_cast<const MACEForceImpl&>(getImplInContext(context));
  return impl.getKernel().getDescriptors(getContextImpl(context));
}

OpenMM::ForceImpl* MACEForce::createImpl() const { return new MACEForceImpl(*this); }

}  // namespace MACEPlugin
