#include "runtime/checksum.h"

#include <array>
#include <string>

namespace mace_deploy {
namespace {

std::array<uint32_t, 256> crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

uint32_t crc32(uint32_t crc, const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = crc_table();
  const auto* bytes = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

uint32_t add_tensor(uint32_t crc, const std::string& name, const at::Tensor& tensor) {
  crc = crc32(crc, name.data(), name.size());
  const at::Tensor bytes = tensor.detach().to(at::kCPU).contiguous();
  return crc32(crc, bytes.data_ptr(), bytes.nbytes());
}

}  // namespace

int64_t weights_crc32(const torch::jit::Module& module) {
  uint32_t crc = 0;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) crc = add_tensor(crc, p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) crc = add_tensor(crc, b.name, b.value);
  return crc;
}

}  // namespace mace_deploy
