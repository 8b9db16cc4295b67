// Halo exchange between interaction layers (DESIGN.md, decision 3).
//
// A domain-decomposed host (LAMMPS) owns n_local atoms and keeps copies ("ghosts") of atoms
// within one cutoff that other ranks, or periodic images, own. Interaction layers after the
// first need the ghosts' node features: the host implements this interface and the runtime
// installs it on the calling thread for the model's forward pass (HaloExchangeScope), so that
// torch.ops.mace_deploy.halo_exchange can call it from inside the TorchScript model. Each
// exchange's autograd node keeps the exchange it used, so the backward pass reaches the same
// one from whichever thread autograd runs it on (a CUDA backward runs on torch's device thread).
#pragma once

#include <ATen/ATen.h>

namespace mace_deploy {

class HaloExchange {
 public:
  virtual ~HaloExchange() = default;
  // features [n_total, width] with rows [0, n_local) filled: fill every ghost row with the row of
  // the atom it copies. Every rank must take part in every call, also one with no atoms.
  virtual void forward(at::Tensor features, int64_t n_local, int64_t layer) = 0;
  // gradients [n_total, width]: add every ghost row onto the row of the atom it copies (which
  // may live on another rank); ghost rows are ignored afterwards.
  virtual void reverse(at::Tensor gradients, int64_t n_local, int64_t layer) = 0;
  // values [k] float64 on the CPU: replace them by their sum over all ranks (each rank's share is
  // that of its own atoms), in place. A committee's energy spread is that of the whole system's
  // energies. One process holds the whole system: nothing to do.
  virtual void sum_over_ranks(at::Tensor /*values*/) {}
};

// Installs `exchange` for the calling thread until the scope ends: the forward pass of one
// evaluation must run inside it (its backward needs no scope).
class HaloExchangeScope {
 public:
  explicit HaloExchangeScope(HaloExchange* exchange);
  ~HaloExchangeScope();
  HaloExchangeScope(const HaloExchangeScope&) = delete;
  HaloExchangeScope& operator=(const HaloExchangeScope&) = delete;

 private:
  HaloExchange* previous_;
};

}  // namespace mace_deploy
