// MACE symmetric contraction evaluated as per-element polynomials in the node features.
//
// Straightforward ATen composition differentiated by autograd; it materialises [N, M, C]
// and is the reference for the fused kernel.
#include "ops/ops.h"

namespace mace_deploy {

at::Tensor symmetric_contraction(const at::Tensor& x, const at::Tensor& species,
                                    const at::Tensor& monomials,
                                    const at::Tensor& coefficients,
                                    int64_t num_out_components) {
  TORCH_CHECK(x.dim() == 3, "symmetric_contraction: x must be [N, K, C]");
  TORCH_CHECK(monomials.dim() == 2 && monomials.size(1) >= 2,
              "symmetric_contraction: monomials must be [M, 1 + degree]");
  TORCH_CHECK(coefficients.dim() == 3 && coefficients.size(1) == monomials.size(0) &&
                  coefficients.size(2) == x.size(2),
              "symmetric_contraction: coefficients must be [elements, M, C]");
  const int64_t num_nodes = x.size(0), channels = x.size(2);

  // prod_j x[n, k_j, u] for every monomial; an unused factor (-1) contributes 1.
  at::Tensor products;
  for (int64_t j = 1; j < monomials.size(1); ++j) {
    const auto k = monomials.select(1, j);
    const auto used = k.ge(0).view({1, -1, 1});
    const auto factor = at::where(used, x.index_select(1, k.clamp_min(0)), 1.0);
    products = products.defined() ? products * factor : factor;
  }
  const auto terms = products * coefficients.index_select(0, species);  // [N, M, C]
  return at::zeros({num_nodes, num_out_components, channels}, x.options())
      .index_add(1, monomials.select(1, 0), terms);
}

}  // namespace mace_deploy
