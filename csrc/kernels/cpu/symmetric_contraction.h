// Fused MACE symmetric contraction on the CPU (raw pointers, no torch).
//
// For node n of species s and channel c:
//   out[n, k_out(m), c] = sum_m coeff[s, m, c] * prod_{j < degree(m)} x[n, k_j(m), c]
// The monomials m are rows (k_out, k_1, ..., k_D) of `monomials` with unused factors -1.
// Layouts: x [N, K, C], out [N, K_out, C], coeff [elements, M, C], all contiguous.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/shapes.h"

namespace mace_deploy::cpu {

using mace_deploy::ContractionShape;

// The monomials regrouped by degree (1..3) as flat rows (m, k_out, k_1, .., k_degree), so that the
// loops over channels are branch-free and vectorise. Built once per call, shared by all threads.
struct MonomialTable {
  std::vector<int64_t> rows[4];
  MonomialTable(const ContractionShape& s, const int64_t* monomials);
};

// The kernels (KernelTable::symmetric_contraction_forward / _backward, kernels/cpu/kernel_table.h)
// handle nodes [begin, end); callers split the node range over threads. The backward gives
// grad_x[n, k, c] = sum_m grad_out[n, k_out(m), c] * coeff[s, m, c] * d/dx_k prod_j x[n, k_j(m), c].

}  // namespace mace_deploy::cpu
