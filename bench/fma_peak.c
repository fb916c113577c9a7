// Single-core fp32 FMA peak: independent FMA chains on registers (no memory
// traffic), timed with clock_gettime, best of several repetitions. AVX2 (ymm)
// always; AVX-512 (zmm) too when compiled for a CPU with avx512f. Prints
// each variant's GFLOP/s (an FMA is 2 flops) and their maximum: the ceiling
// the GEMM benchmark (bench/gemm_bench.py) is measured against.
//
//   cc -O2 -march=native bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak [SECONDS]
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

// FMA latency (4 cycles) x 2 pipes = 8 chains in flight at least. ymm: 12
// accumulators (+ the two operands fit the 16 registers of AVX2; 16 chains
// would spill there); zmm: 16 of AVX-512's 32 registers.
#define INNER 1000 // FMAs per chain per outer iteration.

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// CHAINS accumulators in registers, each one FMA chain: acc = acc * a + b.
// a is just under 1 and b small, so the values stay finite forever.
#define STEP12(FMA) \
  c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b); \
  c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b); \
  c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
#define STEP16(FMA) \
  STEP12(FMA) c12 = FMA(c12, a, b); c13 = FMA(c13, a, b); c14 = FMA(c14, a, b); \
  c15 = FMA(c15, a, b);
#define DEFINE_KERNEL(NAME, VEC, SET1, FMA, ADD, LANES, CHAINS)                 \
  enum { NAME##_chains = CHAINS };                                            \
  static float NAME(long outer) {                                             \
    VEC a = SET1(0.999999f), b = SET1(1e-7f);                                 \
    VEC c0 = SET1(0.0f), c1 = SET1(0.1f), c2 = SET1(0.2f), c3 = SET1(0.3f);   \
    VEC c4 = SET1(0.4f), c5 = SET1(0.5f), c6 = SET1(0.6f), c7 = SET1(0.7f);   \
    VEC c8 = SET1(0.8f), c9 = SET1(0.9f), c10 = SET1(1.0f), c11 = SET1(1.1f); \
    VEC c12 = SET1(1.2f), c13 = SET1(1.3f), c14 = SET1(1.4f), c15 = SET1(1.5f); \
    for (long i = 0; i < outer; ++i) {                                        \
      /* Keep a and b opaque so the compiler cannot fold the chains. */       \
      __asm__ volatile("" : "+x"(a), "+x"(b));                                \
      for (int j = 0; j < INNER; ++j) {                                       \
        STEP##CHAINS(FMA)                                                     \
      }                                                                       \
    }                                                                         \
    VEC s = ADD(ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7))), \
                ADD(ADD(ADD(c8, c9), ADD(c10, c11)), ADD(ADD(c12, c13), ADD(c14, c15)))); \
    float lanes[LANES];                                                       \
    __builtin_memcpy(lanes, &s, sizeof lanes);                                \
    return lanes[0];                                                          \
  }

DEFINE_KERNEL(ymm_kernel, __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8, 12)
#ifdef __AVX512F__
DEFINE_KERNEL(zmm_kernel, __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16, 16)
#endif

// GFLOP/s of `kernel` at `lanes` floats a vector: best of 5 runs of about
// `seconds` / 5 each (the first sizes the runs).
static double measure(float (*kernel)(long), int lanes, int chains, double seconds,
                      float *sink) {
  long outer = 100;
  double start = now();
  *sink += kernel(outer);
  double once = now() - start;
  outer = (long)(outer * (seconds / 5) / (once > 1e-6 ? once : 1e-6));
  if (outer < 1)
    outer = 1;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    start = now();
    *sink += kernel(outer);
    double elapsed = now() - start;
    double gflops = 2.0 * lanes * chains * INNER * (double)outer / elapsed * 1e-9;
    if (gflops > best)
      best = gflops;
  }
  return best;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  float sink = 0;
  double ymm = measure(ymm_kernel, 8, ymm_kernel_chains, seconds, &sink), peak = ymm;
  printf("fp32 FMA peak, 1 core, AVX2 ymm x %d chains: %.1f GFLOP/s\n", ymm_kernel_chains, ymm);
#ifdef __AVX512F__
  double zmm = measure(zmm_kernel, 16, zmm_kernel_chains, seconds, &sink);
  printf("fp32 FMA peak, 1 core, AVX-512 zmm x %d chains: %.1f GFLOP/s\n", zmm_kernel_chains, zmm);
  if (zmm > peak)
    peak = zmm;
#else
  printf("fp32 FMA peak, 1 core, AVX-512 zmm: not compiled (no avx512f with -march=native)\n");
#endif
  printf("fp32 FMA peak, 1 core: %.1f GFLOP/s%s\n", peak, sink == 12345.f ? " " : "");
  return 0;
}
