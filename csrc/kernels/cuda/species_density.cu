// Neighbour density by sender element on CUDA (formula in kernels/cuda/kernels.h).
//
// Forward: one block per receiver, one thread per radial feature k; each thread owns the column
// out[r, :, :, k] and adds its edges' terms into it (zeroed first), so no atomics.
// Backward: one block per radial row (an edge and its reverse share one), one thread per k:
// grad_radial accumulates in a register over the row's edges; grad_sh of each edge is the sum
// over k of the per-thread partials.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace mace_deploy::cuda {
namespace {

template <typename T>
__global__ void forward_kernel(DensityShape s, const T* __restrict__ radial, const T* __restrict__ sh,
                               const int64_t* __restrict__ weight_rows, const int64_t* __restrict__ sender_species,
                               EdgeGroups by_receiver, T* __restrict__ out) {
  const int64_t r = blockIdx.x, K = s.radial, k = threadIdx.x;
  if (k >= K) return;
  T* out_r = out + r * s.sh_components * s.species * K + k;
  for (int64_t i = 0; i < s.sh_components * s.species; ++i) out_r[i * K] = T(0);
  for (int64_t i = by_receiver.offsets[r]; i < by_receiver.offsets[r + 1]; ++i) {
    const int64_t e = by_receiver.edges[i];
    const T radial_k = radial[weight_rows[e] * K + k];
    const T* sh_e = sh + e * s.sh_components;
    T* out_rs = out_r + sender_species[e] * K;
    for (int64_t m = 0; m < s.sh_components; ++m) out_rs[m * s.species * K] += sh_e[m] * radial_k;
  }
}

template <typename T>
__global__ void backward_kernel(DensityShape s, const T* __restrict__ grad_out, const T* __restrict__ radial,
                                const T* __restrict__ sh, const int64_t* __restrict__ sender_species,
                                const int64_t* __restrict__ receivers, EdgeGroups by_row, T* __restrict__ grad_radial,
                                T* __restrict__ grad_sh) {
  extern __shared__ unsigned char shared[];
  T* sh_partial = reinterpret_cast<T*>(shared);  // [sh_components][blockDim.x]
  const int64_t row = blockIdx.x, K = s.radial, k = threadIdx.x;
  const bool active = k < K;  // idle threads still take part in the reductions
  const T radial_k = active ? radial[row * K + k] : T(0);
  T grad_radial_k = 0;
  for (int64_t i = by_row.offsets[row]; i < by_row.offsets[row + 1]; ++i) {
    const int64_t e = by_row.edges[i];
    const T* sh_e = sh + e * s.sh_components;
    const T* g = grad_out + (receivers[e] * s.sh_components * s.species + sender_species[e]) * K + k;
    for (int64_t m = 0; m < s.sh_components; ++m) {
      const T g_m = active ? g[m * s.species * K] : T(0);
      grad_radial_k += sh_e[m] * g_m;
      sh_partial[m * blockDim.x + k] = radial_k * g_m;
    }
    sum_columns(sh_partial, static_cast<int>(s.sh_components), grad_sh + e * s.sh_components);
  }
  if (active) grad_radial[row * K + k] = grad_radial_k;
}

}  // namespace

template <typename T>
void species_density_forward(const DensityShape& s, const T* radial, const T* sh, const int64_t* weight_rows,
                             const int64_t* sender_species, const EdgeGroups& by_receiver, T* out, Stream stream) {
  launch("species_density_forward", forward_kernel<T>, dim3(static_cast<unsigned>(by_receiver.num_nodes)),
         threads_for_channels(s.radial), 0, stream, s, radial, sh, weight_rows, sender_species, by_receiver, out);
}

template <typename T>
void species_density_backward(const DensityShape& s, const T* grad_out, const T* radial, const T* sh,
                              const int64_t* sender_species, const int64_t* receivers, const EdgeGroups& by_row,
                              T* grad_radial, T* grad_sh, Stream stream) {
  const int threads = threads_for_channels(s.radial);
  launch("species_density_backward", backward_kernel<T>, dim3(static_cast<unsigned>(by_row.num_nodes)), threads,
         s.sh_components * threads * sizeof(T), stream, s, grad_out, radial, sh, sender_species, receivers, by_row,
         grad_radial, grad_sh);
}

#define MACE_DEPLOY_INSTANTIATE(T)                                                                                \
  template void species_density_forward<T>(const DensityShape&, const T*, const T*, const int64_t*,               \
                                           const int64_t*, const EdgeGroups&, T*, Stream);                        \
  template void species_density_backward<T>(const DensityShape&, const T*, const T*, const T*, const int64_t*,    \
                                            const int64_t*, const EdgeGroups&, T*, T*, Stream);
MACE_DEPLOY_INSTANTIATE(float)
MACE_DEPLOY_INSTANTIATE(double)
#undef MACE_DEPLOY_INSTANTIATE

}  // namespace mace_deploy::cuda
