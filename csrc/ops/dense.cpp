// torch.ops.mace_deploy.linear: x @ weight through the register-blocked kernel of
// kernels/cpu/dense.h (the radial MLPs' and equivariant linears' products), differentiable in x.
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "kernels/cpu/dense.h"
#include "ops/packed_columns.h"
#include "kernels/cpu/kernel_table.h"
#include "ops/input_checks.h"
#include "ops/ops.h"

namespace mace_deploy {
namespace {

// Outputs larger than a last-level cache (32 MB: one die of current server CPUs; sysconf reports a
// whole socket's, or a host's in a virtual machine) go around the caches (KernelTable::matmul):
// written through them, they would cost a read of every line before its write and push out data
// still needed.
constexpr int64_t kLastLevelCacheBytes = int64_t{32} << 20;

void check_inputs(const at::Tensor& x, const at::Tensor& weight) {
  TORCH_CHECK((x.dim() == 2 || x.dim() == 3) && weight.dim() == 2 && x.size(-1) == weight.size(0),
              "linear: x must be [M, K] or [n, d, K] and weight [K, N], got ", x.sizes(), " and ", weight.sizes());
  TORCH_CHECK(x.scalar_type() == weight.scalar_type(), "linear: x and weight must have one dtype");
  check_one_device("linear", x, {weight});
}

// x [M, K] or [n, d, K] -> [M, N] or [n, d, N]. x is read in place wherever its last dimension is
// contiguous (StridedRows): the node-feature slices the equivariant linears multiply need no copy.
at::Tensor forward_cpu(const at::Tensor& x_in, const at::Tensor& weight_in) {
  check_inputs(x_in, weight_in);
  const auto x = x_in.stride(-1) == 1 ? x_in : x_in.contiguous();
  const auto weight = weight_in.contiguous();
  const bool three_d = x.dim() == 3;
  const int64_t inner = three_d ? x.size(1) : 1, M = x.size(0) * inner, K = x.size(-1), N = weight.size(1);
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  auto out = at::empty(out_sizes, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "linear", [&] {
    const auto& kernels = cpu::kernels<scalar_t>();
    const auto packed = packed_columns<scalar_t>(weight);
    const cpu::StridedRows<scalar_t> rows{x.data_ptr<scalar_t>(), inner, x.stride(0), three_d ? x.stride(1) : 0};
    const bool large_output = M * N * static_cast<int64_t>(sizeof(scalar_t)) > kLastLevelCacheBytes;
    at::parallel_for(0, M, 96, [&](int64_t begin, int64_t end) {
      kernels.matmul(rows, packed.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), K, N, begin, end, large_output);
    });
  });
  return out;
}

#ifdef MACE_DEPLOY_WITH_CUDA
// On a GPU the product is cuBLAS's (through ATen), which strided and 3-D x also go through.
at::Tensor forward_cuda(const at::Tensor& x, const at::Tensor& weight) {
  check_inputs(x, weight);
  return at::matmul(x, weight);
}
#endif

// Only x is differentiated: the weights of a deployed model are constants (buffers).
class Linear : public torch::autograd::Function<Linear> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight) {
    TORCH_CHECK(!weight.requires_grad(), "linear: differentiable in x only, weight must not require grad");
    ctx->save_for_backward({weight});
    at::AutoDispatchBelowADInplaceOrView guard;
    return mace_deploy::linear(x, weight);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto weight = ctx->get_saved_variables()[0];
    return {mace_deploy::linear(grad_outputs[0], weight.t().contiguous()), at::Tensor()};
  }
};

at::Tensor autograd_impl(const at::Tensor& x, const at::Tensor& weight) { return Linear::apply(x, weight); }

}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight) {
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mace_deploy::linear", "").typed<decltype(linear)>();
  return op.call(x, weight);
}

TORCH_LIBRARY_IMPL(mace_deploy, CPU, m) { m.impl("linear", &forward_cpu); }

#ifdef MACE_DEPLOY_WITH_CUDA
TORCH_LIBRARY_IMPL(mace_deploy, CUDA, m) { m.impl("linear", &forward_cuda); }
#endif
TORCH_LIBRARY_IMPL(mace_deploy, Autograd, m) { m.impl("linear", &autograd_impl); }

}  // namespace mace_deploy
