// SIMD vectors through GCC/Clang vector extensions. The kernels are compiled once per
// instruction set (CMakeLists.txt: AVX-512, AVX2+FMA, baseline x86-64); MACE_DEPLOY_CPU_VECTOR_BYTES
// is that set's register width, so one source gives each its natural vector code.
#pragma once

#include <immintrin.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <utility>

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
  // sums[m] = the sum of the lanes of v[m], m < M. The vectors fold in pairs: x and y whose lanes
  // are segments of S lanes (one vector each) give one vector of segments of S / 2, each segment's
  // halves added, x's first. M sums cost about 3 M shuffles and adds instead of the 2 M log2(lanes)
  // of one reduction per vector (the message-passing backward takes one per Clebsch-Gordan entry
  // and edge; summed lane by lane they took as many instructions as its multiply-adds).
  template <int M>
  static void sum_lanes(const vec* v, T* sums) {
    constexpr int count = std::bit_ceil(static_cast<unsigned>(M));
    vec w[count];
    for (int m = 0; m < count; ++m) w[m] = m < M ? v[m] : vec{};
    fold_all<count, static_cast<int>(lanes)>(w);
    constexpr int kept = count < lanes ? 1 : count / static_cast<int>(lanes);  // vectors holding the sums
    T all[kept * lanes];
    std::memcpy(all, w, sizeof all);
    for (int m = 0; m < M; ++m) sums[m] = all[m];
  }

 private:
  // Lane i of the first operand of a fold at segment size S: the first halves of x's segments,
  // then of y's (lanes of y are numbered from `lanes`); the second operand takes the second halves.
  static constexpr int first_halves_lane(int i, int S) {
    const int half = static_cast<int>(lanes) / 2;
    return (i < half ? 0 : 2 * half) + (i % half) / (S / 2) * S + i % (S / 2);
  }
  template <int S, size_t... I>
  static vec fold(vec x, vec y, std::index_sequence<I...>) {
    return __builtin_shufflevector(x, y, first_halves_lane(I, S)...) +
           __builtin_shufflevector(x, y, (first_halves_lane(I, S) + S / 2)...);
  }
  // w[0 .. Count) with segments of S lanes -> sums in lane order (a lone vector folds with itself).
  template <int Count, int S>
  static void fold_all(vec* w) {
    if constexpr (S > 1) {
      constexpr auto lanes_seq = std::make_index_sequence<lanes>();
      if constexpr (Count == 1) {
        w[0] = fold<S>(w[0], w[0], lanes_seq);
        fold_all<1, S / 2>(w);
      } else {
        for (int k = 0; k < Count / 2; ++k) w[k] = fold<S>(w[2 * k], w[2 * k + 1], lanes_seq);
        fold_all<Count / 2, S / 2>(w);
      }
    }
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
