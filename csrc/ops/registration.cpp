// Registers the mace_deploy op library with the PyTorch dispatcher.
#include <torch/library.h>

#include "ops/ops.h"

int64_t mace_deploy::ops_library_version() { return kOpsVersion; }

TORCH_LIBRARY(mace_deploy, m) {
  m.def("ops_version() -> int", &mace_deploy::ops_library_version);
  m.def("spherical_harmonics(Tensor vectors, int lmax) -> Tensor");
  m.def(
      "message_passing(Tensor node_feats, Tensor edge_sh, Tensor radial_hidden, Tensor radial_weight, "
      "Tensor weight_rows, Tensor senders, Tensor receivers, int num_receivers, Tensor cg_index, Tensor cg_coeff, "
      "int num_out_components) -> Tensor");
  m.def(
      "message_passing_backward(Tensor grad_out, Tensor node_feats, Tensor edge_sh, Tensor radial_hidden, "
      "Tensor radial_weight, Tensor weight_rows, Tensor senders, Tensor receivers, Tensor cg_index, "
      "Tensor cg_coeff) -> (Tensor, Tensor, Tensor)");
  m.def(
      "species_density(Tensor radial, Tensor edge_sh, Tensor weight_rows, Tensor sender_species, "
      "Tensor receivers, int num_receivers, int num_species) -> Tensor");
  m.def(
      "species_density_backward(Tensor grad_out, Tensor radial, Tensor edge_sh, Tensor weight_rows, "
      "Tensor sender_species, Tensor receivers) -> (Tensor, Tensor)");
  m.def(
      "symmetric_contraction(Tensor x, Tensor species, Tensor monomials, Tensor coefficients, "
      "int num_out_components) -> Tensor");
  m.def(
      "symmetric_contraction_backward(Tensor grad_out, Tensor x, Tensor species, Tensor monomials, "
      "Tensor coefficients) -> Tensor");
  m.def("linear(Tensor x, Tensor weight) -> Tensor");
  m.def("radial_mlp(Tensor x, Tensor output_scale, Tensor[] weights, str activation) -> Tensor");
  m.def("halo_exchange(Tensor local_feats, int num_total, int layer) -> Tensor");
}

// Composite implementations: autograd differentiates through their ATen calls. The fused ops
// register their device kernels and autograd functions next to their kernels.
TORCH_LIBRARY_IMPL(mace_deploy, CompositeImplicitAutograd, m) {
  m.impl("spherical_harmonics", &mace_deploy::spherical_harmonics);
}
