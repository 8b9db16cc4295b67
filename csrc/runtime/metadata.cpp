#include "runtime/metadata.h"

#include <stdexcept>

#include "ops/ops.h"
#include "runtime/checksum.h"

namespace mace_deploy {
namespace {

c10::IValue required_attr(const torch::jit::Module& module, const std::string& name, const std::string& path) {
  if (!module.hasattr(name)) {
    throw std::runtime_error("'" + path + "' is a TorchScript file but not a mace-deploy artifact (no '" + name +
                             "' attribute); create one with `mace-deploy compile MODEL.model -o OUT.mace.pt`");
  }
  return module.attr(name);
}

}  // namespace

Metadata Metadata::read(const torch::jit::Module& module, const std::string& path) {
  Metadata m;
  m.format_version = required_attr(module, "format_version", path).toInt();
  m.mace_deploy_version = required_attr(module, "mace_deploy_version", path).toStringRef();
  if (m.format_version < kOldestFormatVersion || m.format_version > kFormatVersion) {
    throw std::runtime_error("'" + path + "' has artifact format version " + std::to_string(m.format_version) +
                             " (made by mace-deploy " + m.mace_deploy_version + "), but this mace-deploy reads versions " +
                             std::to_string(kOldestFormatVersion) + " to " + std::to_string(kFormatVersion) +
                             "; recompile it with `mace-deploy compile`");
  }
  m.ops_version = required_attr(module, "ops_version", path).toInt();
  if (m.ops_version != ops_library_version()) {
    throw std::runtime_error("'" + path + "' needs mace_deploy op library version " + std::to_string(m.ops_version) +
                             " but this build has version " + std::to_string(ops_library_version()) +
                             "; recompile it with `mace-deploy compile`");
  }
  if (required_attr(module, "weights_crc32", path).toInt() != weights_crc32(module)) {
    throw std::runtime_error("'" + path + "' is corrupt: its weights do not match the checksum written when it was " +
                             "compiled (the file was changed or damaged); compile it again with `mace-deploy compile`");
  }
  m.r_max = required_attr(module, "r_max", path).toDouble();
  m.atomic_numbers = required_attr(module, "atomic_numbers", path).toIntVector();
  m.num_interactions = required_attr(module, "num_interactions", path).toInt();
  m.halo_feature_sizes = required_attr(module, "halo_feature_sizes", path).toIntVector();
  m.dtype = required_attr(module, "dtype", path).toStringRef();
  m.head = required_attr(module, "head", path).toStringRef();
  if (m.format_version >= 4) {
    for (const auto& name : required_attr(module, "graph_inputs", path).toListRef()) {
      m.graph_inputs.push_back(name.toStringRef());
    }
    m.graph_input_defaults = required_attr(module, "graph_input_defaults", path).toDoubleVector();
    m.graph_input_bounds = required_attr(module, "graph_input_bounds", path).toDoubleVector();
    if (m.graph_input_defaults.size() != m.graph_inputs.size() ||
        m.graph_input_bounds.size() != 2 * m.graph_inputs.size()) {
      throw std::runtime_error("'" + path + "' is corrupt: inconsistent per-structure input metadata");
    }
  }
  if (m.format_version >= 5) {
    for (const auto& name : required_attr(module, "members", path).toListRef()) m.members.push_back(name.toStringRef());
    for (const auto& irreps : required_attr(module, "feature_irreps", path).toListRef()) {
      m.feature_irreps.push_back(irreps.toStringRef());
    }
    m.descriptor_columns = required_attr(module, "descriptor_columns", path).toIntVector();
  }
  if (m.dtype != "float64" && m.dtype != "float32") {
    throw std::runtime_error("'" + path + "' has unknown dtype '" + m.dtype + "'");
  }
  return m;
}

torch::ScalarType Metadata::scalar_type() const {
  return dtype == "float64" ? torch::kFloat64 : torch::kFloat32;
}

}  // namespace mace_deploy
