//===- LowRank.h - Low-rank updates of a weight, on the host ----*- C++ -*-===//
//
// The arithmetic that merging an adapter (peft-merge-adapters), filling
// slots (peft-batch-adapters) and loading an adapter into one at run time
// (the runtime, which links no MLIR) share: W + s·B·A, DoRA's per-output
// m / ‖W + s·B·A‖, on row-major float matrices, W [out, in] or, `inOut`
// (GPT-2's Conv1D), [in, out]; and a slot's layout of A and B.
//===----------------------------------------------------------------------===//
#ifndef PEFT_SUPPORT_LOWRANK_H
#define PEFT_SUPPORT_LOWRANK_H

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <vector>

namespace peft {

/// Adds scale·B·A (B [out, rank], A [rank, in]) to `weight`. Loops are
/// ordered so that the innermost one runs over contiguous memory.
void addLowRankProduct(float *weight, bool inOut, llvm::ArrayRef<float> a, llvm::ArrayRef<float> b,
                       int64_t rank, int64_t in, int64_t out, float scale);

/// A [rank, in] and B [out, rank] as a --mode multi slot holds them, the way
/// GEMMs read them: Aᵀ into the first `rank` columns of `slotA` [in,
/// capacity], Bᵀ into the first `rank` rows of `slotB` [capacity, out]; the
/// rest is left as it is (zeros: the padding).
void writeSlotFactors(llvm::ArrayRef<float> a, llvm::ArrayRef<float> b, int64_t rank, int64_t in,
                      int64_t out, int64_t capacity, float *slotA, float *slotB);

/// m[o] / ‖W[o, :]‖ for every output o (sums of squares in double).
std::vector<float> magnitudeOverNorm(const float *weight, bool inOut,
                                     llvm::ArrayRef<float> magnitude, int64_t in, int64_t out);

} // namespace peft

#endif // PEFT_SUPPORT_LOWRANK_H
