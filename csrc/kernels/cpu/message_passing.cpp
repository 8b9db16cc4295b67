#include "kernels/cpu/message_passing.h"

#include <algorithm>
#include <numeric>

namespace mace_deploy::cpu {

CouplingTable::CouplingTable(const int64_t* cg_index, int64_t nnz) : order(nnz) {
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t q) { return std::make_pair(cg_index[4 * q + 3], cg_index[4 * q]); };  // (path, k_in)
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key(a) < key(b); });
  for (int64_t i = 0; i < nnz; ++i) {
    const int64_t q = order[i];
    if (groups.empty() || key(q) != std::make_pair(groups.back().path, groups.back().k_in)) {
      groups.push_back({cg_index[4 * q + 3], cg_index[4 * q], i, i});
    }
    groups.back().end = i + 1;
    k_sh.push_back(cg_index[4 * q + 1]);
    k_out.push_back(cg_index[4 * q + 2]);
  }
}

EdgeIndex::EdgeIndex(const int64_t* node_of_edge, int64_t num_edges, int64_t num_nodes)
    : offsets(num_nodes + 1, 0), edges(num_edges) {
  for (int64_t e = 0; e < num_edges; ++e) ++offsets[node_of_edge[e] + 1];
  std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
  std::vector<int64_t> next(offsets.begin(), offsets.end() - 1);
  for (int64_t e = 0; e < num_edges; ++e) edges[next[node_of_edge[e]]++] = e;  // stable: edge order kept
}

template <typename T>
void message_passing_forward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* x,
                             const T* sh, const T* w, const int64_t* weight_rows, const int64_t* senders,
                             const EdgeIndex& by_receiver, T* out, int64_t begin, int64_t end) {
  const int64_t C = s.channels;
  std::vector<T> wx(C), angular(cg.k_sh.size());
  for (int64_t r = begin; r < end; ++r) {
    T* acc = out + r * s.out_components * C;
    std::fill(acc, acc + s.out_components * C, T(0));
    for (int64_t i = by_receiver.offsets[r]; i < by_receiver.offsets[r + 1]; ++i) {
      const int64_t e = by_receiver.edges[i];
      const T* xs = x + senders[e] * s.in_components * C;
      const T* she = sh + e * s.sh_components;
      for (size_t q = 0; q < angular.size(); ++q) angular[q] = coeff[q] * she[cg.k_sh[q]];
      for (const auto& g : cg.groups) {
        const T* wp = w + (weight_rows[e] * s.paths + g.path) * C;
        const T* xk = xs + g.k_in * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) wx[c] = wp[c] * xk[c];
        for (int64_t q = g.begin; q < g.end; ++q) {
          T* o = acc + cg.k_out[q] * C;
          const T a = angular[q];
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) o[c] += a * wx[c];
        }
      }
    }
  }
}

template <typename T>
void message_passing_backward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* grad_out,
                              const T* x, const T* sh, const T* w, const int64_t* weight_rows,
                              const int64_t* senders, const EdgeIndex& by_receiver, T* grad_x_partial, T* grad_sh,
                              T* grad_w_edges, int64_t begin, int64_t end) {
  const int64_t C = s.channels;
  std::vector<T> wx(C), g_wx(C);
  for (int64_t r = begin; r < end; ++r) {
    const T* go = grad_out + r * s.out_components * C;
    for (int64_t i = by_receiver.offsets[r]; i < by_receiver.offsets[r + 1]; ++i) {
      const int64_t e = by_receiver.edges[i];
      const T* xs = x + senders[e] * s.in_components * C;
      T* dxs = grad_x_partial + senders[e] * s.in_components * C;
      const T* she = sh + e * s.sh_components;
      T* dsh = grad_sh + e * s.sh_components;
      T* dw = grad_w_edges + e * s.paths * C;
      std::fill(dsh, dsh + s.sh_components, T(0));
      std::fill(dw, dw + s.paths * C, T(0));
      for (const auto& g : cg.groups) {
        const T* wp = w + (weight_rows[e] * s.paths + g.path) * C;
        const T* xk = xs + g.k_in * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          wx[c] = wp[c] * xk[c];
          g_wx[c] = 0;
        }
        for (int64_t q = g.begin; q < g.end; ++q) {
          const T* gq = go + cg.k_out[q] * C;
          const T a = coeff[q] * she[cg.k_sh[q]];
          T dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t c = 0; c < C; ++c) {
            g_wx[c] += a * gq[c];
            dot += wx[c] * gq[c];
          }
          dsh[cg.k_sh[q]] += coeff[q] * dot;
        }
        T* dwp = dw + g.path * C;
        T* dxk = dxs + g.k_in * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          dwp[c] += g_wx[c] * xk[c];
          dxk[c] += g_wx[c] * wp[c];
        }
      }
    }
  }
}

#define INSTANTIATE(T)                                                                                        \
  template void message_passing_forward<T>(const MessageShape&, const CouplingTable&, const T*, const T*,      \
                                           const T*, const T*, const int64_t*, const int64_t*, const EdgeIndex&, \
                                           T*, int64_t, int64_t);                                              \
  template void message_passing_backward<T>(const MessageShape&, const CouplingTable&, const T*, const T*,     \
                                            const T*, const T*, const T*, const int64_t*, const int64_t*,      \
                                            const EdgeIndex&, T*, T*, T*, int64_t, int64_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace mace_deploy::cpu
