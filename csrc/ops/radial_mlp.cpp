// torch.ops.mace_deploy.radial_mlp: the hidden layers of a radial MLP without keeping their
// activations for the backward pass.
//
// Autograd would keep every hidden layer's pre-activations for the backward, [pairs, hidden] each:
// with three 64-wide layers per interaction, the largest per-edge memory of a step once the
// message passing forms the radial weights itself (ops/message_passing.cpp). Here the forward
// keeps only the input and the scale, and the backward recomputes the layers, a block of rows at
// a time, differentiating each block with the same ops (so the same numbers) as the forward.
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>

#include "ops/ops.h"

namespace mace_deploy {
namespace {

// Rows per block: its activations ([rows, hidden] per layer) are the backward's working memory.
constexpr int64_t kBlockRows = 4096;

at::Tensor activate(const at::Tensor& z, const std::string& name) {
  if (name == "silu") return at::silu(z);
  if (name == "tanh") return at::tanh(z);
  if (name == "sigmoid") return at::sigmoid(z);
  if (name == "abs") return at::abs(z);
  if (name == "relu") return at::relu(z);
  TORCH_CHECK(false, "radial_mlp: unknown activation '", name, "' (silu, tanh, sigmoid, abs, relu)");
}

// The last hidden layer's activations (before the output scale).
at::Tensor activations_of(const at::Tensor& x, at::TensorList weights, const std::string& activation) {
  at::Tensor a = x;
  for (const auto& w : weights) a = activate(mace_deploy::linear(a, w), activation);
  return a;
}

void check_inputs(const at::Tensor& x, const at::Tensor& scale, at::TensorList weights) {
  TORCH_CHECK(x.dim() == 2 && scale.dim() == 2 && scale.size(0) == x.size(0) && scale.size(1) == 1,
              "radial_mlp: x must be [M, K] and output_scale [M, 1]");
  TORCH_CHECK(!weights.empty(), "radial_mlp: needs at least one layer");
  int64_t width = x.size(1);
  for (const auto& w : weights) {
    TORCH_CHECK(w.dim() == 2 && w.size(0) == width, "radial_mlp: layer weights must chain, [K, H1], [H1, H2], ...");
    TORCH_CHECK(!w.requires_grad(), "radial_mlp: weights must not require grad (model constants)");
    width = w.size(1);
  }
}

class RadialMLP : public torch::autograd::Function<RadialMLP> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& scale,
                            at::TensorList weights, const std::string& activation) {
    check_inputs(x, scale, weights);
    ctx->save_for_backward({x, scale});
    ctx->saved_data["weights"] = weights.vec();
    ctx->saved_data["activation"] = activation;
    const at::NoGradGuard no_grad;
    auto out = at::empty({x.size(0), weights.back().size(1)}, x.options());
    for (int64_t r = 0; r < x.size(0); r += kBlockRows) {
      const int64_t n = std::min(kBlockRows, x.size(0) - r);
      auto block = out.narrow(0, r, n);  // rows of a contiguous tensor: written in place
      at::mul_out(block, activations_of(x.narrow(0, r, n), weights, activation), scale.narrow(0, r, n));
    }
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& scale = saved[1];
    const auto weights = ctx->saved_data["weights"].toTensorVector();
    const auto activation = ctx->saved_data["activation"].toStringRef();
    const auto grad_out = grad_outputs[0];
    auto grad_x = at::empty_like(x), grad_scale = at::empty_like(scale);
    for (int64_t r = 0; r < x.size(0); r += kBlockRows) {
      const int64_t n = std::min(kBlockRows, x.size(0) - r);
      const auto block_x = x.narrow(0, r, n).detach().requires_grad_(true);
      const auto block_scale = scale.narrow(0, r, n).detach().requires_grad_(true);
      const at::AutoGradMode with_grad(true);
      const auto y = activations_of(block_x, weights, activation) * block_scale;
      const auto grads = torch::autograd::grad({y}, {block_x, block_scale}, {grad_out.narrow(0, r, n)});
      grad_x.narrow(0, r, n).copy_(grads[0]);
      grad_scale.narrow(0, r, n).copy_(grads[1]);
    }
    torch::autograd::tensor_list grads{grad_x, grad_scale};
    grads.resize(2 + weights.size() + 1);  // none for the weights and the activation's name
    return grads;
  }
};

at::Tensor autograd_impl(const at::Tensor& x, const at::Tensor& scale, at::TensorList weights,
                         c10::string_view activation) {
  return RadialMLP::apply(x, scale, weights, std::string(activation));
}

// Without autograd (inference, or below the autograd kernel): the forward alone.
at::Tensor plain_impl(const at::Tensor& x, const at::Tensor& scale, at::TensorList weights,
                      c10::string_view activation) {
  check_inputs(x, scale, weights);
  return activations_of(x, weights, std::string(activation)) * scale;
}

}  // namespace

TORCH_LIBRARY_IMPL(mace_deploy, CompositeExplicitAutograd, m) { m.impl("radial_mlp", &plain_impl); }
TORCH_LIBRARY_IMPL(mace_deploy, Autograd, m) { m.impl("radial_mlp", &autograd_impl); }

}  // namespace mace_deploy
