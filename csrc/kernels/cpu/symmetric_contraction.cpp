#include "kernels/cpu/symmetric_contraction.h"

#include <algorithm>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd.h"

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

// d/dx of each monomial w * a (* b (* d)), a vector of channels at a time: each factor's
// derivative is added and stored before the next factor's is loaded, so factors that are one
// component (squares, cubes) accumulate correctly.
template <typename T>
void symmetric_contraction_backward(const ContractionShape& s, const MonomialTable& table, const T* grad_out,
                                    const T* x, const int64_t* species, const T* coeff, T* grad_x,
                                    int64_t begin, int64_t end) {
  using V = Simd<T>;
  constexpr int64_t L = V::lanes;
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
        const int64_t ka = rows[r + 2], kb = degree >= 2 ? rows[r + 3] : ka, kd = degree == 3 ? rows[r + 4] : ka;
        const T *a = xn + ka * C, *b = xn + kb * C, *d = xn + kd * C;
        T *da = dx + ka * C, *db = dx + kb * C, *dd = dx + kd * C;
        int64_t c = 0;
        if (degree == 1) {
          for (; c + L <= C; c += L) V::store(da + c, V::load(da + c) + V::load(g + c) * V::load(w + c));
        } else if (degree == 2) {
          for (; c + L <= C; c += L) {
            const auto gw = V::load(g + c) * V::load(w + c), va = V::load(a + c), vb = V::load(b + c);
            V::store(da + c, V::load(da + c) + gw * vb);
            V::store(db + c, V::load(db + c) + gw * va);
          }
        } else {
          for (; c + L <= C; c += L) {
            const auto gw = V::load(g + c) * V::load(w + c);
            const auto va = V::load(a + c), vb = V::load(b + c), vd = V::load(d + c);
            V::store(da + c, V::load(da + c) + gw * vb * vd);
            V::store(db + c, V::load(db + c) + gw * va * vd);
            V::store(dd + c, V::load(dd + c) + gw * va * vb);
          }
        }
        for (; c < C; ++c) {
          const T gw = g[c] * w[c];
          if (degree == 1) {
            da[c] += gw;
          } else if (degree == 2) {
            da[c] += gw * b[c];
            db[c] += gw * a[c];
          } else {
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
