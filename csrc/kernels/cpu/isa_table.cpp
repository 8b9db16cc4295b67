// The kernel tables of one instruction-set build (compiled once per set, see kernel_table.h).
#include "kernels/cpu/kernel_table.h"

namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA {

void fill(KernelTable<float>& f32, KernelTable<double>& f64) {
  add_message_passing(f32);
  add_message_passing(f64);
  add_species_density(f32);
  add_species_density(f64);
  add_symmetric_contraction(f32);
  add_symmetric_contraction(f64);
  add_dense(f32);
  add_dense(f64);
}

}  // namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA
