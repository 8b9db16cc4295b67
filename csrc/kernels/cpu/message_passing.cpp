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
// (angular[j * nnz + q]) and its weight row and sender's feature row; and the feature rows of the
// `next_count` edges that follow it, to prefetch.
template <typename T>
struct ForwardChunk {
  int64_t count;
  const T* angular;
  const T* const* w_rows;
  const T* const* x_rows;
  int64_t next_count;
  const T* const* next_x_rows;
};

// The forward's radial weights of a few edges at a time, w[j] = hidden[weight_rows[edge j]] @ W, in
// a thread's buffers (with the hidden rows they are made of). Rows of the product are independent:
// blocks give the same numbers as one product over all edges.
template <typename T>
class RadialBlock {
 public:
  RadialBlock(const RadialWeights<T>& radial, int64_t width, int64_t capacity)
      : radial_(radial), width_(width), hidden_(capacity * radial.hidden_size), weights_(capacity * width) {}

  // Weights of edges[0 .. n).
  void compute(const int64_t* edges, const int64_t* weight_rows, int64_t n) {
    const int64_t H = radial_.hidden_size;
    for (int64_t j = 0; j < n; ++j) {
      const T* h = radial_.hidden + weight_rows[edges[j]] * H;
      std::copy(h, h + H, hidden_.data() + j * H);
    }
    matmul<T>(StridedRows<T>{hidden_.data(), 1, H, 0}, radial_.packed_weight, weights_.data(), H, width_, 0, n,
              false);
  }
  const T* weights(int64_t j) const { return weights_.data() + j * width_; }

 private:
  const RadialWeights<T>& radial_;
  int64_t width_;
  std::vector<T> hidden_, weights_;
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
  // The feature rows are gathered from memory a slice at a time: fetch the next chunk's slices now.
  const int64_t bytes = NV * V::lanes * static_cast<int64_t>(sizeof(T));
  for (int64_t j = 0; j < chunk.next_count; ++j) prefetch_slices(chunk.next_x_rows[j] + c0, C, s.in_components, bytes);
  for (const auto& g : cg.groups) {
    for (int64_t q0 = g.begin; q0 < g.end; q0 += kChunk) {
      with_static_count<kChunk>(static_cast<int>(std::min<int64_t>(kChunk, g.end - q0)), [&]<int N>() {
        add_group_entries<V, NV, N>(cg, g, q0, nnz, chunk, c0, C, o);
      });
    }
  }
}

// One edge in the backward: its angular factors (angular[q]), its sender's feature row, its
// receiver's grad_out row, and the gradient rows these add into.
template <typename T>
struct EdgeGradientRows {
  const T* angular;
  const T* x;
  const T* grad_out;
  T* grad_x;
  T* grad_sh;
};

// Entries q0 .. q0 + N of group g for E edges sharing one weight row w and its gradient row dw
// (an edge and its reverse): adds d/dw (sum over the edges of gwx * x, gwx = sum_j angular[q0 + j]
// * grad_out[k_out(q0 + j)]) and each edge's d/dx (gwx * w) into the gradient rows, and returns
// sum_c w x grad_out[k_out(q0 + j)] of edge i in dots[i][j]. w and dw are loaded once for all E edges.
template <typename T, int N, int E>
void group_gradients(const MessageShape& s, const CouplingTable& cg, const CouplingTable::Group& g, int64_t q0,
                     const T* w, T* dw, const EdgeGradientRows<T>* edges, T (*dots)[kChunk]) {
  using V = Simd<T>;
  constexpr int64_t L = V::lanes;
  const int64_t C = s.channels;
  const T* w_row = w + g.path * C;
  T* dw_row = dw + g.path * C;
  const T *x_row[E], *angular[E], *go_rows[E][N];
  T* dx_row[E];
  for (int i = 0; i < E; ++i) {
    x_row[i] = edges[i].x + g.k_in * C;
    dx_row[i] = edges[i].grad_x + g.k_in * C;
    angular[i] = edges[i].angular + q0;
    for (int j = 0; j < N; ++j) go_rows[i][j] = edges[i].grad_out + cg.k_out[q0 + j] * C;
  }
  typename V::vec dot[E][N] = {};
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    const auto wv = V::load(w_row + c);
    auto dwv = V::load(dw_row + c);
    typename V::vec x[E], gwx[E];
    for (int i = 0; i < E; ++i) {
      x[i] = V::load(x_row[i] + c);
      const auto wx = wv * x[i];
      gwx[i] = typename V::vec{};
      for (int j = 0; j < N; ++j) {
        const auto go = V::in_register(V::load(go_rows[i][j] + c));
        gwx[i] += V::splat(angular[i][j]) * go;
        dot[i][j] += wx * go;
      }
      dwv += gwx[i] * x[i];
    }
    V::store(dw_row + c, dwv);
    // one edge after the other: the two edges of a row share their sender when an atom meets its
    // own periodic image
    for (int i = 0; i < E; ++i) V::store(dx_row[i] + c, V::load(dx_row[i] + c) + gwx[i] * wv);
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
        gwx += angular[i][j] * go_rows[i][j][c];
        dots[i][j] += w_row[c] * x_row[i][c] * go_rows[i][j][c];
      }
      dw_row[c] += gwx * x_row[i][c];
      dx_row[i][c] += gwx * w_row[c];
    }
  }
}

// The contributions of E edges sharing the weight row w (gradient row dw) to the gradients of
// that row, of their senders' features and of their spherical harmonics. Groups of more than
// kChunk entries go in chunks: d/dw and d/dx are linear in the entries, so chunks add up.
template <typename T, int E>
void add_edge_gradients(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* w, T* dw,
                        const EdgeGradientRows<T>* edges) {
  T dots[E][kChunk];
  for (const auto& g : cg.groups) {
    for (int64_t q0 = g.begin; q0 < g.end; q0 += kChunk) {
      const int n = static_cast<int>(std::min<int64_t>(kChunk, g.end - q0));
      with_static_count<kChunk>(n, [&]<int N>() { group_gradients<T, N, E>(s, cg, g, q0, w, dw, edges, dots); });
      for (int i = 0; i < E; ++i) {
        for (int j = 0; j < n; ++j) edges[i].grad_sh[cg.k_sh[q0 + j]] += coeff[q0 + j] * dots[i][j];
      }
    }
  }
}

// Edges per forward chunk: one channel block's slices of the chunk's weight and feature rows stay
// in L1 while every group reads them; a multiple of the dense product's 6-row register tile.
int64_t forward_chunk_edges(int64_t slice_bytes_per_row) {
  return std::clamp<int64_t>(24576 / slice_bytes_per_row / 6 * 6, 6, 30);
}

template <typename T>
void message_passing_forward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* x,
                             const T* sh, const RadialWeights<T>& radial, const int64_t* weight_rows,
                             const int64_t* senders, const EdgeIndex& by_receiver, T* out, int64_t begin,
                             int64_t end) {
  constexpr int64_t L = Simd<T>::lanes;
  const int64_t C = s.channels, nnz = static_cast<int64_t>(cg.k_sh.size());
  const int64_t chunk_edges =
      forward_chunk_edges((s.paths + s.in_components) * 2 * L * static_cast<int64_t>(sizeof(T)));
  RadialBlock<T> block(radial, s.paths * C, chunk_edges);
  std::vector<T> angular(chunk_edges * nnz);
  // Row pointers of a chunk (first half) and the feature rows of the edges after it (second half).
  std::vector<const T*> w_rows(chunk_edges), x_rows(2 * chunk_edges);
  const int64_t* last_edge = by_receiver.edges.data() + by_receiver.offsets[end];
  for (int64_t r = begin; r < end; ++r) {
    T* o = out + r * s.out_components * C;
    std::fill(o, o + s.out_components * C, T(0));
    const int64_t* edges = by_receiver.edges.data() + by_receiver.offsets[r];
    const int64_t count = by_receiver.offsets[r + 1] - by_receiver.offsets[r];
    for (int64_t j0 = 0; j0 < count; j0 += chunk_edges) {
      const int64_t n = std::min(chunk_edges, count - j0);
      const int64_t following = std::min<int64_t>(chunk_edges, last_edge - (edges + j0 + n));
      block.compute(edges + j0, weight_rows, n);
      for (int64_t j = 0; j < n + following; ++j) {
        const int64_t e = edges[j0 + j];
        x_rows[j] = x + senders[e] * s.in_components * C;
        if (j < n) {
          w_rows[j] = block.weights(j);
          angular_factors(cg, coeff, sh + e * s.sh_components, angular.data() + j * nnz);
        }
      }
      const ForwardChunk<T> chunk{n, angular.data(), w_rows.data(), x_rows.data(), following, x_rows.data() + n};
      int64_t c0 = 0;
      for (; c0 + 2 * L <= C; c0 += 2 * L) add_channel_block<Simd<T>, 2>(s, cg, chunk, c0, o);
      for (; c0 + L <= C; c0 += L) add_channel_block<Simd<T>, 1>(s, cg, chunk, c0, o);
      for (; c0 < C; ++c0) add_channel_block<OneLane<T>, 1>(s, cg, chunk, c0, o);
    }
  }
}

// Weight rows per backward block: their radial weights and weight gradients (2 x P x C each) stay
// in L2; a multiple of the dense product's 6-row register tile.
constexpr int64_t kBackwardBlockRows = 12;

template <typename T>
void message_passing_backward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* grad_out,
                              const T* x, const T* sh, const RadialWeights<T>& radial, const int64_t* senders,
                              const int64_t* receivers, const EdgeIndex& by_row, int64_t row_begin,
                              int64_t row_end, T* grad_x_partial, T* grad_sh, T* grad_hidden) {
  const int64_t C = s.channels, row_size = s.paths * C, H = radial.hidden_size;
  const int64_t nnz = static_cast<int64_t>(cg.k_sh.size());
  std::vector<T> w(kBackwardBlockRows * row_size), grad_w(kBackwardBlockRows * row_size);
  std::vector<T> angular(2 * nnz);
  // Edge e: zeroes its grad_sh row and takes its angular factors.
  auto prepare = [&](int64_t e, T* edge_angular) {
    T* dsh = grad_sh + e * s.sh_components;
    std::fill(dsh, dsh + s.sh_components, T(0));
    angular_factors(cg, coeff, sh + e * s.sh_components, edge_angular);
    const int64_t x_row = senders[e] * s.in_components * C;
    return EdgeGradientRows<T>{edge_angular, x + x_row, grad_out + receivers[e] * s.out_components * C,
                               grad_x_partial + x_row, dsh};
  };
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kBackwardBlockRows) {
    const int64_t n = std::min(kBackwardBlockRows, row_end - r0);
    // The rows are consecutive: their hidden features and gradients are read and written in place.
    matmul<T>(StridedRows<T>{radial.hidden + r0 * H, 1, H, 0}, radial.packed_weight, w.data(), H, row_size, 0,
              n, false);
    std::fill(grad_w.begin(), grad_w.begin() + n * row_size, T(0));
    for (int64_t j = 0; j < n; ++j) {
      const int64_t* edges = by_row.edges.data() + by_row.offsets[r0 + j];
      const int64_t count = by_row.offsets[r0 + j + 1] - by_row.offsets[r0 + j];
      const T* row_w = w.data() + j * row_size;
      T* row_grad_w = grad_w.data() + j * row_size;
      // an edge and its reverse together: the weight row and its gradient are loaded once for both
      int64_t i = 0;
      for (; i + 2 <= count; i += 2) {
        const EdgeGradientRows<T> pair[2] = {prepare(edges[i], angular.data()),
                                             prepare(edges[i + 1], angular.data() + nnz)};
        add_edge_gradients<T, 2>(s, cg, coeff, row_w, row_grad_w, pair);
      }
      if (i < count) {
        const EdgeGradientRows<T> single = prepare(edges[i], angular.data());
        add_edge_gradients<T, 1>(s, cg, coeff, row_w, row_grad_w, &single);
      }
    }
    matmul<T>(StridedRows<T>{grad_w.data(), 1, row_size, 0}, radial.packed_weight_t, grad_hidden + r0 * H, row_size,
              H, 0, n, false);
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
