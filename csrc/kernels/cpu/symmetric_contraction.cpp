#include "kernels/cpu/symmetric_contraction.h"

#include <algorithm>

#include "kernels/cpu/kernel_table.h"

namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA {
namespace {

template <typename T>
void symmetric_contraction_forward(const ContractionShape& s, const MonomialTable& table, const T* x,
                                   const int64_t* species, const T* coeff, T* out, int64_t begin, int64_t end) {
  const int64_t C = s.channels;
  for (int64_t n = begin; n < end; ++n) {
    const T* xn = x + n * s.components * C;
    const T* cn = coeff + species[n] * s.monomials * C;
    T* on = out + n * s.out_components * C;
    std::fill(on, on + s.out_components * C, T(0));
    for (int64_t degree = 1; degree <= 3 && degree <= s.max_degree; ++degree) {
      const auto& rows = table.rows[degree];
      const int64_t stride = 2 + degree;
      for (size_t r = 0; r < rows.size(); r += stride) {
        const T* w = cn + rows[r] * C;
        T* o = on + rows[r + 1] * C;
        const T* a = xn + rows[r + 2] * C;
        if (degree == 1) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) o[c] += w[c] * a[c];
        } else if (degree == 2) {
          const T* b = xn + rows[r + 3] * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) o[c] += w[c] * a[c] * b[c];
        } else {
          const T* b = xn + rows[r + 3] * C;
          const T* d = xn + rows[r + 4] * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) o[c] += w[c] * a[c] * b[c] * d[c];
        }
      }
    }
  }
}

template <typename T>
void symmetric_contraction_backward(const ContractionShape& s, const MonomialTable& table, const T* grad_out,
                                    const T* x, const int64_t* species, const T* coeff, T* grad_x,
                                    int64_t begin, int64_t end) {
  const int64_t C = s.channels;
  for (int64_t n = begin; n < end; ++n) {
    const T* xn = x + n * s.components * C;
    const T* gn = grad_out + n * s.out_components * C;
    const T* cn = coeff + species[n] * s.monomials * C;
    T* dx = grad_x + n * s.components * C;
    std::fill(dx, dx + s.components * C, T(0));
    for (int64_t degree = 1; degree <= 3 && degree <= s.max_degree; ++degree) {
      const auto& rows = table.rows[degree];
      const int64_t stride = 2 + degree;
      for (size_t r = 0; r < rows.size(); r += stride) {
        const T* w = cn + rows[r] * C;
        const T* g = gn + rows[r + 1] * C;
        const int64_t ka = rows[r + 2];
        const T* a = xn + ka * C;
        T* da = dx + ka * C;
        if (degree == 1) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) da[c] += g[c] * w[c];
        } else if (degree == 2) {
          const int64_t kb = rows[r + 3];
          const T* b = xn + kb * C;
          T* db = dx + kb * C;
          // da and db may alias (a squared factor): accumulate through separate statements.
          for (int64_t c = 0; c < C; ++c) {
            const T gw = g[c] * w[c];
            da[c] += gw * b[c];
            db[c] += gw * a[c];
          }
        } else {
          const int64_t kb = rows[r + 3], kd = rows[r + 4];
          const T* b = xn + kb * C;
          const T* d = xn + kd * C;
          T* db = dx + kb * C;
          T* dd = dx + kd * C;
          for (int64_t c = 0; c < C; ++c) {
            const T gw = g[c] * w[c];
            da[c] += gw * b[c] * d[c];
            db[c] += gw * a[c] * d[c];
            dd[c] += gw * a[c] * b[c];
          }
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void add_symmetric_contraction(KernelTable<T>& table) {
  table.symmetric_contraction_forward = &symmetric_contraction_forward<T>;
  table.symmetric_contraction_backward = &symmetric_contraction_backward<T>;
}
template void add_symmetric_contraction<float>(KernelTable<float>&);
template void add_symmetric_contraction<double>(KernelTable<double>&);

}  // namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA
