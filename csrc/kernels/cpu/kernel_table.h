// The CPU kernels behind the ops, as one table of function pointers per floating-point type.
//
// Every kernel source in kernels/cpu is compiled once per instruction set (AVX-512, AVX2+FMA,
// baseline x86-64; each build in its own namespace cpu::<isa>); `kernels<T>()` hands out the table
// of the best set this CPU runs, chosen once. The ops call kernels only through it, so the
// library runs on any x86-64 CPU and uses the wide vectors where they exist.
#pragma once

#include <cstdint>

#include "kernels/cpu/dense.h"
#include "kernels/cpu/message_passing.h"
#include "kernels/cpu/species_density.h"
#include "kernels/cpu/symmetric_contraction.h"

namespace mace_deploy::cpu {

template <typename T>
struct KernelTable {
  // kernels/cpu/message_passing.h
  void (*message_passing_forward)(const MessageShape&, const CouplingTable&, const T* coeff, const T* x,
                                  const T* sh, const RadialWeights<T>& radial, const int64_t* weight_rows,
                                  const int64_t* senders, const EdgeIndex& by_receiver, T* out, int64_t begin,
                                  int64_t end);
  void (*message_passing_backward)(const MessageShape&, const CouplingTable&, const T* coeff, const T* grad_out,
                                   const T* x, const T* sh, const RadialWeights<T>& radial, const int64_t* senders,
                                   const int64_t* receivers, const EdgeIndex& by_row, int64_t row_begin,
                                   int64_t row_end, T* grad_x_partial, T* grad_sh, T* grad_hidden);
  // kernels/cpu/species_density.h
  void (*species_density_forward)(const DensityShape&, const T* radial, const T* sh, const int64_t* weight_rows,
                                  const int64_t* sender_species, const EdgeIndex& by_receiver, T* out,
                                  int64_t begin, int64_t end);
  void (*species_density_backward)(const DensityShape&, const T* grad_out, const T* radial, const T* sh,
                                   const int64_t* weight_rows, const int64_t* sender_species,
                                   const int64_t* receivers, const int64_t* edges, int64_t count,
                                   int64_t row_begin, int64_t row_end, T* grad_radial, T* grad_sh);
  // kernels/cpu/symmetric_contraction.h
  void (*symmetric_contraction_forward)(const ContractionShape&, const MonomialTable&, const T* x,
                                        const int64_t* species, const T* coeff, T* out, int64_t begin, int64_t end);
  void (*symmetric_contraction_backward)(const ContractionShape&, const MonomialTable&, const T* grad_out,
                                         const T* x, const int64_t* species, const T* coeff, T* grad_x,
                                         int64_t begin, int64_t end);
  // kernels/cpu/dense.h: rows [begin, end) of c [M, N] = a [M, K] @ b [K, N], with b packed by
  // pack_columns (panels of `dense_panel` columns); `large_output`: c is larger than the caches,
  // so it is written around them where the layout allows.
  int64_t dense_panel;
  void (*pack_columns)(const T* b, int64_t K, int64_t N, T* packed);
  void (*matmul)(const StridedRows<T>& a, const T* packed_b, T* c, int64_t K, int64_t N, int64_t begin,
                 int64_t end, bool large_output);
};

template <typename T>
const KernelTable<T>& kernels();

// Name of the instruction set whose kernels `kernels()` uses ("avx512", "avx2", "baseline").
const char* kernel_isa();

// Each instruction-set build fills its tables (kernels/cpu/isa_table.cpp).
#define MACE_DEPLOY_DECLARE_ISA(isa) \
  namespace isa {                    \
  void fill(KernelTable<float>&, KernelTable<double>&); \
  }
MACE_DEPLOY_DECLARE_ISA(avx512)
MACE_DEPLOY_DECLARE_ISA(avx2)
MACE_DEPLOY_DECLARE_ISA(baseline)
#undef MACE_DEPLOY_DECLARE_ISA

#ifdef MACE_DEPLOY_CPU_ISA
// Within an instruction-set build: each kernel source adds its kernels to the tables.
namespace MACE_DEPLOY_CPU_ISA {
template <typename T>
void add_message_passing(KernelTable<T>&);
template <typename T>
void add_species_density(KernelTable<T>&);
template <typename T>
void add_symmetric_contraction(KernelTable<T>&);
template <typename T>
void add_dense(KernelTable<T>&);
// This build's KernelTable::pack_columns and ::matmul, for kernels that multiply small blocks
// (the message passing's radial weights).
template <typename T>
void pack_columns(const T* b, int64_t K, int64_t N, T* packed);
template <typename T>
void matmul(const StridedRows<T>& a, const T* packed_b, T* c, int64_t K, int64_t N, int64_t begin, int64_t end,
            bool large_output);
}  // namespace MACE_DEPLOY_CPU_ISA
#endif

}  // namespace mace_deploy::cpu
