// MACEForce on the Reference and CPU platforms (both keep double-precision positions and forces
// in ReferencePlatform::PlatformData): the project's own neighbour list, then the C++ runtime.
#pragma once

#include <map>
#include <optional>

#include "MACEKernels.h"
#include "runtime/model.h"

namespace MACEPlugin {

class ReferenceCalcMACEForceKernel : public CalcMACEForceKernel {
 public:
  ReferenceCalcMACEForceKernel(std::string name, const OpenMM::Platform& platform)
      : CalcMACEForceKernel(name, platform) {}
  void initialize(const OpenMM::System& system, const MACEForce& force) override;
  double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) override;

 private:
  mace_deploy::Graph buildGraph(OpenMM::ContextImpl& context) const;

  std::optional<mace_deploy::Model> model;
  std::string modelPath;
  torch::Tensor species;     // [n] int64, model order
  std::vector<int> atoms;    // particle index of each model atom
  bool periodic = false;
  std::map<std::string, double> graphInputs;  // the force's total charge / spin multiplicity, if set
};

}  // namespace MACEPlugin
