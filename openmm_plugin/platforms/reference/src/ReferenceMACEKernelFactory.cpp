// The OpenMM plugin entry points of the kernel library (called by Platform::loadPluginLibrary).
#include "ReferenceMACEKernelFactory.h"

#include "ReferenceMACEKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/reference/ReferencePlatform.h"

using namespace MACEPlugin;

extern "C" void registerPlatforms() {}

// The CPU platform derives from ReferencePlatform and keeps the reference positions and forces.
extern "C" void registerKernelFactories() {
  for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); i++) {
    OpenMM::Platform& platform = OpenMM::Platform::getPlatform(i);
    if (dynamic_cast<OpenMM::ReferencePlatform*>(&platform) != nullptr) {
      platform.registerKernelFactory(CalcMACEForceKernel::Name(), new ReferenceMACEKernelFactory());
    }
  }
}

OpenMM::KernelImpl* ReferenceMACEKernelFactory::createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                                                 OpenMM::ContextImpl&) const {
  if (name == CalcMACEForceKernel::Name()) return new ReferenceCalcMACEForceKernel(name, platform);
  throw OpenMM::OpenMMException("MACEForce: no kernel named '" + name + "'");
}
