#include "kernels/cpu/symmetric_contraction.h"

#include <algorithm>

namespace mace_deploy::cpu {
MonomialTable::MonomialTable(const ContractionShape& s, const int64_t* monomials) {
  for (int64_t m = 0; m < s.monomials; ++m) {
    const int64_t* row = monomials + m * (1 + s.max_degree);
    int64_t degree = 0;
    while (degree < s.max_degree && row[1 + degree] >= 0) ++degree;
    rows[degree].push_back(m);
    rows[degree].insert(rows[degree].end(), row, row + 1 + degree);
  }
}

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

template void symmetric_contraction_forward<float>(const ContractionShape&, const MonomialTable&, const float*,
                                                   const int64_t*, const float*, float*, int64_t, int64_t);
template void symmetric_contraction_forward<double>(const ContractionShape&, const MonomialTable&, const double*,
                                                    const int64_t*, const double*, double*, int64_t, int64_t);
template void symmetric_contraction_backward<float>(const ContractionShape&, const MonomialTable&, const float*,
                                                    const float*, const int64_t*, const float*, float*, int64_t,
                                                    int64_t);
template void symmetric_contraction_backward<double>(const ContractionShape&, const MonomialTable&,
                                                     const double*, const double*, const int64_t*, const double*,
                                                     double*, int64_t, int64_t);

}  // namespace mace_deploy::cpu
