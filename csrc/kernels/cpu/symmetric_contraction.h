// Fused MACE symmetric contraction on the CPU (raw pointers, no torch).
//
// For node n of species s and channel c:
//   out[n, k_out(m), c] = sum_m coeff[s, m, c] * prod_{j < degree(m)} x[n, k_j(m), c]
// The monomials m are rows (k_out, k_1, ..., k_D) of `monomials` with unused factors -1.
// Layouts: x [N, K, C], out [N, K_out, C], coeff [elements, M, C], all contiguous.
#pragma once

#include <cstdint>
#include <vector>

namespace mace_deploy::cpu {

struct ContractionShape {
  int64_t components, channels, out_components, monomials, max_degree;
};

// The monomials regrouped by degree (1..3) as flat rows (m, k_out, k_1, .., k_degree), so that the
// loops over channels are branch-free and vectorise. Built once per call, shared by all threads.
struct MonomialTable {
  std::vector<int64_t> rows[4];
  MonomialTable(const ContractionShape& s, const int64_t* monomials);
};

// Nodes [begin, end) of out [N, K_out, C]; callers split the node range over threads.
template <typename T>
void symmetric_contraction_forward(const ContractionShape& s, const MonomialTable& table, const T* x,
                                   const int64_t* species, const T* coeff, T* out, int64_t begin, int64_t end);

// grad_x[n, k, c] = sum_m grad_out[n, k_out(m), c] * coeff[s, m, c] * d/dx_k prod_j x[n, k_j(m), c]
template <typename T>
void symmetric_contraction_backward(const ContractionShape& s, const MonomialTable& table, const T* grad_out,
                                    const T* x, const int64_t* species, const T* coeff, T* grad_x,
                                    int64_t begin, int64_t end);

}  // namespace mace_deploy::cpu
