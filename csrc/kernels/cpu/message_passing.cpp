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

// Entries of one (path, k_in) group handled together: their sums (forward) or their grad_out rows,
// angular factors and per-lane d/d sh sums (backward) stay in registers.
constexpr int64_t kChunk = MACE_DEPLOY_CPU_VECTOR_BYTES == 64 ? 8 : 4;

// A one-lane stand-in for Simd<T>, for the channels left over after the full vectors.
template <typename T>
struct OneLane {
  static constexpr int64_t lanes = 1;
  using vec = T;
  static vec load(const T* p) { return *p; }
  static void store(T* p, vec v) { *p = v; }
  static vec splat(T a) { return a; }
};

// A chunk of one receiver's edges, for the forward: per edge j, its angular factors
// (angular[j * nnz + q]) and its weight row and sender's feature row; and the rows of the
// `next_count` edges that follow it, to prefetch.
template <typename T>
struct ForwardChunk {
  int64_t count;
  const T* angular;
  const T* const* w_rows;
  const T* const* x_rows;
  int64_t next_count;
  const T* const* next_w_rows;
  const T* const* next_x_rows;
};

// Prefetches `bytes` from each of `count` slices, `stride` elements apart, starting at p.
template <typename T>
void prefetch_slices(const T* p, int64_t stride, int64_t count, int64_t bytes) {
  for (int64_t i = 0; i < count; ++i) {
    const char* b = reinterpret_cast<const char*>(p + i * stride);
    for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(b + off, 0, 2);  // to L2 only
  }
}

// Entries q0 .. q0 + N of group g, channels [c0, c0 + NV vectors): y[q] = sum over the chunk's
// edges of angular[q] * w[path] * x[k_in] in N x NV registers (the edges are the long dimension
// of a small matrix product), then o[k_out(q)] += y[q].
template <typename V, int NV, int N, typename T>
void add_group_entries(const CouplingTable& cg, const CouplingTable::Group& g, int64_t q0, int64_t nnz,
                       const ForwardChunk<T>& chunk, int64_t c0, int64_t C, T* o) {
  constexpr int64_t L = V::lanes;
  typename V::vec y[N][NV] = {};
  const int64_t w_offset = g.path * C + c0, x_offset = g.k_in * C + c0;
  for (int64_t j = 0; j < chunk.count; ++j) {
    typename V::vec wx[NV];
    for (int v = 0; v < NV; ++v) {
      wx[v] = V::load(chunk.w_rows[j] + w_offset + v * L) * V::load(chunk.x_rows[j] + x_offset + v * L);
    }
    const T* a = chunk.angular + j * nnz + q0;
    for (int n = 0; n < N; ++n) {
      const auto s = V::splat(a[n]);
      for (int v = 0; v < NV; ++v) y[n][v] += s * wx[v];
    }
  }
  for (int n = 0; n < N; ++n) {
    T* on = o + cg.k_out[q0 + n] * C + c0;
    for (int v = 0; v < NV; ++v) V::store(on + v * L, V::load(on + v * L) + y[n][v]);
  }
}

// Channels [c0, c0 + NV vectors) of one receiver's output o, from one chunk of its edges.
template <typename V, int NV, typename T>
void add_channel_block(const MessageShape& s, const CouplingTable& cg, const ForwardChunk<T>& chunk, int64_t c0,
                       T* o) {
  const int64_t C = s.channels, nnz = static_cast<int64_t>(cg.k_sh.size());
  // The rows are gathered from memory a slice at a time: fetch the next chunk's slices now.
  const int64_t bytes = NV * V::lanes * static_cast<int64_t>(sizeof(T));
  for (int64_t j = 0; j < chunk.next_count; ++j) {
    prefetch_slices(chunk.next_w_rows[j] + c0, C, s.paths, bytes);
    prefetch_slices(chunk.next_x_rows[j] + c0, C, s.in_components, bytes);
  }
  for (const auto& g : cg.groups) {
    for (int64_t q0 = g.begin; q0 < g.end; q0 += kChunk) {
      with_static_count<kChunk>(static_cast<int>(std::min<int64_t>(kChunk, g.end - q0)), [&]<int N>() {
        add_group_entries<V, NV, N>(cg, g, q0, nnz, chunk, c0, C, o);
      });
    }
  }
}

// One edge in the backward: its angular factors (angular[q]), its sender's feature row and weight
// row, and the gradient rows these add into.
template <typename T>
struct EdgeGradientRows {
  const T* angular;
  const T* x;
  const T* w;
  T* grad_x;
  T* grad_w;
  T* grad_sh;
};

// Entries q0 .. q0 + N of group g for E edges of one receiver, which share its grad_out rows
// (go_rows[j] for entry q0 + j; each vector of them is loaded once for all E edges): adds d/dw and
// d/dx (gwx = sum_j angular[q0 + j] * go_rows[j], times x and w) into each edge's gradient rows,
// and returns sum_c w x go_rows[j] of edge i in dots[i][j].
template <typename T, int N, int E>
void group_gradients(const MessageShape& s, const CouplingTable::Group& g, int64_t q0, const T* const* go_rows,
                     const EdgeGradientRows<T>* edges, T (*dots)[kChunk]) {
  using V = Simd<T>;
  constexpr int64_t L = V::lanes;
  const int64_t C = s.channels;
  // the rows of this group: w[path], x[k_in] and their gradients, and the entries' angular factors
  const T *w_row[E], *x_row[E], *angular[E];
  T *dw_row[E], *dx_row[E];
  for (int i = 0; i < E; ++i) {
    w_row[i] = edges[i].w + g.path * C;
    x_row[i] = edges[i].x + g.k_in * C;
    dw_row[i] = edges[i].grad_w + g.path * C;
    dx_row[i] = edges[i].grad_x + g.k_in * C;
    angular[i] = edges[i].angular + q0;
  }
  typename V::vec dot[E][N] = {};
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    typename V::vec w[E], x[E], wx[E], gwx[E];
    for (int i = 0; i < E; ++i) {
      w[i] = V::load(w_row[i] + c);
      x[i] = V::load(x_row[i] + c);
      wx[i] = w[i] * x[i];
      gwx[i] = typename V::vec{};
    }
    for (int j = 0; j < N; ++j) {
      const auto go = V::in_register(V::load(go_rows[j] + c));
      for (int i = 0; i < E; ++i) {
        gwx[i] += V::splat(angular[i][j]) * go;
        dot[i][j] += wx[i] * go;
      }
    }
    // one edge after the other: two edges of a receiver may share a sender
    for (int i = 0; i < E; ++i) {
      V::store(dw_row[i] + c, V::load(dw_row[i] + c) + gwx[i] * x[i]);
      V::store(dx_row[i] + c, V::load(dx_row[i] + c) + gwx[i] * w[i]);
    }
  }
  T sums[E * N];
  V::template sum_lanes<E * N>(&dot[0][0], sums);
  for (int i = 0; i < E; ++i) {
    for (int j = 0; j < N; ++j) dots[i][j] = sums[i * N + j];
  }
  for (; c < C; ++c) {  // channels past the last full vector
    for (int i = 0; i < E; ++i) {
      T gwx = 0;
      for (int j = 0; j < N; ++j) {
        gwx += angular[i][j] * go_rows[j][c];
        dots[i][j] += w_row[i][c] * x_row[i][c] * go_rows[j][c];
      }
      dw_row[i][c] += gwx * x_row[i][c];
      dx_row[i][c] += gwx * w_row[i][c];
    }
  }
}

// The contributions of E edges of one receiver (its grad_out rows: go) to the gradients of their
// weight rows, senders' features and spherical harmonics. Groups of more than kChunk entries go in
// chunks: d/dw and d/dx are linear in the entries, so chunks add up.
template <typename T, int E>
void add_edge_gradients(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* go,
                        const EdgeGradientRows<T>* edges) {
  const int64_t C = s.channels;
  const T* go_rows[kChunk];
  T dots[E][kChunk];
  for (const auto& g : cg.groups) {
    for (int64_t q0 = g.begin; q0 < g.end; q0 += kChunk) {
      const int n = static_cast<int>(std::min<int64_t>(kChunk, g.end - q0));
      for (int j = 0; j < n; ++j) go_rows[j] = go + cg.k_out[q0 + j] * C;
      with_static_count<kChunk>(n, [&]<int N>() { group_gradients<T, N, E>(s, g, q0, go_rows, edges, dots); });
      for (int i = 0; i < E; ++i) {
        for (int j = 0; j < n; ++j) edges[i].grad_sh[cg.k_sh[q0 + j]] += coeff[q0 + j] * dots[i][j];
      }
    }
  }
}

template <typename T>
void message_passing_forward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* x,
                             const T* sh, const T* w, const int64_t* weight_rows, const int64_t* senders,
                             const EdgeIndex& by_receiver, T* out, int64_t begin, int64_t end) {
  constexpr int64_t L = Simd<T>::lanes;
  const int64_t C = s.channels, nnz = static_cast<int64_t>(cg.k_sh.size());
  // One channel block's slices of a chunk's weight and feature rows stay in L1 while every group
  // reads them.
  const int64_t slice_bytes = (s.paths + s.in_components) * 2 * L * static_cast<int64_t>(sizeof(T));
  const int64_t chunk_edges = std::clamp<int64_t>(16384 / slice_bytes, 4, 32);
  std::vector<T> angular(chunk_edges * nnz);
  // Row pointers of a chunk (first half) and of the edges after it (second half).
  std::vector<const T*> w_rows(2 * chunk_edges), x_rows(2 * chunk_edges);
  const int64_t* last_edge = by_receiver.edges.data() + by_receiver.offsets[end];
  for (int64_t r = begin; r < end; ++r) {
    T* o = out + r * s.out_components * C;
    std::fill(o, o + s.out_components * C, T(0));
    const int64_t* edges = by_receiver.edges.data() + by_receiver.offsets[r];
    const int64_t count = by_receiver.offsets[r + 1] - by_receiver.offsets[r];
    for (int64_t j0 = 0; j0 < count; j0 += chunk_edges) {
      const int64_t n = std::min(chunk_edges, count - j0);
      const int64_t following = std::min<int64_t>(chunk_edges, last_edge - (edges + j0 + n));
      for (int64_t j = 0; j < n + following; ++j) {
        const int64_t e = edges[j0 + j];
        w_rows[j] = w + weight_rows[e] * s.paths * C;
        x_rows[j] = x + senders[e] * s.in_components * C;
        if (j < n) angular_factors(cg, coeff, sh + e * s.sh_components, angular.data() + j * nnz);
      }
      const ForwardChunk<T> chunk{n, angular.data(), w_rows.data(), x_rows.data(),
                                  following, w_rows.data() + n, x_rows.data() + n};
      int64_t c0 = 0;
      for (; c0 + 2 * L <= C; c0 += 2 * L) add_channel_block<Simd<T>, 2>(s, cg, chunk, c0, o);
      for (; c0 + L <= C; c0 += L) add_channel_block<Simd<T>, 1>(s, cg, chunk, c0, o);
      for (; c0 < C; ++c0) add_channel_block<OneLane<T>, 1>(s, cg, chunk, c0, o);
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
  const int64_t nnz = static_cast<int64_t>(cg.k_sh.size());
  std::vector<T> angular(2 * nnz);
  // Zeroes edge e's gradient rows where they start from nothing and takes its angular factors.
  auto prepare = [&](int64_t e, T* edge_angular) {
    const int64_t row = weight_rows[e];
    if (!zeroed[row - row_begin]) {
      std::fill(grad_w + row * row_size, grad_w + (row + 1) * row_size, T(0));
      zeroed[row - row_begin] = 1;
    }
    T* dsh = grad_sh + e * s.sh_components;
    std::fill(dsh, dsh + s.sh_components, T(0));
    angular_factors(cg, coeff, sh + e * s.sh_components, edge_angular);
    const int64_t x_row = senders[e] * s.in_components * C;
    return EdgeGradientRows<T>{edge_angular, x + x_row, w + row * row_size, grad_x_partial + x_row,
                               grad_w + row * row_size, dsh};
  };
  // Edges come in receiver order: two of one receiver go together, sharing its grad_out loads.
  for (int64_t i = 0; i < count;) {
    const int64_t e = edges[i];
    const T* go = grad_out + receivers[e] * s.out_components * C;
    const bool two = i + 1 < count && receivers[edges[i + 1]] == receivers[e];
    const EdgeGradientRows<T> rows[2] = {prepare(e, angular.data()),
                                         two ? prepare(edges[i + 1], angular.data() + nnz) : EdgeGradientRows<T>{}};
    if (two) {
      add_edge_gradients<T, 2>(s, cg, coeff, go, rows);
    } else {
      add_edge_gradients<T, 1>(s, cg, coeff, go, rows);
    }
    i += two ? 2 : 1;
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
