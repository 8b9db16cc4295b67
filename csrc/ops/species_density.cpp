// torch.ops.mace_deploy.species_density: the kernel of kernels/cpu/species_density.h with its
// derivatives (radial features, spherical harmonics), registered per device with a C++
// autograd function on top.
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

void check_index(const at::Tensor& index, int64_t edges, int64_t bound, const char* what) {
  TORCH_CHECK(index.dim() == 1 && index.size(0) == edges && index.scalar_type() == at::kLong,
              "species_density: ", what, " must be int64 [E]");
  // On the CPU only: on a GPU it would synchronise every call, and the model makes the indices.
  if (edges > 0 && index.is_cpu()) {
    TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < bound, "species_density: a ",
                what, " entry is outside [0, ", bound, ")");
  }
}

void check_inputs(const at::Tensor& radial, const at::Tensor& sh, const at::Tensor& weight_rows,
                  const at::Tensor& sender_species, const at::Tensor& receivers, int64_t num_receivers,
                  int64_t num_species) {
  TORCH_CHECK(radial.dim() == 2, "species_density: radial must be [W, K]");
  TORCH_CHECK(sh.dim() == 2, "species_density: edge_sh must be [E, M]");
  TORCH_CHECK(sh.scalar_type() == radial.scalar_type(), "species_density: radial and edge_sh must have one dtype");
  check_one_device("species_density", radial, {sh, weight_rows, sender_species, receivers});
  TORCH_CHECK(num_receivers >= 0 && num_species >= 0, "species_density: negative num_receivers or num_species");
  const int64_t edges = sh.size(0);
  check_index(weight_rows, edges, radial.size(0), "weight_rows");
  check_index(sender_species, edges, num_species, "sender_species");
  check_index(receivers, edges, num_receivers, "receivers");
}

DensityShape shape_of(const at::Tensor& radial, const at::Tensor& sh, int64_t num_species) {
  return {radial.size(1), sh.size(1), num_species};
}

at::Tensor forward_cpu(const at::Tensor& radial_in, const at::Tensor& sh_in, const at::Tensor& weight_rows_in,
                       const at::Tensor& sender_species_in, const at::Tensor& receivers_in, int64_t num_receivers,
                       int64_t num_species) {
  check_inputs(radial_in, sh_in, weight_rows_in, sender_species_in, receivers_in, num_receivers, num_species);
  const auto radial = radial_in.contiguous(), sh = sh_in.contiguous();
  const auto weight_rows = weight_rows_in.contiguous(), sender_species = sender_species_in.contiguous();
  const auto receivers = receivers_in.contiguous();
  const cpu::EdgeIndex by_receiver(receivers.data_ptr<int64_t>(), receivers.size(0), num_receivers);
  const auto shape = shape_of(radial, sh, num_species);
  auto out = at::empty({num_receivers, sh.size(1), num_species, radial.size(1)}, radial.options());
  const int64_t per_receiver = std::max<int64_t>(1, sh.size(0) / std::max<int64_t>(1, num_receivers)) *
                               shape.sh_components * shape.radial;
  AT_DISPATCH_FLOATING_TYPES(radial.scalar_type(), "species_density_forward", [&] {
    at::parallel_for(0, num_receivers, std::max<int64_t>(1, 262144 / per_receiver), [&](int64_t begin, int64_t end) {
      cpu::kernels<scalar_t>().species_density_forward(
          shape, radial.data_ptr<scalar_t>(), sh.data_ptr<scalar_t>(), weight_rows.data_ptr<int64_t>(),
          sender_species.data_ptr<int64_t>(), by_receiver, out.data_ptr<scalar_t>(), begin, end);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> backward_cpu(const at::Tensor& grad_out_in, const at::Tensor& radial_in,
                                                const at::Tensor& sh_in, const at::Tensor& weight_rows_in,
                                                const at::Tensor& sender_species_in,
                                                const at::Tensor& receivers_in) {
  const auto grad_out = grad_out_in.contiguous(), radial = radial_in.contiguous(), sh = sh_in.contiguous();
  const auto weight_rows = weight_rows_in.contiguous(), sender_species = sender_species_in.contiguous();
  const auto receivers = receivers_in.contiguous();
  const auto shape = shape_of(radial, sh, grad_out.size(2));
  const int64_t parts = at::get_num_threads();
  const cpu::RowPartition partition(weight_rows.data_ptr<int64_t>(), receivers.data_ptr<int64_t>(),
                                    weight_rows.size(0), radial.size(0), grad_out.size(0), parts);
  auto grad_radial = at::empty_like(radial);
  auto grad_sh = at::empty_like(sh);
  AT_DISPATCH_FLOATING_TYPES(radial.scalar_type(), "species_density_backward", [&] {
    at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t first = partition.edge_offsets[t];
        cpu::kernels<scalar_t>().species_density_backward(
            shape, grad_out.data_ptr<scalar_t>(), radial.data_ptr<scalar_t>(), sh.data_ptr<scalar_t>(),
            weight_rows.data_ptr<int64_t>(), sender_species.data_ptr<int64_t>(), receivers.data_ptr<int64_t>(),
            partition.edges.data() + first, partition.edge_offsets[t + 1] - first, partition.row_begin[t],
            partition.row_begin[t + 1], grad_radial.data_ptr<scalar_t>(), grad_sh.data_ptr<scalar_t>());
      }
    });
  });
  return {grad_radial, grad_sh};
}

#ifdef MACE_DEPLOY_WITH_CUDA
at::Tensor forward_cuda(const at::Tensor& radial_in, const at::Tensor& sh_in, const at::Tensor& weight_rows_in,
                        const at::Tensor& sender_species_in, const at::Tensor& receivers_in, int64_t num_receivers,
                        int64_t num_species) {
  check_inputs(radial_in, sh_in, weight_rows_in, sender_species_in, receivers_in, num_receivers, num_species);
  const c10::cuda::CUDAGuard guard(radial_in.device());
  const auto radial = radial_in.contiguous(), sh = sh_in.contiguous();
  const auto weight_rows = weight_rows_in.contiguous(), sender_species = sender_species_in.contiguous();
  const DeviceEdgeGroups by_receiver(receivers_in.contiguous(), num_receivers);
  auto out = at::empty({num_receivers, sh.size(1), num_species, radial.size(1)}, radial.options());
  AT_DISPATCH_FLOATING_TYPES(radial.scalar_type(), "species_density_forward_cuda", [&] {
    cuda::species_density_forward<scalar_t>(shape_of(radial, sh, num_species), radial.data_ptr<scalar_t>(),
                                            sh.data_ptr<scalar_t>(), weight_rows.data_ptr<int64_t>(),
                                            sender_species.data_ptr<int64_t>(), by_receiver.view(),
                                            out.data_ptr<scalar_t>(), current_stream());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> backward_cuda(const at::Tensor& grad_out_in, const at::Tensor& radial_in,
                                                 const at::Tensor& sh_in, const at::Tensor& weight_rows_in,
                                                 const at::Tensor& sender_species_in,
                                                 const at::Tensor& receivers_in) {
  const c10::cuda::CUDAGuard guard(radial_in.device());
  const auto grad_out = grad_out_in.contiguous(), radial = radial_in.contiguous(), sh = sh_in.contiguous();
  const auto sender_species = sender_species_in.contiguous(), receivers = receivers_in.contiguous();
  const DeviceEdgeGroups by_row(weight_rows_in.contiguous(), radial.size(0));
  auto grad_radial = at::empty_like(radial), grad_sh = at::empty_like(sh);
  AT_DISPATCH_FLOATING_TYPES(radial.scalar_type(), "species_density_backward_cuda", [&] {
    cuda::species_density_backward<scalar_t>(
        shape_of(radial, sh, grad_out.size(2)), grad_out.data_ptr<scalar_t>(), radial.data_ptr<scalar_t>(),
        sh.data_ptr<scalar_t>(), sender_species.data_ptr<int64_t>(), receivers.data_ptr<int64_t>(), by_row.view(),
        grad_radial.data_ptr<scalar_t>(), grad_sh.data_ptr<scalar_t>(), current_stream());
  });
  return {grad_radial, grad_sh};
}
#endif

// Differentiable in the radial features and the spherical harmonics.
class SpeciesDensity : public torch::autograd::Function<SpeciesDensity> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& radial, const at::Tensor& sh,
                            const at::Tensor& weight_rows, const at::Tensor& sender_species,
                            const at::Tensor& receivers, int64_t num_receivers, int64_t num_species) {
    ctx->save_for_backward({radial, sh, weight_rows, sender_species, receivers});
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("mace_deploy::species_density", "")
                         .typed<decltype(species_density)>();
    return op.call(radial, sh, weight_rows, sender_species, receivers, num_receivers, num_species);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("mace_deploy::species_density_backward", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                   const at::Tensor&, const at::Tensor&,
                                                                   const at::Tensor&, const at::Tensor&)>();
    auto [grad_radial, grad_sh] = op.call(grad_outputs[0], s[0], s[1], s[2], s[3], s[4]);
    return {grad_radial, grad_sh, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor autograd_impl(const at::Tensor& radial, const at::Tensor& sh, const at::Tensor& weight_rows,
                         const at::Tensor& sender_species, const at::Tensor& receivers, int64_t num_receivers,
                         int64_t num_species) {
  return SpeciesDensity::apply(radial, sh, weight_rows, sender_species, receivers, num_receivers, num_species);
}

}  // namespace

at::Tensor species_density(const at::Tensor& radial, const at::Tensor& edge_sh, const at::Tensor& weight_rows,
                           const at::Tensor& sender_species, const at::Tensor& receivers, int64_t num_receivers,
                           int64_t num_species) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mace_deploy::species_density", "")
                       .typed<decltype(species_density)>();
  return op.call(radial, edge_sh, weight_rows, sender_species, receivers, num_receivers, num_species);
}

TORCH_LIBRARY_IMPL(mace_deploy, CPU, m) {
  m.impl("species_density", &forward_cpu);
  m.impl("species_density_backward", &backward_cpu);
}

#ifdef MACE_DEPLOY_WITH_CUDA
TORCH_LIBRARY_IMPL(mace_deploy, CUDA, m) {
  m.impl("species_density", &forward_cuda);
  m.impl("species_density_backward", &backward_cuda);
}
#endif

TORCH_LIBRARY_IMPL(mace_deploy, Autograd, m) { m.impl("species_density", &autograd_impl); }

}  // namespace mace_deploy
