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
  double getEnergyUncertainty() const override;
  std::vector<double> getForceUncertainty() const override;
  std::vector<std::vector<double>> getDescriptors(OpenMM::ContextImpl& context) override;

 private:
  mace_deploy::Graph buildGraph(OpenMM::ContextImpl& context) const;
  void storeUncertainty(const mace_deploy::Result& result);
  void requireUncertainty() const;

  std::optional<mace_deploy::Model> model;
  std::string modelPath;
  torch::Tensor species;     // [n] int64, model order
  std::vector<int> atoms;    // particle index of each model atom
  bool periodic = false;
  std::map<std::string, double> graphInputs;  // the force's total charge / spin multiplicity, if set
  double halBias = 0.0;
  // A committee's spread at the last evaluation with forces (kJ/mol, kJ/mol/nm per atom); empty before.
  double energyUncertainty = 0.0;
  std::vector<double> forceUncertainty;
};

}  // namespace MACEPlugin
