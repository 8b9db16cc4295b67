// Equivariant message passing (tensor product of sender features with edge spherical harmonics,
// weighted per edge and channel, summed over each receiver's edges).
//
// Straightforward ATen composition: autograd differentiates it, but it materialises a per-edge
// tensor of size [E, nnz, C]. It is the reference the fused kernels are checked against.
#include "ops/ops.h"

namespace mace_deploy {

at::Tensor message_passing(const at::Tensor& node_feats, const at::Tensor& edge_sh,
                              const at::Tensor& edge_weights, const at::Tensor& senders,
                              const at::Tensor& receivers, int64_t num_receivers,
                              const at::Tensor& cg_index, const at::Tensor& cg_coeff,
                              int64_t num_out_components) {
  TORCH_CHECK(node_feats.dim() == 3, "message_passing: node_feats must be [N, K, C]");
  TORCH_CHECK(edge_weights.dim() == 3 && edge_weights.size(2) == node_feats.size(2),
              "message_passing: edge_weights must be [E, paths, C]");
  TORCH_CHECK(cg_index.dim() == 2 && cg_index.size(1) == 4, "message_passing: cg_index must be [nnz, 4]");
  const int64_t num_edges = senders.size(0), channels = node_feats.size(2);

  const auto k_in = cg_index.select(1, 0), k_sh = cg_index.select(1, 1);
  const auto k_out = cg_index.select(1, 2), path = cg_index.select(1, 3);

  const auto sender_feats = node_feats.index_select(0, senders).index_select(1, k_in);  // [E, nnz, C]
  const auto angular = (edge_sh.index_select(1, k_sh) * cg_coeff).unsqueeze(-1);       // [E, nnz, 1]
  const auto terms = sender_feats * edge_weights.index_select(1, path) * angular;       // [E, nnz, C]

  const auto per_edge = at::zeros({num_edges, num_out_components, channels}, node_feats.options())
                            .index_add(1, k_out, terms);
  return at::zeros({num_receivers, num_out_components, channels}, node_feats.options())
      .index_add(0, receivers, per_edge);
}

}  // namespace mace_deploy
