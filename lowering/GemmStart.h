//===- GemmStart.h - Where a GEMM kernel's sums start -----------*- C++ -*-===//
//
// A GEMM accumulates into its output, which the op before it starts: zeros,
// or a layer's bias broadcast along the output channels. A kernel can start
// its sums there itself, instead of a pass of its own over the output and a
// load of it per tile. Shared by the CPU's panel and window GEMMs and the
// CUDA target's tiled GEMMs.
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_GEMMSTART_H
#define PEFT_LOWERING_GEMMSTART_H

#include "mlir/IR/Operation.h"

namespace peft {

/// How a GEMM kernel's sums start: as the output holds them, zeros (a
/// linalg.fill of 0 writes it), or a bias per output channel (a generic
/// broadcasting a vector along one dimension writes it).
struct GemmStart {
  enum Kind { Loaded, Zeros, Bias } kind = Loaded;
  mlir::Value bias; ///< For Bias: the vector.
};

/// What `op` writes if it is a zero fill of f32, or a broadcast of an f32
/// vector along dimension `channelDim` of its `loops` loops (on tensors or
/// memrefs); with `widenedBias`, also of a half-type vector widened to f32
/// (a half model's bias). Loaded otherwise.
GemmStart matchGemmStart(mlir::Operation *op, unsigned loops, unsigned channelDim,
                         bool widenedBias = false);

/// On memrefs: the op just before `gemm` in its block that writes `out` (its
/// only output, not reading it), when nothing between them touches `out`'s
/// buffer; null otherwise.
mlir::Operation *startOf(mlir::Operation *gemm, mlir::Value out);

} // namespace peft

#endif // PEFT_LOWERING_GEMMSTART_H
