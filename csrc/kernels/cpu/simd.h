// SIMD vectors through GCC/Clang vector extensions. The kernels are compiled once per
// instruction set (CMakeLists.txt: AVX-512, AVX2+FMA, baseline x86-64); MACE_DEPLOY_CPU_VECTOR_BYTES
// is that set's register width, so one source gives each its natural vector code.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#ifndef MACE_DEPLOY_CPU_VECTOR_BYTES
#error "kernels/cpu sources are compiled once per instruction set; see mace_deploy_cpu_kernels in CMakeLists.txt"
#endif

namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA {

template <typename T>
struct Simd {
  static constexpr int64_t lanes = MACE_DEPLOY_CPU_VECTOR_BYTES / sizeof(T);
  typedef T vec __attribute__((vector_size(MACE_DEPLOY_CPU_VECTOR_BYTES)));
  static vec load(const T* p) {  // unaligned
    vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, vec v) { std::memcpy(p, &v, sizeof v); }
  // Stores v at p (aligned to the vector size) without first reading the line into the caches:
  // for large outputs that are not read again soon. Weakly ordered: finish with _mm_sfence().
  static void stream(T* p, vec v) {
    constexpr bool f64 = sizeof(T) == 8;
#if MACE_DEPLOY_CPU_VECTOR_BYTES == 64
    if constexpr (f64) _mm512_stream_pd(reinterpret_cast<double*>(p), reinterpret_cast<__m512d>(v));
    else _mm512_stream_ps(reinterpret_cast<float*>(p), reinterpret_cast<__m512>(v));
#elif MACE_DEPLOY_CPU_VECTOR_BYTES == 32
    if constexpr (f64) _mm256_stream_pd(reinterpret_cast<double*>(p), reinterpret_cast<__m256d>(v));
    else _mm256_stream_ps(reinterpret_cast<float*>(p), reinterpret_cast<__m256>(v));
#else
    if constexpr (f64) _mm_stream_pd(reinterpret_cast<double*>(p), reinterpret_cast<__m128d>(v));
    else _mm_stream_ps(reinterpret_cast<float*>(p), reinterpret_cast<__m128>(v));
#endif
  }
  // a in every lane. (Not `vec{} + a`: 0 + a is not a when a is -0.0, so the compiler must add
  // before it broadcasts, an extra instruction wherever a splat feeds a loop; a - 0 is a.)
  static vec splat(T a) { return a - vec{}; }
  // v, kept in a register: stops the compiler from folding its load into every instruction that
  // uses it, i.e. loading it once per use. Where loads limit a loop (one 512-bit load per cycle
  // on AMD Zen 4), that costs up to a fifth of the time.
  static vec in_register(vec v) {
    __asm__("" : "+v"(v));
    return v;
  }
};

// Calls f.template operator()<N>() with N = n for a run-time n in [1, Max]: loops whose trip count
// is a template parameter are unrolled and keep their accumulators in registers.
template <int Max, typename F>
void with_static_count(int n, F&& f) {
  if constexpr (Max > 0) {
    if (n == Max) return f.template operator()<Max>();
    with_static_count<Max - 1>(n, f);
  }
}

}  // namespace mace_deploy::cpu::MACE_DEPLOY_CPU_ISA
