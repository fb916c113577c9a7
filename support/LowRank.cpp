//===- LowRank.cpp - Low-rank updates of a weight, on the host -------------===//
#include "support/LowRank.h"

#include <cmath>

namespace peft {

std::vector<float> magnitudeOverNorm(const float *weight, bool inOut, llvm::ArrayRef<float> magnitude,
                                     int64_t in, int64_t out) {
  std::vector<double> squares(out, 0.0);
  for (int64_t r = 0; r < (inOut ? in : out); ++r)
    for (int64_t c = 0; c < (inOut ? out : in); ++c) {
      double value = weight[r * (inOut ? out : in) + c];
      squares[inOut ? c : r] += value * value;
    }
  std::vector<float> factors(out);
  for (int64_t o = 0; o < out; ++o)
    factors[o] = magnitude[o] / static_cast<float>(std::sqrt(squares[o]));
  return factors;
}

void addLowRankProduct(float *weight, bool inOut, llvm::ArrayRef<float> a,
                       llvm::ArrayRef<float> b, int64_t rank, int64_t in, int64_t out,
                       float scale) {
  if (!inOut) { // W[o, i] += Σ_r (s·B[o, r])·A[r, i]
    for (int64_t o = 0; o < out; ++o)
      for (int64_t r = 0; r < rank; ++r) {
        float factor = scale * b[o * rank + r];
        const float *row = &a[r * in];
        float *target = weight + o * in;
        for (int64_t i = 0; i < in; ++i)
          target[i] += factor * row[i];
      }
    return;
  }
  std::vector<float> scaledBt(rank * out); // (s·B)ᵀ: [r, out]
  for (int64_t o = 0; o < out; ++o)
    for (int64_t r = 0; r < rank; ++r)
      scaledBt[r * out + o] = scale * b[o * rank + r];
  for (int64_t i = 0; i < in; ++i) // W[i, o] += Σ_r A[r, i]·(s·B)ᵀ[r, o]
    for (int64_t r = 0; r < rank; ++r) {
      float factor = a[r * in + i];
      const float *row = &scaledBt[r * out];
      float *target = weight + i * out;
      for (int64_t o = 0; o < out; ++o)
        target[o] += factor * row[o];
    }
}

void writeSlotFactors(llvm::ArrayRef<float> a, llvm::ArrayRef<float> b, int64_t rank, int64_t in,
                      int64_t out, int64_t capacity, float *slotA, float *slotB) {
  for (int64_t r = 0; r < rank; ++r)
    for (int64_t k = 0; k < in; ++k)
      slotA[k * capacity + r] = a[r * in + k];
  for (int64_t o = 0; o < out; ++o)
    for (int64_t r = 0; r < rank; ++r)
      slotB[r * out + o] = b[o * rank + r];
}

} // namespace peft
