// Input checks every op shares.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <initializer_list>

namespace mace_deploy {

// An op takes all its tensors on one device, the one of `first`.
inline void check_one_device(const char* op, const at::Tensor& first,
                             std::initializer_list<std::reference_wrapper<const at::Tensor>> others) {
  for (const at::Tensor& t : others) {
    TORCH_CHECK(t.device() == first.device(), op, ": all inputs must be on one device (", first.device(), " and ",
                t.device(), ")");
  }
}

}  // namespace mace_deploy
