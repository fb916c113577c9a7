//===- SlotGather.h - Batched GEMMs that read adapter slots in place -*- C++ -*-===//
//
// peft.multi_lora lowers to a selection of each batch element's slot
// factors (a generic marked kSlotGatherAttr) and batched GEMMs reading the
// selection. A back end reads the table at the element's slot instead, and
// drops the copy; with the slots' ranks, over each slot's own rank. Shared
// by the CPU's slot kernels and the CUDA target's tiled GEMMs.
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_SLOTGATHER_H
#define PEFT_LOWERING_SLOTGATHER_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"

#include <optional>

namespace peft {

struct SlotGather {
  mlir::linalg::GenericOp op; ///< The selection, [batch, K, N].
  mlir::Value index;          ///< [batch] i64: each element's slot, -1 for none.
  mlir::Value table;          ///< [slots, K, N], f32, unit inner stride.
  /// [slots] f32: each slot's rank along `rankDim` (1: K, the expansion's;
  /// 2: N, the shrink's), past which the table holds zeros; null without.
  mlir::Value ranks;
  int64_t rankDim = 0;
};

/// On memrefs: the selection that fills `operand` of `reader` (in the same
/// block), when `reader` can read the table in its place: the selection is
/// the last op before `reader` to touch `operand`, and the next one after it
/// (if any) another selection or its deallocation (one buffer holds the
/// selections of several layers, each written just before its GEMM).
std::optional<SlotGather> slotGatherOf(mlir::Operation *reader, mlir::Value operand);

/// Erases the selection once nothing reads it, and its buffer with it where
/// nothing else uses that but deallocations.
void eraseSlotGather(SlotGather gather);

} // namespace peft

#endif // PEFT_LOWERING_SLOTGATHER_H
