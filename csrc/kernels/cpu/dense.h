// Dense matrix product for the radial MLPs and equivariant linears (raw pointers, no torch):
// c [M, N] = a [M, K] @ b [K, N], row-major, c contiguous, a's rows anywhere (StridedRows). b (the
// layer's weights, small) is first packed into panels of KernelTable::dense_panel columns,
// [panel][K][dense_panel] zero-padded; rows of c are then independent, so callers split them over
// threads. Register-blocked for the shapes of radial MLPs (K and N of 8..2000, M up to
// millions of edges): MKL's float64 path on AMD CPUs runs at a third of this CPU's speed.
// Entry points: KernelTable::pack_columns and KernelTable::matmul (kernels/cpu/kernel_table.h).
#pragma once

#include <cstdint>

namespace mace_deploy::cpu {

// The rows of a [M, K] operand with unit stride along K: row r = i * inner + j lies at
// data + i * outer_stride + j * inner_stride. So a [n, d, K] tensor is read in place (inner = d),
// e.g. a slice of some components of [n, K_all, K] node features, as is a row-strided [M, K] one
// (inner = 1).
template <typename T>
struct StridedRows {
  const T* data;
  int64_t inner, outer_stride, inner_stride;
  const T* row(int64_t r) const { return data + r / inner * outer_stride + r % inner * inner_stride; }
};

// Size of b packed for `panel`-column panels.
inline int64_t packed_columns_size(int64_t K, int64_t N, int64_t panel) { return (N + panel - 1) / panel * panel * K; }

}  // namespace mace_deploy::cpu
