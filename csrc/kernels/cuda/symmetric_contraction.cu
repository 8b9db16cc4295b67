// Fused MACE symmetric contraction on CUDA (formula in kernels/cuda/kernels.h).
//
// One block per node and tile of channels, one thread per channel: the thread copies its column
// of the node's features into shared memory, then evaluates the node's element polynomial (the
// monomial table is read by all threads alike, so it is served from cache) into its own column of
// the output (or of grad_x), so no synchronisation and no atomics.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace mace_deploy::cuda {
namespace {

constexpr int kMaxContractionThreads = 128;

// Factors of one monomial: its output component and three feature components, -1 for the unused
// ones of lower-degree monomials (their factor is 1, which multiplies exactly).
struct Monomial {
  int64_t k_out, k1, k2, k3;
};

__device__ inline Monomial monomial(const int64_t* monomials, int64_t max_degree, int64_t m) {
  const int64_t* row = monomials + m * (1 + max_degree);
  return {row[0], row[1], max_degree >= 2 ? row[2] : -1, max_degree >= 3 ? row[3] : -1};
}

// Column of the node's features in shared memory; component -1 is the factor 1.
template <typename T>
struct FeatureColumn {
  const T* column;
  unsigned stride;
  __device__ T operator()(int64_t k) const { return k >= 0 ? column[k * stride] : T(1); }
};

template <typename T>
__global__ void forward_kernel(ContractionShape s, const int64_t* __restrict__ monomials, const T* __restrict__ x,
                               const int64_t* __restrict__ species, const T* __restrict__ coeff, T* __restrict__ out) {
  extern __shared__ unsigned char shared[];
  const int64_t n = blockIdx.x, C = s.channels, c = blockIdx.y * int64_t{blockDim.x} + threadIdx.x;
  if (c >= C) return;
  T* xs = reinterpret_cast<T*>(shared) + threadIdx.x;  // column of [components][blockDim.x]
  T* acc = xs + s.components * blockDim.x;             // column of [out_components][blockDim.x]
  for (int64_t k = 0; k < s.components; ++k) xs[k * blockDim.x] = x[(n * s.components + k) * C + c];
  for (int64_t k = 0; k < s.out_components; ++k) acc[k * blockDim.x] = T(0);
  const T* coeff_n = coeff + species[n] * s.monomials * C + c;
  const FeatureColumn<T> value{xs, blockDim.x};
  for (int64_t m = 0; m < s.monomials; ++m) {
    const Monomial t = monomial(monomials, s.max_degree, m);
    acc[t.k_out * blockDim.x] += coeff_n[m * C] * value(t.k1) * value(t.k2) * value(t.k3);
  }
  for (int64_t k = 0; k < s.out_components; ++k) out[(n * s.out_components + k) * C + c] = acc[k * blockDim.x];
}

// d/dx of each monomial: the derivative in each factor is the product of the others; factors that
// are one component (squares, cubes) each add their share, one after the other.
template <typename T>
__global__ void backward_kernel(ContractionShape s, const int64_t* __restrict__ monomials,
                                const T* __restrict__ grad_out, const T* __restrict__ x,
                                const int64_t* __restrict__ species, const T* __restrict__ coeff,
                                T* __restrict__ grad_x) {
  extern __shared__ unsigned char shared[];
  const int64_t n = blockIdx.x, C = s.channels, c = blockIdx.y * int64_t{blockDim.x} + threadIdx.x;
  if (c >= C) return;
  T* xs = reinterpret_cast<T*>(shared) + threadIdx.x;  // columns of [components][blockDim.x]
  T* dx = xs + s.components * blockDim.x;
  for (int64_t k = 0; k < s.components; ++k) {
    xs[k * blockDim.x] = x[(n * s.components + k) * C + c];
    dx[k * blockDim.x] = T(0);
  }
  const T* coeff_n = coeff + species[n] * s.monomials * C + c;
  const T* g_n = grad_out + n * s.out_components * C + c;
  const FeatureColumn<T> value{xs, blockDim.x};
  for (int64_t m = 0; m < s.monomials; ++m) {
    const Monomial t = monomial(monomials, s.max_degree, m);
    const T gw = g_n[t.k_out * C] * coeff_n[m * C];
    const T x1 = value(t.k1), x2 = value(t.k2), x3 = value(t.k3);
    dx[t.k1 * blockDim.x] += gw * x2 * x3;  // every monomial has a first factor
    if (t.k2 >= 0) dx[t.k2 * blockDim.x] += gw * x1 * x3;
    if (t.k3 >= 0) dx[t.k3 * blockDim.x] += gw * x1 * x2;
  }
  for (int64_t k = 0; k < s.components; ++k) grad_x[(n * s.components + k) * C + c] = dx[k * blockDim.x];
}

dim3 grid_of(const ContractionShape& s, int64_t nodes, int threads) {
  return dim3(static_cast<unsigned>(nodes), static_cast<unsigned>((s.channels + threads - 1) / threads));
}

}  // namespace

template <typename T>
void symmetric_contraction_forward(const ContractionShape& s, int64_t nodes, const int64_t* monomials, const T* x,
                                   const int64_t* species, const T* coeff, T* out, Stream stream) {
  const int threads = std::min(threads_for_channels(s.channels), kMaxContractionThreads);
  launch("symmetric_contraction_forward", forward_kernel<T>, grid_of(s, nodes, threads), threads,
         (s.components + s.out_components) * threads * sizeof(T), stream, s, monomials, x, species, coeff, out);
}

template <typename T>
void symmetric_contraction_backward(const ContractionShape& s, int64_t nodes, const int64_t* monomials,
                                    const T* grad_out, const T* x, const int64_t* species, const T* coeff, T* grad_x,
                                    Stream stream) {
  const int threads = std::min(threads_for_channels(s.channels), kMaxContractionThreads);
  launch("symmetric_contraction_backward", backward_kernel<T>, grid_of(s, nodes, threads), threads,
         2 * s.components * threads * sizeof(T), stream, s, monomials, grad_out, x, species, coeff, grad_x);
}

#define MACE_DEPLOY_INSTANTIATE(T)                                                                             \
  template void symmetric_contraction_forward<T>(const ContractionShape&, int64_t, const int64_t*, const T*,  \
                                                 const int64_t*, const T*, T*, Stream);                       \
  template void symmetric_contraction_backward<T>(const ContractionShape&, int64_t, const int64_t*, const T*,  \
                                                  const T*, const int64_t*, const T*, T*, Stream);
MACE_DEPLOY_INSTANTIATE(float)
MACE_DEPLOY_INSTANTIATE(double)
#undef MACE_DEPLOY_INSTANTIATE

}  // namespace mace_deploy::cuda
