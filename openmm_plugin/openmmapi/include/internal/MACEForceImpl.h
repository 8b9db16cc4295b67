// The per-Context implementation of MACEForce: checks the particle indices against the System
// and forwards to the platform's CalcMACEForceKernel.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "MACEForce.h"
#include "openmm/Kernel.h"
#include "openmm/internal/ForceImpl.h"

namespace MACEPlugin {

class MACEForceImpl : public OpenMM::ForceImpl {
 public:
  explicit MACEForceImpl(const MACEForce& owner) : owner(owner) {}
  void initialize(OpenMM::ContextImpl& context) override;
  const MACEForce& getOwner() const override { return owner; }
  void updateContextState(OpenMM::ContextImpl&, bool&) override {}
  double calcForcesAndEnergy(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy,
                             int groups) override;
  std::map<std::string, double> getDefaultParameters() override { return {}; }
  std::vector<std::string> getKernelNames() override;
  class CalcMACEForceKernel& getKernel() const;

 private:
  const MACEForce& owner;
  mutable OpenMM::Kernel kernel;
};

}  // namespace MACEPlugin
