// Checksum of an artifact's weights, written by `mace-deploy compile` (convert/compile.py) and
// checked at load: torch's zip reader checks no CRC, so changed bytes inside a tensor would load
// silently and give wrong numbers.
#pragma once

#include <torch/script.h>

#include <cstdint>

namespace mace_deploy {

// CRC-32 (zlib's polynomial and conventions, as Python's zlib.crc32) of each parameter's and
// buffer's name and bytes, in the module's order (recursive), continued from one to the next.
int64_t weights_crc32(const torch::jit::Module& module);

}  // namespace mace_deploy
