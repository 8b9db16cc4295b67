// Fused equivariant message passing on CUDA (formulas in kernels/cuda/kernels.h).
//
// Forward: one block per receiver and tile of channels; each thread sums its channel of the
// receiver's output over the receiver's edges and the Clebsch-Gordan entries in shared memory
// (its own column, so no synchronisation), then writes it once. The node-feature gradient is the
// same kernel over the edges grouped by sender with the coupling transposed.
// Weight gradients: one block per radial-weight row (an edge and its reverse share one), one thread
// per channel: grad_w accumulates in shared memory over the row's edges; grad_sh of each edge is
// the sum over channels of the per-thread partials.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace mace_deploy::cuda {
namespace {

constexpr int kMaxForwardThreads = 128;

struct Entry {
  int64_t k_in, k_sh, k_out, path;
};

__device__ inline Entry entry(const Couplings& cg, int64_t q) {
  const int64_t* row = cg.index + 4 * q;
  return cg.transposed ? Entry{row[2], row[1], row[0], row[3]} : Entry{row[0], row[1], row[2], row[3]};
}

template <typename T>
__global__ void forward_kernel(MessageShape s, Couplings cg, const T* __restrict__ x, const T* __restrict__ sh,
                               const T* __restrict__ w, const int64_t* __restrict__ weight_rows,
                               const int64_t* __restrict__ senders, EdgeGroups by_receiver, T* __restrict__ out) {
  extern __shared__ unsigned char shared[];
  T* acc = reinterpret_cast<T*>(shared);  // [out_components][blockDim.x]
  const int64_t r = blockIdx.x, C = s.channels, c = blockIdx.y * int64_t{blockDim.x} + threadIdx.x;
  if (c >= C) return;  // no block-wide synchronisation below
  const T* coeff = static_cast<const T*>(cg.coeff);
  for (int64_t k = 0; k < s.out_components; ++k) acc[k * blockDim.x + threadIdx.x] = T(0);
  for (int64_t i = by_receiver.offsets[r]; i < by_receiver.offsets[r + 1]; ++i) {
    const int64_t e = by_receiver.edges[i];
    const T* x_s = x + senders[e] * s.in_components * C + c;
    const T* w_e = w + weight_rows[e] * s.paths * C + c;
    const T* sh_e = sh + e * s.sh_components;
    for (int64_t q = 0; q < cg.nnz; ++q) {
      const Entry t = entry(cg, q);
      acc[t.k_out * blockDim.x + threadIdx.x] += coeff[q] * sh_e[t.k_sh] * w_e[t.path * C] * x_s[t.k_in * C];
    }
  }
  T* out_r = out + r * s.out_components * C + c;
  for (int64_t k = 0; k < s.out_components; ++k) out_r[k * C] = acc[k * blockDim.x + threadIdx.x];
}

template <typename T>
__global__ void weight_gradient_kernel(MessageShape s, Couplings cg, const T* __restrict__ grad_out,
                                       const T* __restrict__ x, const T* __restrict__ sh, const T* __restrict__ w,
                                       const int64_t* __restrict__ senders, const int64_t* __restrict__ receivers,
                                       EdgeGroups by_row, T* __restrict__ grad_sh, T* __restrict__ grad_w) {
  extern __shared__ unsigned char shared[];
  T* grad_w_acc = reinterpret_cast<T*>(shared);             // [paths][blockDim.x]
  T* sh_partial = grad_w_acc + s.paths * blockDim.x;        // [sh_components][blockDim.x]
  const int64_t row = blockIdx.x, C = s.channels, c = threadIdx.x;
  const bool active = c < C;  // idle threads still take part in the reductions
  const T* coeff = static_cast<const T*>(cg.coeff);
  for (int64_t p = 0; p < s.paths; ++p) grad_w_acc[p * blockDim.x + c] = T(0);
  const T* w_row = w + row * s.paths * C + c;
  for (int64_t i = by_row.offsets[row]; i < by_row.offsets[row + 1]; ++i) {
    const int64_t e = by_row.edges[i];
    for (int64_t k = 0; k < s.sh_components; ++k) sh_partial[k * blockDim.x + c] = T(0);
    if (active) {
      const T* x_s = x + senders[e] * s.in_components * C + c;
      const T* g_r = grad_out + receivers[e] * s.out_components * C + c;
      const T* sh_e = sh + e * s.sh_components;
      for (int64_t q = 0; q < cg.nnz; ++q) {
        const Entry t = entry(cg, q);
        const T xg = coeff[q] * x_s[t.k_in * C] * g_r[t.k_out * C];
        grad_w_acc[t.path * blockDim.x + c] += sh_e[t.k_sh] * xg;
        sh_partial[t.k_sh * blockDim.x + c] += w_row[t.path * C] * xg;
      }
    }
    sum_columns(sh_partial, static_cast<int>(s.sh_components), grad_sh + e * s.sh_components);
  }
  if (active) {
    for (int64_t p = 0; p < s.paths; ++p) grad_w[(row * s.paths + p) * C + c] = grad_w_acc[p * blockDim.x + c];
  }
}

}  // namespace

template <typename T>
void message_passing_forward(const MessageShape& s, const Couplings& cg, const T* x, const T* sh, const T* w,
                             const int64_t* weight_rows, const int64_t* senders, const EdgeGroups& by_receiver,
                             T* out, Stream stream) {
  const int threads = std::min(threads_for_channels(s.channels), kMaxForwardThreads);
  const dim3 grid(static_cast<unsigned>(by_receiver.num_nodes),
                  static_cast<unsigned>((s.channels + threads - 1) / threads));
  launch("message_passing_forward", forward_kernel<T>, grid, threads, s.out_components * threads * sizeof(T), stream,
         s, cg, x, sh, w, weight_rows, senders, by_receiver, out);
}

template <typename T>
void message_passing_weight_gradients(const MessageShape& s, const Couplings& cg, const T* grad_out, const T* x,
                                      const T* sh, const T* w, const int64_t* senders, const int64_t* receivers,
                                      const EdgeGroups& by_row, T* grad_sh, T* grad_w, Stream stream) {
  const int threads = threads_for_channels(s.channels);
  launch("message_passing_weight_gradients", weight_gradient_kernel<T>, dim3(static_cast<unsigned>(by_row.num_nodes)),
         threads, (s.paths + s.sh_components) * threads * sizeof(T), stream, s, cg, grad_out, x, sh, w, senders,
         receivers, by_row, grad_sh, grad_w);
}

#define MACE_DEPLOY_INSTANTIATE(T)                                                                              \
  template void message_passing_forward<T>(const MessageShape&, const Couplings&, const T*, const T*, const T*, \
                                           const int64_t*, const int64_t*, const EdgeGroups&, T*, Stream);      \
  template void message_passing_weight_gradients<T>(const MessageShape&, const Couplings&, const T*, const T*,  \
                                                    const T*, const T*, const int64_t*, const int64_t*,         \
                                                    const EdgeGroups&, T*, T*, Stream);
MACE_DEPLOY_INSTANTIATE(float)
MACE_DEPLOY_INSTANTIATE(double)
#undef MACE_DEPLOY_INSTANTIATE

}  // namespace mace_deploy::cuda
