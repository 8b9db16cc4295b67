// Fused equivariant message passing on the CPU (raw pointers, no torch).
//
// For receiver r, channel c:
//   out[r, k_out, c] = sum_{edges e -> r} sum_q coeff_q * sh[e, k_sh_q] * w[row(e), path_q, c] * x[sender(e), k_in_q, c]
//   w[row, path, c] = sum_h hidden[row, h] * W[h, path * C + c]   (the radial MLP's linear last layer)
// where row(e) = weight_rows[e] lets edges share radial features (an edge and its reverse).
// Summed inside the kernel per receiver (edges visited through a receiver-sorted index, so no
// atomics), without materialising per-edge messages, and without the radial weights w of all
// edges either (W rows x P x C numbers, the largest array of a step): they are computed for a few
// edges at a time into a thread's buffer, in the forward and again in the backward, whose output
// is the gradient w.r.t. the hidden features. Memory thus grows with atoms x features and
// edges x (hidden + harmonics) only (DESIGN.md, decision 4).
// The Clebsch-Gordan entries q are grouped by (path, k_in): w[e, path, c] * x[s, k_in, c] is
// formed once per group and edge. The forward takes a receiver's edges in chunks and one block of
// channels at a time: each group's entries sum over the chunk's edges in registers (a small matrix
// product whose long dimension is the edges), so the receiver's output is read and written once per
// group and chunk rather than per edge.
// Layouts: x [N, K_in, C], sh [E, K_sh], hidden [W, H], W [H, P * C], out [R, K_out, C], contiguous.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/shapes.h"

namespace mace_deploy::cpu {

using mace_deploy::MessageShape;

// Clebsch-Gordan entries regrouped by (path, k_in); entries are numbered in that order.
struct CouplingTable {
  struct Group {
    int64_t path, k_in, begin, end;  // entries [begin, end) of k_sh/k_out/coeff
  };
  std::vector<Group> groups;
  std::vector<int64_t> k_sh, k_out;
  std::vector<int64_t> order;  // entry of the caller's table each position came from
  CouplingTable(const int64_t* cg_index, int64_t nnz);
};

// The radial weights' factors: hidden [rows, hidden_size] and the last layer's weight W
// [hidden_size, P * C], packed by KernelTable::pack_columns as W (forward) and as its transpose
// [P * C, hidden_size] (backward).
template <typename T>
struct RadialWeights {
  const T* hidden;
  int64_t hidden_size;
  const T* packed_weight;
  const T* packed_weight_t;
};

// Edges grouped by a node index (CSR): edges of node v are edges[offsets[v] .. offsets[v + 1]).
struct EdgeIndex {
  std::vector<int64_t> offsets, edges;
  EdgeIndex(const int64_t* node_of_edge, int64_t num_edges, int64_t num_nodes);
};

// Row ranges [row_begin[t], row_begin[t + 1]) for `parts` threads, contiguous and balanced by
// their edge count (by_row: edges grouped by weight row); row_begin has parts + 1 entries.
std::vector<int64_t> balanced_row_ranges(const EdgeIndex& by_row, int64_t parts);

// Work split of a backward over `parts` threads: part t owns the weight rows
// [row_begin[t], row_begin[t + 1]) (balanced_row_ranges), so the edges sharing a row add their
// gradients into it from one thread; it visits the edges of its rows,
// edges[edge_offsets[t] .. edge_offsets[t + 1]), in receiver order, so each receiver's grad_out
// rows are read from cache once per receiver (kernels/cpu/species_density.h).
struct RowPartition {
  std::vector<int64_t> row_begin, edge_offsets, edges;
  RowPartition(const int64_t* weight_rows, const int64_t* receivers, int64_t num_edges, int64_t num_rows,
               int64_t num_receivers, int64_t parts);
};

// The kernels (KernelTable::message_passing_forward / _backward, kernels/cpu/kernel_table.h):
// - forward: out rows of receivers [begin, end), visiting each receiver's edges (by_receiver).
// - backward: the weight rows [row_begin, row_end) of balanced_row_ranges, visiting the edges of
//   each row (by_row) together, so that an edge and its reverse share their radial weights and
//   weight gradients (formed once per row): grad_hidden of those rows, grad_sh of their edges,
//   and their contributions to grad_x accumulated into `grad_x_partial` (zeroed by the caller; one
//   per thread, summed afterwards, since edges of different parts share senders).

}  // namespace mace_deploy::cpu
