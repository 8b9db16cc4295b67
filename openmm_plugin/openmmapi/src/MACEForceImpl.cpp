#include "internal/MACEForceImpl.h"

#include "MACEKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"

namespace MACEPlugin {

using OpenMM::OpenMMException;

void MACEForceImpl::initialize(OpenMM::ContextImpl& context) {
  const OpenMM::System& system = context.getSystem();
  const int numParticles = system.getNumParticles();
  if (owner.getAtoms().empty() && static_cast<int>(owner.getAtomicNumbers().size()) != numParticles) {
    throw OpenMMException("MACEForce: it acts on all particles but has " +
                          std::to_string(owner.getAtomicNumbers().size()) + " atomic numbers for a System of " +
                          std::to_string(numParticles) + " particles");
  }
  for (int index : owner.getAtoms()) {
    if (index >= numParticles) {
      throw OpenMMException("MACEForce: atom index " + std::to_string(index) + " is out of range for a System of " +
                            std::to_string(numParticles) + " particles");
    }
  }
  kernel = context.getPlatform().createKernel(CalcMACEForceKernel::Name(), context);
  kernel.getAs<CalcMACEForceKernel>().initialize(system, owner);
}

double MACEForceImpl::calcForcesAndEnergy(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy,
                                          int groups) {
  if ((groups & (1 << owner.getForceGroup())) == 0) return 0.0;
  return kernel.getAs<CalcMACEForceKernel>().execute(context, includeForces, includeEnergy);
}

std::vector<std::string> MACEForceImpl::getKernelNames() { return {CalcMACEForceKernel::Name()}; }

CalcMACEForceKernel& MACEForceImpl::getKernel() const { return kernel.getAs<CalcMACEForceKernel>(); }

}  // namespace MACEPlugin
