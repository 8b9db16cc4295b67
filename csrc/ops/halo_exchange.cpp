// torch.ops.mace_deploy.halo_exchange: calls the host's HaloExchange installed for this thread in
// the forward pass, and the same exchange again in the backward pass, on any thread.
#include "ops/halo_exchange.h"

#include <torch/autograd.h>
#include <torch/library.h>

#include "ops/ops.h"

namespace mace_deploy {
namespace {

thread_local HaloExchange* current_exchange = nullptr;

HaloExchange& installed(int64_t ghosts, int64_t layer) {
  TORCH_CHECK(current_exchange != nullptr, "not supported: this graph has ", ghosts,
              " ghost atoms, whose features for interaction layer ", layer,
              " need a halo exchange by the host (LAMMPS); single-process hosts must pass periodic images as "
              "edges between local atoms, with n_local = all atoms");
  return *current_exchange;
}

class HaloExchangeFunction : public torch::autograd::Function<HaloExchangeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& local_feats,
                            int64_t num_total, int64_t layer) {
    const int64_t n_local = local_feats.size(0);
    TORCH_CHECK(num_total >= n_local, "halo_exchange: num_total must be at least the number of local rows");
    HaloExchange& exchange = installed(num_total - n_local, layer);
    auto shape = local_feats.sizes().vec();
    shape[0] = num_total;
    auto full = at::zeros(shape, local_feats.options());
    full.narrow(0, 0, n_local).copy_(local_feats);
    exchange.forward(full.flatten(1), n_local, layer);  // a view: full is contiguous
    ctx->saved_data["n_local"] = n_local;
    ctx->saved_data["layer"] = layer;
    // The exchange outlives the node: the host's evaluation (Model::compute) runs the backward
    // before it returns. An autograd context holds IValues only, hence the address as an integer.
    ctx->saved_data["exchange"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(&exchange));
    return full;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const int64_t n_local = ctx->saved_data["n_local"].toInt(), layer = ctx->saved_data["layer"].toInt();
    auto grad = grad_outputs[0].contiguous().clone();
    auto* exchange = reinterpret_cast<HaloExchange*>(static_cast<intptr_t>(ctx->saved_data["exchange"].toInt()));
    exchange->reverse(grad.flatten(1), n_local, layer);
    return {grad.narrow(0, 0, n_local), at::Tensor(), at::Tensor()};
  }
};

at::Tensor halo_exchange_autograd(const at::Tensor& local_feats, int64_t num_total, int64_t layer) {
  // A host with an exchange installed (LAMMPS) is called for every layer, ghosts or not, so that
  // all ranks take part in every exchange; without one, a ghost-free graph needs nothing.
  if (current_exchange == nullptr && num_total == local_feats.size(0)) return local_feats;
  return HaloExchangeFunction::apply(local_feats, num_total, layer);
}

}  // namespace

HaloExchangeScope::HaloExchangeScope(HaloExchange* exchange) : previous_(current_exchange) {
  current_exchange = exchange;
}

HaloExchangeScope::~HaloExchangeScope() { current_exchange = previous_; }

// Registered for every backend: the exchange itself is the host's, on host or device tensors.
TORCH_LIBRARY_IMPL(mace_deploy, CompositeImplicitAutograd, m) { m.impl("halo_exchange", &halo_exchange_autograd); }

}  // namespace mace_deploy
