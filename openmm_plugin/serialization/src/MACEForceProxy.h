// XML serialization of MACEForce: the model's path and SHA-256 (never its bytes), the elements,
// the atoms, and the settings.
#pragma once

#include "openmm/serialization/SerializationProxy.h"

namespace MACEPlugin {

class MACEForceProxy : public OpenMM::SerializationProxy {
 public:
  MACEForceProxy() : OpenMM::SerializationProxy("MACEForce") {}
  void serialize(const void* object, OpenMM::SerializationNode& node) const override;
  // Refuses a model file whose SHA-256 differs from the stored one.
  void* deserialize(const OpenMM::SerializationNode& node) const override;
};

}  // namespace MACEPlugin
