// torch.ops.mace_deploy.message_passing: the fused kernel of kernels/cpu with its derivatives
// (node features, spherical harmonics, radial hidden features), registered per device with a C++
// autograd function on top.
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <algorithm>

#include "kernels/cpu/kernel_table.h"
#include "ops/input_checks.h"
#include "ops/packed_columns.h"
#include "ops/ops.h"
#ifdef MACE_DEPLOY_WITH_CUDA
#include "ops/cuda_support.h"
#endif

namespace mace_deploy {
namespace {

// Paths of the radial weights [H, paths * C] for node features [N, K, C].
int64_t num_paths(const at::Tensor& x, const at::Tensor& weight) { return x.size(2) > 0 ? weight.size(1) / x.size(2) : 0; }

// The last radial layer's weight W [H, P * C] packed for the kernels' products, as W and as W^T.
struct PackedRadialWeight {
  at::Tensor weight, transposed;
  PackedRadialWeight(const at::Tensor& w, bool with_transposed) {
    AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "pack_radial_weight", [&] {
      weight = packed_columns<scalar_t>(w);
      if (with_transposed) transposed = packed_columns<scalar_t>(w.t());
    });
  }
  template <typename T>
  cpu::RadialWeights<T> view(const at::Tensor& hidden) const {
    return {hidden.data_ptr<T>(), hidden.size(1), weight.data_ptr<T>(),
            transposed.defined() ? transposed.data_ptr<T>() : nullptr};
  }
};

void check_inputs(const at::Tensor& x, const at::Tensor& sh, const at::Tensor& hidden, const at::Tensor& weight,
                  const at::Tensor& weight_rows, const at::Tensor& senders, const at::Tensor& receivers,
                  int64_t num_receivers, const at::Tensor& cg_index, const at::Tensor& cg_coeff,
                  int64_t out_components) {
  TORCH_CHECK(x.dim() == 3, "message_passing: node_feats must be [N, K, C]");
  const int64_t edges = senders.size(0);
  TORCH_CHECK(sh.dim() == 2 && sh.size(0) == edges, "message_passing: edge_sh must be [E, K_sh]");
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && weight.size(0) == hidden.size(1) &&
                  weight.size(1) % std::max<int64_t>(1, x.size(2)) == 0,
              "message_passing: radial_hidden must be [W, H] and radial_weight [H, paths * C]");
  TORCH_CHECK(!weight.requires_grad(), "message_passing: radial_weight must not require grad (a model constant)");
  TORCH_CHECK(weight_rows.dim() == 1 && weight_rows.size(0) == edges && weight_rows.scalar_type() == at::kLong,
              "message_passing: weight_rows must be int64 [E]");
  TORCH_CHECK(senders.dim() == 1 && receivers.dim() == 1 && receivers.size(0) == edges &&
                  senders.scalar_type() == at::kLong && receivers.scalar_type() == at::kLong,
              "message_passing: senders and receivers must be int64 [E]");
  TORCH_CHECK(cg_index.dim() == 2 && cg_index.size(1) == 4 && cg_index.scalar_type() == at::kLong &&
                  cg_coeff.dim() == 1 && cg_coeff.size(0) == cg_index.size(0),
              "message_passing: cg_index must be int64 [nnz, 4] and cg_coeff [nnz]");
  TORCH_CHECK(sh.scalar_type() == x.scalar_type() && hidden.scalar_type() == x.scalar_type() &&
                  weight.scalar_type() == x.scalar_type() && cg_coeff.scalar_type() == x.scalar_type(),
              "message_passing: all floating-point inputs must have one dtype");
  check_one_device("message_passing", x, {sh, hidden, weight, weight_rows, senders, receivers, cg_index, cg_coeff});
  // Index ranges are checked on the CPU only: on a GPU it would synchronise every call, and the
  // model makes the indices itself.
  if (!x.is_cpu()) return;
  if (cg_index.size(0) > 0) {
    const auto hi = std::get<0>(cg_index.max(0)), lo = std::get<0>(cg_index.min(0));
    TORCH_CHECK(lo.min().item<int64_t>() >= 0 && hi[0].item<int64_t>() < x.size(1) &&
                    hi[1].item<int64_t>() < sh.size(1) && hi[2].item<int64_t>() < out_components &&
                    hi[3].item<int64_t>() < num_paths(x, weight),
                "message_passing: a cg_index entry (k_in, k_sh, k_out, path) is outside the feature shapes");
  }
  if (edges > 0) {
    TORCH_CHECK(senders.min().item<int64_t>() >= 0 && senders.max().item<int64_t>() < x.size(0),
                "message_passing: a sender index is outside the node features");
    TORCH_CHECK(receivers.min().item<int64_t>() >= 0 && receivers.max().item<int64_t>() < num_receivers,
                "message_passing: a receiver index is outside [0, num_receivers)");
    TORCH_CHECK(weight_rows.min().item<int64_t>() >= 0 && weight_rows.max().item<int64_t>() < hidden.size(0),
                "message_passing: a weight row is outside radial_hidden");
  }
}

MessageShape shape_of(const at::Tensor& x, const at::Tensor& sh, int64_t paths, int64_t out_components) {
  return {x.size(1), x.size(2), sh.size(1), paths, out_components};
}

// Nodes per task: each visits its edges, ~nnz x C work per edge.
int64_t grain(const at::Tensor& x, int64_t edges, int64_t nodes, int64_t nnz) {
  const int64_t per_node = std::max<int64_t>(1, edges / std::max<int64_t>(1, nodes)) * nnz * x.size(2);
  return std::max<int64_t>(1, 262144 / std::max<int64_t>(1, per_node));
}

at::Tensor forward_cpu(const at::Tensor& x_in, const at::Tensor& sh_in, const at::Tensor& hidden_in,
                       const at::Tensor& weight_in, const at::Tensor& weight_rows_in, const at::Tensor& senders_in,
                       const at::Tensor& receivers_in, int64_t num_receivers, const at::Tensor& cg_index_in,
                       const at::Tensor& cg_coeff_in, int64_t out_components) {
  check_inputs(x_in, sh_in, hidden_in, weight_in, weight_rows_in, senders_in, receivers_in, num_receivers,
               cg_index_in, cg_coeff_in, out_components);
  const auto x = x_in.contiguous(), sh = sh_in.contiguous(), hidden = hidden_in.contiguous();
  const auto weight_rows = weight_rows_in.contiguous();
  const auto senders = senders_in.contiguous(), receivers = receivers_in.contiguous();
  const auto cg_index = cg_index_in.contiguous();
  const cpu::CouplingTable table(cg_index.data_ptr<int64_t>(), cg_index.size(0));
  const auto coeff = cg_coeff_in.index_select(0, at::tensor(table.order, cg_index.options())).contiguous();
  const cpu::EdgeIndex by_receiver(receivers.data_ptr<int64_t>(), receivers.size(0), num_receivers);
  const PackedRadialWeight packed(weight_in, /*with_transposed=*/false);
  const auto shape = shape_of(x, sh, num_paths(x, weight_in), out_components);
  auto out = at::empty({num_receivers, out_components, x.size(2)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "message_passing_forward", [&] {
    const auto radial = packed.view<scalar_t>(hidden);
    at::parallel_for(0, num_receivers, grain(x, senders.size(0), num_receivers, cg_index.size(0)),
                     [&](int64_t begin, int64_t end) {
                       cpu::kernels<scalar_t>().message_passing_forward(
                           shape, table, coeff.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), sh.data_ptr<scalar_t>(),
                           radial, weight_rows.data_ptr<int64_t>(), senders.data_ptr<int64_t>(), by_receiver,
                           out.data_ptr<scalar_t>(), begin, end);
                     });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_cpu(
    const at::Tensor& grad_out_in, const at::Tensor& x_in, const at::Tensor& sh_in, const at::Tensor& hidden_in,
    const at::Tensor& weight_in, const at::Tensor& weight_rows_in, const at::Tensor& senders_in,
    const at::Tensor& receivers_in, const at::Tensor& cg_index_in, const at::Tensor& cg_coeff_in) {
  const auto grad_out = grad_out_in.contiguous(), x = x_in.contiguous(), sh = sh_in.contiguous();
  const auto hidden = hidden_in.contiguous(), senders = senders_in.contiguous();
  const auto receivers = receivers_in.contiguous(), weight_rows = weight_rows_in.contiguous();
  const auto cg_index = cg_index_in.contiguous();
  const cpu::CouplingTable table(cg_index.data_ptr<int64_t>(), cg_index.size(0));
  const auto coeff = cg_coeff_in.index_select(0, at::tensor(table.order, cg_index.options())).contiguous();
  const PackedRadialWeight packed(weight_in, /*with_transposed=*/true);
  const auto shape = shape_of(x, sh, num_paths(x, weight_in), grad_out.size(1));
  const int64_t parts = at::get_num_threads();
  const cpu::EdgeIndex by_row(weight_rows.data_ptr<int64_t>(), weight_rows.size(0), hidden.size(0));
  const auto row_begin = cpu::balanced_row_ranges(by_row, parts);
  // One grad_x accumulator per thread: edges of different parts share senders.
  auto partial = at::zeros({parts, x.size(0), x.size(1), x.size(2)}, x.options());
  auto grad_sh = at::empty_like(sh);
  auto grad_hidden = at::empty_like(hidden);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "message_passing_backward", [&] {
    const auto radial = packed.view<scalar_t>(hidden);
    at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        cpu::kernels<scalar_t>().message_passing_backward(
            shape, table, coeff.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
            sh.data_ptr<scalar_t>(), radial, senders.data_ptr<int64_t>(), receivers.data_ptr<int64_t>(), by_row,
            row_begin[t], row_begin[t + 1], partial[at::get_thread_num()].data_ptr<scalar_t>(),
            grad_sh.data_ptr<scalar_t>(), grad_hidden.data_ptr<scalar_t>());
      }
    });
  });
  const auto grad_x = partial.size(0) == 1 ? partial[0] : partial.sum(0);
  return {grad_x, grad_sh, grad_hidden};
}

#ifdef MACE_DEPLOY_WITH_CUDA
// On CUDA the radial weights of all edges are still formed in one product ([W, P * C] on the
// device; not yet the per-tile evaluation of the CPU kernels), then passed to the fused kernels.
at::Tensor radial_weights_of(const at::Tensor& x, const at::Tensor& hidden, const at::Tensor& weight) {
  return at::matmul(hidden, weight).view({hidden.size(0), num_paths(x, weight), x.size(2)}).contiguous();
}

at::Tensor forward_cuda(const at::Tensor& x_in, const at::Tensor& sh_in, const at::Tensor& hidden_in,
                        const at::Tensor& weight_in, const at::Tensor& weight_rows_in, const at::Tensor& senders_in,
                        const at::Tensor& receivers_in, int64_t num_receivers, const at::Tensor& cg_index_in,
                        const at::Tensor& cg_coeff_in, int64_t out_components) {
  check_inputs(x_in, sh_in, hidden_in, weight_in, weight_rows_in, senders_in, receivers_in, num_receivers,
               cg_index_in, cg_coeff_in, out_components);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto x = x_in.contiguous(), sh = sh_in.contiguous(), w = radial_weights_of(x, hidden_in, weight_in);
  const auto weight_rows = weight_rows_in.contiguous(), senders = senders_in.contiguous();
  const auto cg_index = cg_index_in.contiguous(), cg_coeff = cg_coeff_in.contiguous();
  const DeviceEdgeGroups by_receiver(receivers_in.contiguous(), num_receivers);
  auto out = at::empty({num_receivers, out_components, x.size(2)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "message_passing_forward_cuda", [&] {
    const cuda::Couplings couplings{cg_index.data_ptr<int64_t>(), cg_coeff.data_ptr<scalar_t>(), cg_index.size(0),
                                    /*transposed=*/false};
    cuda::message_passing_forward<scalar_t>(shape_of(x, sh, w.size(1), out_components), couplings,
                                            x.data_ptr<scalar_t>(), sh.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                                            weight_rows.data_ptr<int64_t>(), senders.data_ptr<int64_t>(),
                                            by_receiver.view(), out.data_ptr<scalar_t>(), current_stream());
  });
  return out;
}

// grad_x is the forward over the edges grouped by sender through the transposed coupling
// (grad_out in the role of the node features); grad_sh and the radial weights' gradient come from
// one pass over the edges grouped by weight row, then grad_hidden = grad_w W^T.
std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_cuda(
    const at::Tensor& grad_out_in, const at::Tensor& x_in, const at::Tensor& sh_in, const at::Tensor& hidden_in,
    const at::Tensor& weight_in, const at::Tensor& weight_rows_in, const at::Tensor& senders_in,
    const at::Tensor& receivers_in, const at::Tensor& cg_index_in, const at::Tensor& cg_coeff_in) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto grad_out = grad_out_in.contiguous(), x = x_in.contiguous(), sh = sh_in.contiguous();
  const auto w = radial_weights_of(x, hidden_in, weight_in);
  const auto senders = senders_in.contiguous(), receivers = receivers_in.contiguous();
  const auto weight_rows = weight_rows_in.contiguous();
  const auto cg_index = cg_index_in.contiguous(), cg_coeff = cg_coeff_in.contiguous();
  const DeviceEdgeGroups by_sender(senders, x.size(0)), by_row(weight_rows, w.size(0));
  auto grad_x = at::empty_like(x), grad_sh = at::empty_like(sh), grad_w = at::empty_like(w);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "message_passing_backward_cuda", [&] {
    const auto* coeff = cg_coeff.data_ptr<scalar_t>();
    const cuda::Couplings forward{cg_index.data_ptr<int64_t>(), coeff, cg_index.size(0), /*transposed=*/false};
    const cuda::Couplings transposed{cg_index.data_ptr<int64_t>(), coeff, cg_index.size(0), /*transposed=*/true};
    cuda::message_passing_forward<scalar_t>(
        shape_of(grad_out, sh, w.size(1), x.size(1)), transposed, grad_out.data_ptr<scalar_t>(),
        sh.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), weight_rows.data_ptr<int64_t>(),
        receivers.data_ptr<int64_t>(), by_sender.view(), grad_x.data_ptr<scalar_t>(), current_stream());
    cuda::message_passing_weight_gradients<scalar_t>(
        shape_of(x, sh, w.size(1), grad_out.size(1)), forward, grad_out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
        sh.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), senders.data_ptr<int64_t>(), receivers.data_ptr<int64_t>(),
        by_row.view(), grad_sh.data_ptr<scalar_t>(), grad_w.data_ptr<scalar_t>(), current_stream());
  });
  return {grad_x, grad_sh, at::matmul(grad_w.view({w.size(0), -1}), weight_in.t())};
}
#endif

// Differentiable in the node features, spherical harmonics and radial hidden features.
class MessagePassing : public torch::autograd::Function<MessagePassing> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& sh,
                            const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& weight_rows,
                            const at::Tensor& senders, const at::Tensor& receivers, int64_t num_receivers,
                            const at::Tensor& cg_index, const at::Tensor& cg_coeff, int64_t out_components) {
    ctx->save_for_backward({x, sh, hidden, weight, weight_rows, senders, receivers, cg_index, cg_coeff});
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("mace_deploy::message_passing", "")
                         .typed<decltype(message_passing)>();
    return op.call(x, sh, hidden, weight, weight_rows, senders, receivers, num_receivers, cg_index, cg_coeff,
                   out_components);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("mace_deploy::message_passing_backward", "")
                         .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, const at::Tensor&)>();
    auto [grad_x, grad_sh, grad_hidden] =
        op.call(grad_outputs[0], s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]);
    return {grad_x,      grad_sh,     grad_hidden, at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor autograd_impl(const at::Tensor& x, const at::Tensor& sh, const at::Tensor& hidden,
                         const at::Tensor& weight, const at::Tensor& weight_rows, const at::Tensor& senders,
                         const at::Tensor& receivers, int64_t num_receivers, const at::Tensor& cg_index,
                         const at::Tensor& cg_coeff, int64_t out_components) {
  return MessagePassing::apply(x, sh, hidden, weight, weight_rows, senders, receivers, num_receivers, cg_index,
                               cg_coeff, out_components);
}

}  // namespace

at::Tensor message_passing(const at::Tensor& node_feats, const at::Tensor& edge_sh, const at::Tensor& radial_hidden,
                           const at::Tensor& radial_weight, const at::Tensor& weight_rows, const at::Tensor& senders,
                           const at::Tensor& receivers, int64_t num_receivers, const at::Tensor& cg_index,
                           const at::Tensor& cg_coeff, int64_t num_out_components) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mace_deploy::message_passing", "")
                       .typed<decltype(message_passing)>();
  return op.call(node_feats, edge_sh, radial_hidden, radial_weight, weight_rows, senders, receivers, num_receivers,
                 cg_index, cg_coeff, num_out_components);
}

TORCH_LIBRARY_IMPL(mace_deploy, CPU, m) {
  m.impl("message_passing", &forward_cpu);
  m.impl("message_passing_backward", &backward_cpu);
}

#ifdef MACE_DEPLOY_WITH_CUDA
TORCH_LIBRARY_IMPL(mace_deploy, CUDA, m) {
  m.impl("message_passing", &forward_cuda);
  m.impl("message_passing_backward", &backward_cuda);
}
#endif

TORCH_LIBRARY_IMPL(mace_deploy, Autograd, m) { m.impl("message_passing", &autograd_impl); }

}  // namespace mace_deploy
