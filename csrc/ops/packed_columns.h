// A matrix b [K, N] packed for the CPU kernels' dense product (KernelTable::pack_columns and
// ::matmul, kernels/cpu/dense.h), as a tensor of b's dtype: the ops pack their weights once per call.
#pragma once

#include <ATen/ATen.h>

#include "kernels/cpu/kernel_table.h"

namespace mace_deploy {

template <typename T>
at::Tensor packed_columns(const at::Tensor& b) {
  const auto& kernels = cpu::kernels<T>();
  const at::Tensor contiguous = b.contiguous();
  at::Tensor packed = at::empty({cpu::packed_columns_size(b.size(0), b.size(1), kernels.dense_panel)}, b.options());
  kernels.pack_columns(contiguous.data_ptr<T>(), b.size(0), b.size(1), packed.data_ptr<T>());
  return packed;
}

}  // namespace mace_deploy
