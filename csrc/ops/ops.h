// TorchScript custom ops of mace-deploy (torch.ops.mace_deploy.*).
//
// Every artifact calls these ops; their schemas are part of the artifact format, so a change
// of schema or meaning bumps kOpsVersion (checked by the runtime when it loads an artifact).
//
// Feature tensors use the layout [nodes, irrep components, channels]: the channel index is
// innermost so kernels vectorise over channels.
//
// Every op runs on the CPU and, in builds against a CUDA torch, on CUDA GPUs (kernels/cuda; the
// same artifact runs on either). All inputs of a call must be on one device. Index ranges (senders,
// receivers, rows, species, coupling tables) are checked on the CPU only: on a GPU the check would
// synchronise the device at every call, and the model builds these indices itself.
#pragma once

#include <ATen/ATen.h>

namespace mace_deploy {

// 2: message_passing takes weight_rows; 3: linear; 4: species_density; 5: linear takes [n, d, K];
// 6: message_passing takes the radial hidden features and last layer instead of the radial weights;
// radial_mlp
constexpr int64_t kOpsVersion = 6;

// Version of the op library actually loaded. Defined out of line so that every library using it
// links (and so loads, registering the ops) libmace_deploy_ops.
int64_t ops_library_version();

// Real spherical harmonics of the normalised edge vectors in e3nn's convention
// (normalize=True, normalization="component"): [E, 3] -> [E, (lmax + 1)^2].
at::Tensor spherical_harmonics(const at::Tensor& vectors, int64_t lmax);

// Equivariant message passing: for every edge e (sender s, receiver r) and every non-zero
// Clebsch-Gordan entry q = (k_in, k_sh, k_out, path) with coefficient c_q,
//   out[r, k_out, u] += c_q * w[weight_rows[e], path, u] * node_feats[s, k_in, u] * sh[e, k_sh],
//   w[row, path, u] = sum_h radial_hidden[row, h] * radial_weight[h, path * C + u]
// (w: the radial MLP's output, whose linear last layer is radial_weight; never stored for all rows).
// node_feats [N, K_in, C], edge_sh [E, K_sh], radial_hidden [W, H], radial_weight [H, P * C],
// weight_rows [E] int64 (edges may share a row: an edge and its reverse do), cg_index [nnz, 4]
// int64, cg_coeff [nnz] -> [num_receivers, K_out, C].
// Fused kernel (kernels/cpu/message_passing.h); differentiable in node_feats, edge_sh and
// radial_hidden (radial_weight must not require grad).
at::Tensor message_passing(const at::Tensor& node_feats, const at::Tensor& edge_sh, const at::Tensor& radial_hidden,
                           const at::Tensor& radial_weight, const at::Tensor& weight_rows, const at::Tensor& senders,
                           const at::Tensor& receivers, int64_t num_receivers, const at::Tensor& cg_index,
                           const at::Tensor& cg_coeff, int64_t num_out_components);

// Neighbour density by sender element: for every edge e (receiver r, sender element s_e),
//   out[r, m, s_e, k] += edge_sh[e, m] * radial[weight_rows[e], k].
// radial [W, K], edge_sh [E, M], weight_rows / sender_species (in [0, num_species)) / receivers
// int64 [E] -> [num_receivers, M, num_species, K]. The first layer's message passing, regrouped
// (model/interaction.py). Kernel kernels/cpu/species_density.h; differentiable in radial, edge_sh.
at::Tensor species_density(const at::Tensor& radial, const at::Tensor& edge_sh, const at::Tensor& weight_rows,
                           const at::Tensor& sender_species, const at::Tensor& receivers, int64_t num_receivers,
                           int64_t num_species);

// MACE symmetric contraction as per-element polynomials in the node features:
//   out[n, k_out(m), u] = sum_m coefficients[species[n], m, u] * prod_j x[n, k_j(m), u]
// monomials [M, 1 + D] int64 rows (k_out, k_1, ..., k_D), unused factors -1, D <= 3;
// x [N, K, C], species [N] int64, coefficients [num_elements, M, C] -> [N, K_out, C].
// Fused kernel (kernels/cpu/symmetric_contraction.h); differentiable in x.
at::Tensor symmetric_contraction(const at::Tensor& x, const at::Tensor& species,
                                 const at::Tensor& monomials, const at::Tensor& coefficients,
                                 int64_t num_out_components);

// Dense product x [M, K] @ weight [K, N] -> [M, N], or per row of x [n, d, K] -> [n, d, N] (radial
// MLP layers, equivariant linears); x is read in place where its last dimension is contiguous.
// Differentiable in x only (weight must not require grad). Register-blocked kernel
// (kernels/cpu/dense.h).
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight);

// radial_mlp(Tensor x [M, K], Tensor output_scale [M, 1], Tensor[] weights, str activation) ->
// act(... act(act(x @ w0) @ w1) ...) * output_scale: the hidden layers of a radial MLP, whose
// activations are recomputed in the backward pass instead of kept (ops/radial_mlp.cpp);
// differentiable in x and output_scale.

// halo_exchange(Tensor local_feats [n_local, ...], int num_total, int layer) -> [num_total, ...]
// fills the ghost rows through the host's HaloExchange (ops/halo_exchange.h) and sends ghost
// gradients back to their owners in the backward pass.

}  // namespace mace_deploy
