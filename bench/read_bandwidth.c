// Single-core sequential read bandwidth: sums a 512 MB buffer a cache line
// (16 floats) at a time, four lines per step, best of five passes. With
// -march=native the compiler reads each line with one AVX-512 load or two
// AVX2 ones. The ceiling for kernels that stream what no cache holds (the
// slot tables of many adapters).
//
//   cc -O2 -march=native bench/read_bandwidth.c -o /tmp/read_bandwidth && /tmp/read_bandwidth
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float Line __attribute__((vector_size(64)));

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  size_t bytes = (size_t)512 << 20, lines = bytes / sizeof(Line);
  Line *data = aligned_alloc(64, bytes);
  if (!data)
    return 1;
  float *floats = (float *)data;
  for (size_t i = 0; i < bytes / sizeof(float); ++i)
    floats[i] = (float)(i & 1023);
  double best = 1e30;
  Line sums[4] = {{0}};
  for (int pass = 0; pass < 5; ++pass) {
    double start = now();
    for (size_t i = 0; i < lines; i += 4) {
      sums[0] += data[i];
      sums[1] += data[i + 1];
      sums[2] += data[i + 2];
      sums[3] += data[i + 3];
    }
    double seconds = now() - start;
    best = seconds < best ? seconds : best;
  }
  // The sum is printed so that the loads are not optimized away.
  Line sum = sums[0] + sums[1] + sums[2] + sums[3];
  printf("sequential read, 1 core: %.1f GB/s (checksum %g)\n", bytes / best / 1e9, sum[0]);
  free(data);
  return 0;
}
