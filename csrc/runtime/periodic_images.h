// A HaloExchange for one process whose ghost atoms are periodic images of its own atoms: what
// LAMMPS has on one rank, and the reference the MPI exchange of pair_style mace is tested against.
#pragma once

#include <ATen/ATen.h>

#include "ops/halo_exchange.h"

namespace mace_deploy {

class PeriodicImageExchange : public HaloExchange {
 public:
  // owners[g] is the local atom that ghost n_local + g is an image of.
  explicit PeriodicImageExchange(at::Tensor owners) : owners_(std::move(owners)) {}

  void forward(at::Tensor features, int64_t n_local, int64_t /*layer*/) override {
    features.narrow(0, n_local, owners_.size(0)).copy_(features.index_select(0, owners_.to(features.device())));
  }

  void reverse(at::Tensor gradients, int64_t n_local, int64_t /*layer*/) override {
    gradients.narrow(0, 0, n_local)
        .index_add_(0, owners_.to(gradients.device()), gradients.narrow(0, n_local, owners_.size(0)));
  }

 private:
  at::Tensor owners_;
};

}  // namespace mace_deploy
