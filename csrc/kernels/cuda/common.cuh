// Helpers shared by the CUDA kernels: error checks, the thread-per-channel launch shape, and the
// reduction over channels that turns per-thread partial sums into per-edge gradients.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace mace_deploy::cuda {

inline void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("mace-deploy CUDA kernel ") + what + ": " + cudaGetErrorString(status));
  }
}

constexpr int kWarp = 32;
constexpr int kMaxThreads = 1024;

// Threads of a block that owns whole rows of `channels` (one thread per channel, whole warps).
inline int threads_for_channels(int64_t channels) {
  if (channels > kMaxThreads) {
    throw std::runtime_error("not supported: more than 1024 channels per irrep on CUDA (got " +
                             std::to_string(channels) + ")");
  }
  const int64_t rounded = (channels + kWarp - 1) / kWarp * kWarp;
  return static_cast<int>(rounded > 0 ? rounded : kWarp);
}

// Launches `kernel` with `shared_bytes` of dynamic shared memory, raising the kernel's limit past
// the default 48 KB when it needs more (up to what the device allows).
template <typename Kernel, typename... Args>
void launch(const char* what, Kernel kernel, dim3 grid, int threads, size_t shared_bytes, cudaStream_t stream,
            Args... args) {
  if (grid.x == 0 || grid.y == 0) return;
  if (shared_bytes > 48 * 1024) {
    cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(shared_bytes)),
               what);
  }
  kernel<<<grid, threads, shared_bytes, stream>>>(args...);
  cuda_check(cudaGetLastError(), what);
}

template <typename T>
__device__ inline T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// partial is a [rows][blockDim.x] array in shared memory (one column per thread); writes
// out[i] = sum over the columns of row i. Called by every thread of the block; partial may be
// rewritten once it returns.
template <typename T>
__device__ void sum_columns(const T* partial, int rows, T* out) {
  __syncthreads();
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, warps = blockDim.x / kWarp;
  for (int i = warp; i < rows; i += warps) {
    T v = 0;
    for (int c = lane; c < blockDim.x; c += kWarp) v += partial[i * blockDim.x + c];
    v = warp_sum(v);
    if (lane == 0) out[i] = v;
  }
  __syncthreads();
}

}  // namespace mace_deploy::cuda
