// Picks the instruction-set build of the kernels this CPU runs (once, at first use).
#include "kernels/cpu/kernel_table.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace mace_deploy::cpu {
namespace {

struct Tables {
  const char* isa;
  KernelTable<float> f32;
  KernelTable<double> f64;
};

bool cpu_runs(const std::string& isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // The AVX-512 build uses F, VL, DQ and BW instructions (x86-64-v4); the AVX2 build AVX2 + FMA (v3).
  if (isa == "avx512") {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") && cpu_runs("avx2");
  }
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return isa == "baseline";
}

Tables tables_for(const std::string& isa) {
  Tables t{};
  if (isa == "avx512") {
    avx512::fill(t.f32, t.f64);
    t.isa = "avx512";
  } else if (isa == "avx2") {
    avx2::fill(t.f32, t.f64);
    t.isa = "avx2";
  } else {
    baseline::fill(t.f32, t.f64);
    t.isa = "baseline";
  }
  return t;
}

// The widest set this CPU runs, or the one MACE_DEPLOY_CPU_ISA names (tests run every build
// through it; a set this CPU lacks is an error rather than a crash on an illegal instruction).
Tables best_tables() {
  if (const char* wanted = std::getenv("MACE_DEPLOY_CPU_ISA"); wanted != nullptr && *wanted != '\0') {
    const std::string isa = wanted;
    if (isa != "avx512" && isa != "avx2" && isa != "baseline") {
      throw std::runtime_error("MACE_DEPLOY_CPU_ISA='" + isa + "': expected avx512, avx2 or baseline");
    }
    if (!cpu_runs(isa)) {
      throw std::runtime_error("MACE_DEPLOY_CPU_ISA='" + isa + "': this CPU does not support that instruction set");
    }
    return tables_for(isa);
  }
  for (const char* isa : {"avx512", "avx2"}) {
    if (cpu_runs(isa)) return tables_for(isa);
  }
  return tables_for("baseline");
}

const Tables& tables() {
  static const Tables t = best_tables();
  return t;
}

}  // namespace

template <>
const KernelTable<float>& kernels<float>() {
  return tables().f32;
}
template <>
const KernelTable<double>& kernels<double>() {
  return tables().f64;
}
const char* kernel_isa() { return tables().isa; }

}  // namespace mace_deploy::cpu
