#include "MACEForceProxy.h"

#include <memory>
#include <typeinfo>

#include "MACEForce.h"
#include "internal/Sha256.h"
#include "openmm/OpenMMException.h"
#include "openmm/serialization/SerializationNode.h"

namespace MACEPlugin {

using OpenMM::OpenMMException;
using OpenMM::SerializationNode;

void MACEForceProxy::serialize(const void* object, SerializationNode& node) const {
  const MACEForce& force = *static_cast<const MACEForce*>(object);
  node.setIntProperty("version", 3);  // 2: per-structure inputs (GraphInputs); 3: halBias
  node.setStringProperty("modelPath", force.getModelPath());
  node.setStringProperty("modelSha256", force.getModelSha256());
  node.setStringProperty("precision", force.getPrecision());
  node.setBoolProperty("usesPeriodic", force.usesPeriodicBoundaryConditions());
  node.setIntProperty("forceGroup", force.getForceGroup());
  node.setStringProperty("name", force.getName());
  node.setDoubleProperty("halBias", force.getHalBias());
  SerializationNode& elements = node.createChildNode("AtomicNumbers");
  for (int z : force.getAtomicNumbers()) elements.createChildNode("Element").setIntProperty("z", z);
  SerializationNode& atoms = node.createChildNode("Atoms");
  for (int index : force.getAtoms()) atoms.createChildNode("Atom").setIntProperty("index", index);
  SerializationNode& inputs = node.createChildNode("GraphInputs");
  for (const auto& [name, value] : force.getGraphInputs()) {
    inputs.createChildNode("Input").setStringProperty("name", name).setDoubleProperty("value", value);
  }
}

void* MACEForceProxy::deserialize(const SerializationNode& node) const {
  const int version = node.getIntProperty("version");
  if (version < 1 || version > 3) {
    throw OpenMMException("MACEForce: unsupported serialization version " +
                          std::to_string(node.getIntProperty("version")));
  }
  const std::string path = node.getStringProperty("modelPath");
  const std::string expected = node.getStringProperty("modelSha256");
  const std::string found = sha256File(path);
  if (found != expected) {
    throw OpenMMException("MACEForce: the model file '" + path + "' is not the one this force was saved with " +
                          "(SHA-256 " + found + ", expected " + expected +
                          "); restore that file or create a new MACEForce");
  }
  std::vector<int> atomicNumbers, atoms;
  for (const auto& child : node.getChildNode("AtomicNumbers").getChildren()) atomicNumbers.push_back(child.getIntProperty("z"));
  for (const auto& child : node.getChildNode("Atoms").getChildren()) atoms.push_back(child.getIntProperty("index"));
  auto force = std::make_unique<MACEForce>(path, atomicNumbers, atoms);
  force->setPrecision(node.getStringProperty("precision"));
  force->setUsesPeriodicBoundaryConditions(node.getBoolProperty("usesPeriodic"));
  force->setForceGroup(node.getIntProperty("forceGroup"));
  force->setName(node.getStringProperty("name"));
  if (version >= 2) {
    for (const auto& child : node.getChildNode("GraphInputs").getChildren()) {
      const std::string name = child.getStringProperty("name");
      const double value = child.getDoubleProperty("value");
      if (name == "total_charge") {
        force->setCharge(value);
      } else if (name == "total_spin") {
        force->setSpinMultiplicity(value);
      } else {
        throw OpenMMException("MACEForce: unknown per-structure input '" + name + "' in the serialized force");
      }
    }
  }
  if (version >= 3) force->setHalBias(node.getDoubleProperty("halBias"));
  return force.release();
}

}  // namespace MACEPlugin

// Registers the proxy when the library is loaded, so XmlSerializer knows MACEForce.
extern "C" void __attribute__((constructor)) registerMACESerializationProxies() {
  OpenMM::SerializationProxy::registerProxy(typeid(MACEPlugin::MACEForce), new MACEPlugin::MACEForceProxy());
}
