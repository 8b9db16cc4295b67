#include "kernels/cpu/species_density.h"

#include <algorithm>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/message_passing.h"

namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA {
namespace {

template <typename T>
void species_density_forward(const DensityShape& s, const T* radial, const T* sh, const int64_t* weight_rows,
                             const int64_t* sender_species, const EdgeIndex& by_receiver, T* out, int64_t begin,
                             int64_t end) {
  const int64_t K = s.radial, M = s.sh_components, S = s.species;
  for (int64_t r = begin; r < end; ++r) {
    T* acc = out + r * M * S * K;
    std::fill(acc, acc + M * S * K, T(0));
    for (int64_t i = by_receiver.offsets[r]; i < by_receiver.offsets[r + 1]; ++i) {
      const int64_t e = by_receiver.edges[i];
      const T* h = radial + weight_rows[e] * K;
      const T* she = sh + e * M;
      T* acc_s = acc + sender_species[e] * K;
      for (int64_t m = 0; m < M; ++m) {
        const T a = she[m];
        T* o = acc_s + m * S * K;
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) o[k] += a * h[k];
      }
    }
  }
}

template <typename T>
void species_density_backward(const DensityShape& s, const T* grad_out, const T* radial, const T* sh,
                              const int64_t* weight_rows, const int64_t* sender_species, const int64_t* receivers,
                              const int64_t* edges, int64_t count, int64_t row_begin, int64_t row_end,
                              T* grad_radial, T* grad_sh) {
  const int64_t K = s.radial, M = s.sh_components, S = s.species;
  std::fill(grad_radial + row_begin * K, grad_radial + row_end * K, T(0));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t e = edges[i], row = weight_rows[e];
    const T* h = radial + row * K;
    const T* she = sh + e * M;
    const T* go = grad_out + receivers[e] * M * S * K + sender_species[e] * K;
    T* dh = grad_radial + row * K;
    T* dsh = grad_sh + e * M;
    for (int64_t m = 0; m < M; ++m) {
      const T a = she[m];
      const T* g = go + m * S * K;
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t k = 0; k < K; ++k) {
        dot += g[k] * h[k];
        dh[k] += a * g[k];
      }
      dsh[m] = dot;
    }
  }
}

}  // namespace

template <typename T>
void add_species_density(KernelTable<T>& table) {
  table.species_density_forward = &species_density_forward<T>;
  table.species_density_backward = &species_density_backward<T>;
}
template void add_species_density<float>(KernelTable<float>&);
template void add_species_density<double>(KernelTable<double>&);

}  // namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA
