#include "kernels/cpu/message_passing.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd.h"

namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA {
namespace {

// angular[q] = coeff[q] * sh[k_sh[q]] of one edge.
template <typename T>
void angular_factors(const CouplingTable& cg, const T* coeff, const T* she, T* angular) {
  for (size_t q = 0; q < cg.k_sh.size(); ++q) angular[q] = coeff[q] * she[cg.k_sh[q]];
}

// wx[g, :] = w[path(g), :] * x[k_in(g), :] for every (path, k_in) group of one edge.
template <typename T>
void weighted_inputs(const CouplingTable& cg, int64_t C, const T* we, const T* xs, T* wx) {
  for (size_t g = 0; g < cg.groups.size(); ++g) {
    const T* wp = we + cg.groups[g].path * C;
    const T* xk = xs + cg.groups[g].k_in * C;
    T* out = wx + g * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) out[c] = wp[c] * xk[c];
  }
}

// o[:NV vectors] += sum over the entries by_out[qb .. qe) (all writing one output component) of
// angular[q] * wx[group(q), :NV vectors]; the sum stays in NV independent registers, so
// consecutive multiply-adds do not wait for each other.
template <typename T, int NV>
void add_component_block(const CouplingTable& cg, int64_t qb, int64_t qe, const T* angular, const T* wx,
                         int64_t C, T* o) {
  using V = Simd<T>;
  constexpr int64_t L = V::lanes;
  typename V::vec sum[NV];
  for (int v = 0; v < NV; ++v) sum[v] = V::load(o + v * L);
  for (int64_t i = qb; i < qe; ++i) {
    const auto a = V::splat(angular[cg.by_out[i]]);
    const T* p = wx + cg.by_out_group[i] * C;
    for (int v = 0; v < NV; ++v) sum[v] += a * V::load(p + v * L);
  }
  for (int v = 0; v < NV; ++v) V::store(o + v * L, sum[v]);
}

// acc[k, :] += sum over the entries q writing component k of angular[q] * wx[group(q), :],
// four vectors of channels at a time, then one, then the scalar rest.
template <typename T>
void add_edge_message(const MessageShape& s, const CouplingTable& cg, const T* angular, const T* wx, T* acc) {
  constexpr int64_t L = Simd<T>::lanes;
  const int64_t C = s.channels;
  for (int64_t k = 0; k < s.out_components; ++k) {
    const int64_t qb = cg.out_offsets[k], qe = cg.out_offsets[k + 1];
    if (qb == qe) continue;
    T* o = acc + k * C;
    int64_t c = 0;
    for (; c + 4 * L <= C; c += 4 * L) add_component_block<T, 4>(cg, qb, qe, angular, wx + c, C, o + c);
    for (; c + L <= C; c += L) add_component_block<T, 1>(cg, qb, qe, angular, wx + c, C, o + c);
    for (; c < C; ++c) {
      T sum = o[c];
      for (int64_t i = qb; i < qe; ++i) sum += angular[cg.by_out[i]] * wx[cg.by_out_group[i] * C + c];
      o[c] = sum;
    }
  }
}

// Entries of one (path, k_in) group handled together by the backward: their grad_out rows,
// angular factors and per-lane d/d sh sums all stay in registers.
constexpr int64_t kChunk = MACE_DEPLOY_CPU_VECTOR_BYTES == 64 ? 8 : 4;

// Entries q of one group (N of them: angular[j], grad_out rows go_rows[j]) of one edge: adds
// d/dw and d/dx (gwx = sum_j angular[j] * go_rows[j], times x and w) into dwp and dxk, and
// returns sum_c w x go_rows[j] per entry in dots[j].
template <typename T, int N>
void chunk_gradients(const T* angular, const T* const* go_rows, int64_t C, const T* wp, const T* xk, T* dwp,
                     T* dxk, T* dots) {
  using V = Simd<T>;
  constexpr int64_t L = V::lanes;
  typename V::vec dot[N] = {}, a[N];
  for (int j = 0; j < N; ++j) a[j] = V::splat(angular[j]);
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    const auto w = V::load(wp + c), x = V::load(xk + c), wx = w * x;
    typename V::vec gwx{};
    for (int j = 0; j < N; ++j) {
      const auto g = V::load(go_rows[j] + c);
      gwx += a[j] * g;
      dot[j] += wx * g;
    }
    V::store(dwp + c, V::load(dwp + c) + gwx * x);
    V::store(dxk + c, V::load(dxk + c) + gwx * w);
  }
  for (int j = 0; j < N; ++j) {
    T sum = 0;
    for (int64_t l = 0; l < L; ++l) sum += dot[j][l];
    dots[j] = sum;
  }
  for (; c < C; ++c) {
    T gwx = 0;
    for (int j = 0; j < N; ++j) {
      gwx += angular[j] * go_rows[j][c];
      dots[j] += wp[c] * xk[c] * go_rows[j][c];
    }
    dwp[c] += gwx * xk[c];
    dxk[c] += gwx * wp[c];
  }
}

// One edge's contributions to the gradients of its weight row (dwe), its sender's features (dxs)
// and its spherical harmonics (dsh), given its receiver's grad_out rows (go). Groups of more than
// kChunk entries go in chunks: d/dw and d/dx are linear in the entries, so chunks add up.
template <typename T>
void add_edge_gradients(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* angular,
                        const T* go, const T* xs, const T* we, T* dxs, T* dwe, T* dsh) {
  const int64_t C = s.channels;
  const T* go_rows[kChunk];
  T dots[kChunk];
  for (const auto& g : cg.groups) {
    for (int64_t q0 = g.begin; q0 < g.end; q0 += kChunk) {
      const int n = static_cast<int>(std::min<int64_t>(kChunk, g.end - q0));
      for (int j = 0; j < n; ++j) go_rows[j] = go + cg.k_out[q0 + j] * C;
      with_static_count<kChunk>(n, [&]<int N>() {
        chunk_gradients<T, N>(angular + q0, go_rows, C, we + g.path * C, xs + g.k_in * C, dwe + g.path * C,
                              dxs + g.k_in * C, dots);
      });
      for (int j = 0; j < n; ++j) dsh[cg.k_sh[q0 + j]] += coeff[q0 + j] * dots[j];
    }
  }
}

template <typename T>
void message_passing_forward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* x,
                             const T* sh, const T* w, const int64_t* weight_rows, const int64_t* senders,
                             const EdgeIndex& by_receiver, T* out, int64_t begin, int64_t end) {
  const int64_t C = s.channels;
  std::vector<T> wx(cg.groups.size() * C), angular(cg.k_sh.size());
  for (int64_t r = begin; r < end; ++r) {
    T* acc = out + r * s.out_components * C;
    std::fill(acc, acc + s.out_components * C, T(0));
    for (int64_t i = by_receiver.offsets[r]; i < by_receiver.offsets[r + 1]; ++i) {
      const int64_t e = by_receiver.edges[i];
      angular_factors(cg, coeff, sh + e * s.sh_components, angular.data());
      weighted_inputs(cg, C, w + weight_rows[e] * s.paths * C, x + senders[e] * s.in_components * C, wx.data());
      add_edge_message(s, cg, angular.data(), wx.data(), acc);
    }
  }
}

template <typename T>
void message_passing_backward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* grad_out,
                              const T* x, const T* sh, const T* w, const int64_t* weight_rows,
                              const int64_t* senders, const int64_t* receivers, const int64_t* edges,
                              int64_t count, int64_t row_begin, int64_t row_end, T* grad_x_partial, T* grad_sh,
                              T* grad_w) {
  const int64_t C = s.channels, row_size = s.paths * C;
  // Rows are zeroed when their first edge comes, while they are in cache: a separate pass over all
  // of grad_w would write the whole (large) array to memory once more.
  std::vector<char> zeroed(row_end - row_begin, 0);
  std::vector<T> angular(cg.k_sh.size());
  for (int64_t i = 0; i < count; ++i) {
    const int64_t e = edges[i], row = weight_rows[e];
    if (!zeroed[row - row_begin]) {
      std::fill(grad_w + row * row_size, grad_w + (row + 1) * row_size, T(0));
      zeroed[row - row_begin] = 1;
    }
    T* dsh = grad_sh + e * s.sh_components;
    std::fill(dsh, dsh + s.sh_components, T(0));
    angular_factors(cg, coeff, sh + e * s.sh_components, angular.data());
    add_edge_gradients(s, cg, coeff, angular.data(), grad_out + receivers[e] * s.out_components * C,
                       x + senders[e] * s.in_components * C, w + row * s.paths * C,
                       grad_x_partial + senders[e] * s.in_components * C, grad_w + row * row_size, dsh);
  }
  for (int64_t row = row_begin; row < row_end; ++row) {  // rows no edge uses
    if (!zeroed[row - row_begin]) std::fill(grad_w + row * row_size, grad_w + (row + 1) * row_size, T(0));
  }
}

}  // namespace

template <typename T>
void add_message_passing(KernelTable<T>& table) {
  table.message_passing_forward = &message_passing_forward<T>;
  table.message_passing_backward = &message_passing_backward<T>;
}
template void add_message_passing<float>(KernelTable<float>&);
template void add_message_passing<double>(KernelTable<double>&);

}  // namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA
