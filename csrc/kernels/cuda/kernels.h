// Fused MACE kernels on CUDA GPUs (raw device pointers, no torch): the same sums as the CPU
// kernels of kernels/cpu (see their headers for the formulas), for float and double.
//
// Work is split so that every output element has one owner thread and no atomics are needed,
// which keeps results deterministic run to run:
// - outputs summed over a node's edges: one thread block per node, one thread per channel,
//   edges found through an edge grouping (CSR) by that node;
// - gradients of per-edge-row quantities (radial weights): one block per weight row, visiting the
//   edges that share it; per-edge gradients (spherical harmonics) are reductions over channels
//   inside that block.
// Every launcher runs on `stream` and reports launch errors with cuda_check (throws).
#pragma once

#include <cstdint>

#include "kernels/shapes.h"

struct CUstream_st;

namespace mace_deploy::cuda {

using Stream = CUstream_st*;

// Edges grouped by a node index: the edges of node v are edges[offsets[v] .. offsets[v + 1]).
struct EdgeGroups {
  const int64_t* offsets;
  const int64_t* edges;
  int64_t num_nodes;
};

// Clebsch-Gordan entries: rows (k_in, k_sh, k_out, path) of a [nnz, 4] int64 table with their
// coefficients. `transposed` swaps the roles of k_in and k_out, so that the forward kernel also
// computes the node-feature gradient (sum over a sender's edges of grad_out through the
// transposed coupling).
struct Couplings {
  const int64_t* index;
  const void* coeff;
  int64_t nnz;
  bool transposed;
};

// out[r, k_out, c] = sum over edges e of r (by_receiver), entries q:
//   coeff_q * sh[e, k_sh] * w[weight_rows[e], path, c] * x[senders[e], k_in, c]
template <typename T>
void message_passing_forward(const MessageShape& s, const Couplings& cg, const T* x, const T* sh, const T* w,
                             const int64_t* weight_rows, const int64_t* senders, const EdgeGroups& by_receiver,
                             T* out, Stream stream);

// grad_sh [E, K_sh] and grad_w [W, P, C] (every row written) of message_passing_forward, visiting
// the edges of each weight row (by_row).
template <typename T>
void message_passing_weight_gradients(const MessageShape& s, const Couplings& cg, const T* grad_out, const T* x,
                                      const T* sh, const T* w, const int64_t* senders, const int64_t* receivers,
                                      const EdgeGroups& by_row, T* grad_sh, T* grad_w, Stream stream);

// out [R, M, S, K] (every element written):
//   out[r, m, s, k] = sum over edges e of r with sender_species[e] == s of sh[e, m] * radial[weight_rows[e], k]
template <typename T>
void species_density_forward(const DensityShape& s, const T* radial, const T* sh, const int64_t* weight_rows,
                             const int64_t* sender_species, const EdgeGroups& by_receiver, T* out, Stream stream);

// grad_radial [W, K] and grad_sh [E, M] (every row written), visiting the edges of each weight row.
template <typename T>
void species_density_backward(const DensityShape& s, const T* grad_out, const T* radial, const T* sh,
                              const int64_t* sender_species, const int64_t* receivers, const EdgeGroups& by_row,
                              T* grad_radial, T* grad_sh, Stream stream);

// out[n, k_out(m), c] = sum_m coeff[species[n], m, c] * prod_j x[n, k_j(m), c] for nodes n < `nodes`
// (monomials [M, 1 + max_degree] int64, unused factors -1).
template <typename T>
void symmetric_contraction_forward(const ContractionShape& s, int64_t nodes, const int64_t* monomials, const T* x,
                                   const int64_t* species, const T* coeff, T* out, Stream stream);

template <typename T>
void symmetric_contraction_backward(const ContractionShape& s, int64_t nodes, const int64_t* monomials,
                                    const T* grad_out, const T* x, const int64_t* species, const T* coeff, T* grad_x,
                                    Stream stream);

}  // namespace mace_deploy::cuda
