// Creates MACEForce kernels for every platform that is a ReferencePlatform (Reference and CPU).
#pragma once

#include "openmm/KernelFactory.h"

namespace MACEPlugin {

class ReferenceMACEKernelFactory : public OpenMM::KernelFactory {
 public:
  OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                       OpenMM::ContextImpl& context) const override;
};

}  // namespace MACEPlugin
