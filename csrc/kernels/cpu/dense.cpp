#include "kernels/cpu/dense.h"

#include <algorithm>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd.h"

namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA {
namespace {

// A tile of `rows` x `panel` outputs stays in registers while k runs over a block of `depth`;
// that block of a b panel (depth x panel) stays in L1 for all row tiles of a `row_block`.
template <typename T>
struct Blocking {
  static constexpr int64_t lanes = Simd<T>::lanes;
  // 6 x 2 accumulators + 2 panel vectors + 1 broadcast fit the 16 vector registers of AVX2/SSE
  static constexpr int64_t vectors = 2;
  static constexpr int64_t panel = vectors * lanes;
  static constexpr int64_t rows = 6;
  static constexpr int64_t depth = 128;
  static constexpr int64_t row_block = 48;
};

}  // namespace

template <typename T>
void pack_columns(const T* b, int64_t K, int64_t N, T* packed) {
  constexpr int64_t P = Blocking<T>::panel;
  for (int64_t j0 = 0; j0 < N; j0 += P) {
    for (int64_t k = 0; k < K; ++k) {
      T* out = packed + (j0 * K + k * P);
      for (int64_t j = 0; j < P; ++j) out[j] = j0 + j < N ? b[k * N + j0 + j] : T(0);
    }
  }
}

namespace {

// c[R rows, columns] (+)= a[R rows, k0 .. k0 + kc] @ panel block; `columns` < panel only in the
// last panel. `stream`: full panels bypass the caches (c aligned, not accumulating).
template <typename T, int64_t R>
void tile(const T* const* a_rows, int64_t k0, const T* panel, int64_t kc, T* c, int64_t ldc, int64_t columns,
          bool accumulate, bool stream) {
  using V = Simd<T>;
  constexpr int64_t L = V::lanes, P = Blocking<T>::panel, NV = Blocking<T>::vectors;
  const T* a[R];
  for (int64_t r = 0; r < R; ++r) a[r] = a_rows[r] + k0;
  typename V::vec acc[R][NV] = {};
  for (int64_t k = 0; k < kc; ++k) {
    typename V::vec b[NV];
#pragma GCC unroll 4
    for (int64_t v = 0; v < NV; ++v) b[v] = V::load(panel + k * P + v * L);
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r) {
      const auto ar = V::splat(a[r][k]);
#pragma GCC unroll 4
      for (int64_t v = 0; v < NV; ++v) acc[r][v] += ar * b[v];
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    T* cr = c + r * ldc;
    if (columns == P && stream) {
      for (int64_t v = 0; v < NV; ++v) V::stream(cr + v * L, acc[r][v]);
    } else if (columns == P) {
      for (int64_t v = 0; v < NV; ++v) V::store(cr + v * L, accumulate ? acc[r][v] + V::load(cr + v * L) : acc[r][v]);
    } else {
      T out[P];
      for (int64_t v = 0; v < NV; ++v) V::store(out + v * L, acc[r][v]);
      for (int64_t j = 0; j < columns; ++j) cr[j] = accumulate ? cr[j] + out[j] : out[j];
    }
  }
}

}  // namespace

template <typename T>
void matmul(const StridedRows<T>& a, const T* packed_b, T* c, int64_t K, int64_t N, int64_t begin, int64_t end,
            bool large_output) {
  using B = Blocking<T>;
  if (K == 0) {
    for (int64_t i = begin; i < end; ++i) std::fill(c + i * N, c + (i + 1) * N, T(0));
    return;
  }
  // Streaming stores need every tile row aligned and written once (one block of depth).
  constexpr int64_t vector_bytes = Simd<T>::lanes * static_cast<int64_t>(sizeof(T));
  const bool stream = large_output && K <= B::depth && reinterpret_cast<uintptr_t>(c) % vector_bytes == 0 &&
                      N * static_cast<int64_t>(sizeof(T)) % vector_bytes == 0;
  const T* a_rows[B::row_block];  // of the current row block, found once for all its tiles
  for (int64_t i0 = begin; i0 < end; i0 += B::row_block) {
    const int64_t i1 = std::min(end, i0 + B::row_block);
    for (int64_t i = i0; i < i1; ++i) a_rows[i - i0] = a.row(i);
    for (int64_t k0 = 0; k0 < K; k0 += B::depth) {
      const int64_t kc = std::min(B::depth, K - k0);
      for (int64_t j0 = 0; j0 < N; j0 += B::panel) {
        const T* panel = packed_b + j0 * K + k0 * B::panel;
        const int64_t columns = std::min(B::panel, N - j0);
        int64_t i = i0;
        for (; i + B::rows <= i1; i += B::rows) {
          tile<T, B::rows>(a_rows + (i - i0), k0, panel, kc, c + i * N + j0, N, columns, k0 > 0, stream);
        }
        with_static_count<B::rows - 1>(static_cast<int>(i1 - i), [&]<int R>() {
          tile<T, R>(a_rows + (i - i0), k0, panel, kc, c + i * N + j0, N, columns, k0 > 0, stream);
        });
      }
    }
  }
  if (stream) _mm_sfence();
}

template <typename T>
void add_dense(KernelTable<T>& table) {
  table.dense_panel = Blocking<T>::panel;
  table.pack_columns = &pack_columns<T>;
  table.matmul = &matmul<T>;
}
template void add_dense<float>(KernelTable<float>&);
template void add_dense<double>(KernelTable<double>&);
template void pack_columns<float>(const float*, int64_t, int64_t, float*);
template void pack_columns<double>(const double*, int64_t, int64_t, double*);
template void matmul<float>(const StridedRows<float>&, const float*, float*, int64_t, int64_t, int64_t, int64_t, bool);
template void matmul<double>(const StridedRows<double>&, const double*, double*, int64_t, int64_t, int64_t, int64_t,
                             bool);

}  // namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA
