// The kernel interface of MACEForce; platforms register implementations (platforms/reference).
#pragma once

#include <string>
#include <vector>

#include "MACEForce.h"
#include "openmm/KernelImpl.h"
#include "openmm/System.h"
#include "openmm/internal/ContextImpl.h"

namespace MACEPlugin {

// Exact unit conversions at the boundary (SI 2019: e and N_A are exact).
constexpr double kKJPerMolPerEV = 1.602176634e-19 * 6.02214076e23 / 1000.0;  // 96.485332123...
constexpr double kAngstromPerNm = 10.0;

class CalcMACEForceKernel : public OpenMM::KernelImpl {
 public:
  static std::string Name() { return "CalcMACEForce"; }
  CalcMACEForceKernel(std::string name, const OpenMM::Platform& platform) : OpenMM::KernelImpl(name, platform) {}
  virtual void initialize(const OpenMM::System& system, const MACEForce& force) = 0;
  // Adds the forces (kJ/mol/nm) when includeForces; returns the energy in kJ/mol.
  virtual double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) = 0;
  // MACEForce::getEnergyUncertainty, getForceUncertainty and getDescriptors.
  virtual double getEnergyUncertainty() const = 0;
  virtual std::vector<double> getForceUncertainty() const = 0;
  virtual std::vector<std::vector<double>> getDescriptors(OpenMM::ContextImpl& context) = 0;
};

}  // namespace MACEPlugin
