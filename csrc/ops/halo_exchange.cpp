// Halo exchange of node features between interaction layers (domain-decomposed hosts only).
#include "ops/ops.h"

namespace mace_deploy {

at::Tensor halo_exchange(const at::Tensor& local_feats, int64_t num_total, int64_t layer) {
  TORCH_CHECK(false, "not supported: this graph has ", num_total - local_feats.size(0),
              " ghost atoms, whose features for interaction layer ", layer,
              " need a halo exchange by the host; only LAMMPS (pair_style mace) provides one. "
              "Single-process hosts must pass periodic images as edges with n_local = all atoms.");
}

}  // namespace mace_deploy
