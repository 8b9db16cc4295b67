// What MACEForce and its kernels share about the artifact: loading it with OpenMM errors, and
// mapping elements to the model's species indices.
#pragma once

#include <string>
#include <vector>

#include "runtime/model.h"

namespace MACEPlugin {

// mace_deploy::Model::load with its errors (missing, corrupt, incompatible file) as OpenMMException.
mace_deploy::Model loadModel(const std::string& path);

// Species index (model order) of each atomic number; an element the model does not know is an
// OpenMMException naming it, the particle, and the model's elements.
std::vector<int64_t> speciesIndices(const mace_deploy::Metadata& metadata, const std::vector<int>& atomicNumbers,
                                    const std::vector<int>& atoms, const std::string& path);

}  // namespace MACEPlugin
