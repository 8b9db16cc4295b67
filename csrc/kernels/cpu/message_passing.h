// Fused equivariant message passing on the CPU (raw pointers, no torch).
//
// For receiver r, channel c:
//   out[r, k_out, c] = sum_{edges e -> r} sum_q coeff_q * sh[e, k_sh_q] * w[row(e), path_q, c] * x[sender(e), k_in_q, c]
// where row(e) = weight_rows[e] lets edges share radial weights (an edge and its reverse).
// summed inside the kernel per receiver (edges visited through a receiver-sorted index, so no
// atomics), without materialising per-edge messages. The Clebsch-Gordan entries q are grouped
// by (path, k_in): w[e, path, c] * x[s, k_in, c] is formed once per group and edge.
// Layouts: x [N, K_in, C], sh [E, K_sh], w [W, P, C], out [R, K_out, C], contiguous.
#pragma once

#include <cstdint>
#include <vector>

namespace mace_deploy::cpu {

struct MessageShape {
  int64_t in_components, channels, sh_components, paths, out_components;
};

// Clebsch-Gordan entries regrouped by (path, k_in).
struct CouplingTable {
  struct Group {
    int64_t path, k_in, begin, end;  // entries [begin, end) of k_sh/k_out/coeff
  };
  std::vector<Group> groups;
  std::vector<int64_t> k_sh, k_out;
  std::vector<int64_t> order;  // entry of the caller's table each position came from
  CouplingTable(const int64_t* cg_index, int64_t nnz);
};

// Edges grouped by a node index (CSR): edges of node v are edges[offsets[v] .. offsets[v + 1]).
struct EdgeIndex {
  std::vector<int64_t> offsets, edges;
  EdgeIndex(const int64_t* node_of_edge, int64_t num_edges, int64_t num_nodes);
};

// Receivers [begin, end).
template <typename T>
void message_passing_forward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* x,
                             const T* sh, const T* w, const int64_t* weight_rows, const int64_t* senders,
                             const EdgeIndex& by_receiver, T* out, int64_t begin, int64_t end);

// Gradients for the edges of receivers [begin, end): grad_sh and grad_w_edges rows of those edges
// (per edge, [E, P, C]: the caller sums the rows of edges sharing weights), and
// their contributions to grad_x accumulated into `grad_x_partial` (zeroed by the caller; one per
// thread, summed afterwards, since edges of different receivers share senders). Visiting edges
// by receiver keeps each receiver's grad_out rows in cache, as the forward does.
template <typename T>
void message_passing_backward(const MessageShape& s, const CouplingTable& cg, const T* coeff, const T* grad_out,
                              const T* x, const T* sh, const T* w, const int64_t* weight_rows,
                              const int64_t* senders, const EdgeIndex& by_receiver, T* grad_x_partial, T* grad_sh,
                              T* grad_w_edges, int64_t begin, int64_t end);

}  // namespace mace_deploy::cpu
