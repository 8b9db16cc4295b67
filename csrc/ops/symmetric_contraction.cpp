// torch.ops.mace_deploy.symmetric_contraction: the fused kernel of kernels/cpu with its
// derivative, registered per device with a C++ autograd function on top.
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <algorithm>

#include "kernels/cpu/kernel_table.h"
#include "ops/input_checks.h"
#include "ops/ops.h"
#ifdef MACE_DEPLOY_WITH_CUDA
#include "ops/cuda_support.h"
#endif

namespace mace_deploy {
namespace {

ContractionShape shape_of(const at::Tensor& x, const at::Tensor& monomials, int64_t out_components) {
  return {x.size(1), x.size(2), out_components, monomials.size(0), monomials.size(1) - 1};
}

// Nodes per task: enough work (monomials x channels each) to amortise a task.
int64_t grain(const cpu::ContractionShape& s) { return std::max<int64_t>(1, 65536 / (s.monomials * s.channels + 1)); }

void check_inputs(const at::Tensor& x, const at::Tensor& species, const at::Tensor& monomials,
                  const at::Tensor& coefficients) {
  TORCH_CHECK(x.dim() == 3, "symmetric_contraction: x must be [N, K, C]");
  TORCH_CHECK(species.dim() == 1 && species.size(0) == x.size(0) && species.scalar_type() == at::kLong,
              "symmetric_contraction: species must be int64 [N]");
  TORCH_CHECK(monomials.dim() == 2 && monomials.size(1) >= 2 && monomials.scalar_type() == at::kLong,
              "symmetric_contraction: monomials must be int64 [M, 1 + degree]");
  TORCH_CHECK(monomials.size(1) - 1 <= 3, "not supported: symmetric contraction of correlation ",
              monomials.size(1) - 1, " (mace-deploy supports correlation 1..3)");
  TORCH_CHECK(coefficients.dim() == 3 && coefficients.size(1) == monomials.size(0) &&
                  coefficients.size(2) == x.size(2) && coefficients.scalar_type() == x.scalar_type(),
              "symmetric_contraction: coefficients must be [elements, M, C] of the dtype of x");
  check_one_device("symmetric_contraction", x, {species, monomials, coefficients});
}

at::Tensor forward_cpu(const at::Tensor& x_in, const at::Tensor& species_in, const at::Tensor& monomials_in,
                       const at::Tensor& coefficients_in, int64_t out_components) {
  check_inputs(x_in, species_in, monomials_in, coefficients_in);
  const auto x = x_in.contiguous(), species = species_in.contiguous();
  const auto monomials = monomials_in.contiguous(), coefficients = coefficients_in.contiguous();
  auto out = at::empty({x.size(0), out_components, x.size(2)}, x.options());
  const auto shape = shape_of(x, monomials, out_components);
  const cpu::MonomialTable table(shape, monomials.data_ptr<int64_t>());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "symmetric_contraction_forward", [&] {
    at::parallel_for(0, x.size(0), grain(shape), [&](int64_t begin, int64_t end) {
      cpu::kernels<scalar_t>().symmetric_contraction_forward(shape, table, x.data_ptr<scalar_t>(), species.data_ptr<int64_t>(),
                                                   coefficients.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                                                   begin, end);
    });
  });
  return out;
}

at::Tensor backward_cpu(const at::Tensor& grad_out_in, const at::Tensor& x_in, const at::Tensor& species_in,
                        const at::Tensor& monomials_in, const at::Tensor& coefficients_in) {
  const auto grad_out = grad_out_in.contiguous(), x = x_in.contiguous(), species = species_in.contiguous();
  const auto monomials = monomials_in.contiguous(), coefficients = coefficients_in.contiguous();
  auto grad_x = at::empty_like(x);
  const auto shape = shape_of(x, monomials, grad_out.size(1));
  const cpu::MonomialTable table(shape, monomials.data_ptr<int64_t>());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "symmetric_contraction_backward", [&] {
    at::parallel_for(0, x.size(0), grain(shape), [&](int64_t begin, int64_t end) {
      cpu::kernels<scalar_t>().symmetric_contraction_backward(shape, table, grad_out.data_ptr<scalar_t>(),
                                                    x.data_ptr<scalar_t>(), species.data_ptr<int64_t>(),
                                                    coefficients.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(),
                                                    begin, end);
    });
  });
  return grad_x;
}

#ifdef MACE_DEPLOY_WITH_CUDA
at::Tensor forward_cuda(const at::Tensor& x_in, const at::Tensor& species_in, const at::Tensor& monomials_in,
                        const at::Tensor& coefficients_in, int64_t out_components) {
  check_inputs(x_in, species_in, monomials_in, coefficients_in);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto x = x_in.contiguous(), species = species_in.contiguous();
  const auto monomials = monomials_in.contiguous(), coefficients = coefficients_in.contiguous();
  auto out = at::empty({x.size(0), out_components, x.size(2)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "symmetric_contraction_forward_cuda", [&] {
    cuda::symmetric_contraction_forward<scalar_t>(
        shape_of(x, monomials, out_components), x.size(0), monomials.data_ptr<int64_t>(), x.data_ptr<scalar_t>(),
        species.data_ptr<int64_t>(), coefficients.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), current_stream());
  });
  return out;
}

at::Tensor backward_cuda(const at::Tensor& grad_out_in, const at::Tensor& x_in, const at::Tensor& species_in,
                         const at::Tensor& monomials_in, const at::Tensor& coefficients_in) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto grad_out = grad_out_in.contiguous(), x = x_in.contiguous(), species = species_in.contiguous();
  const auto monomials = monomials_in.contiguous(), coefficients = coefficients_in.contiguous();
  auto grad_x = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "symmetric_contraction_backward_cuda", [&] {
    cuda::symmetric_contraction_backward<scalar_t>(
        shape_of(x, monomials, grad_out.size(1)), x.size(0), monomials.data_ptr<int64_t>(),
        grad_out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), species.data_ptr<int64_t>(),
        coefficients.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(), current_stream());
  });
  return grad_x;
}
#endif

// Only x is differentiated: species and monomials are integers and the coefficients are weights.
class SymmetricContraction : public torch::autograd::Function<SymmetricContraction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& species,
                            const at::Tensor& monomials, const at::Tensor& coefficients, int64_t out_components) {
    ctx->save_for_backward({x, species, monomials, coefficients});
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("mace_deploy::symmetric_contraction", "")
                         .typed<decltype(symmetric_contraction)>();
    return op.call(x, species, monomials, coefficients, out_components);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("mace_deploy::symmetric_contraction_backward", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, const at::Tensor&)>();
    return {op.call(grad_outputs[0], saved[0], saved[1], saved[2], saved[3]), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

at::Tensor autograd_impl(const at::Tensor& x, const at::Tensor& species, const at::Tensor& monomials,
                         const at::Tensor& coefficients, int64_t out_components) {
  return SymmetricContraction::apply(x, species, monomials, coefficients, out_components);
}

}  // namespace

at::Tensor symmetric_contraction(const at::Tensor& x, const at::Tensor& species, const at::Tensor& monomials,
                                 const at::Tensor& coefficients, int64_t num_out_components) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mace_deploy::symmetric_contraction", "")
                       .typed<decltype(symmetric_contraction)>();
  return op.call(x, species, monomials, coefficients, num_out_components);
}

TORCH_LIBRARY_IMPL(mace_deploy, CPU, m) {
  m.impl("symmetric_contraction", &forward_cpu);
  m.impl("symmetric_contraction_backward", &backward_cpu);
}

#ifdef MACE_DEPLOY_WITH_CUDA
TORCH_LIBRARY_IMPL(mace_deploy, CUDA, m) {
  m.impl("symmetric_contraction", &forward_cuda);
  m.impl("symmetric_contraction_backward", &backward_cuda);
}
#endif

TORCH_LIBRARY_IMPL(mace_deploy, Autograd, m) { m.impl("symmetric_contraction", &autograd_impl); }

}  // namespace mace_deploy
