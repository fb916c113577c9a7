//===- Passes.h - Lowering passes and pipelines -----------------*- C++ -*-===//
#ifndef PEFT_LOWERING_PASSES_H
#define PEFT_LOWERING_PASSES_H

#include "dialects/peft/PeftDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Transform/IR/TransformDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace peft {

#define GEN_PASS_DECL
#include "lowering/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "lowering/Passes.h.inc"

/// The patterns lowering peft.multi_lora and peft.multi_ia3 to linalg
/// (MultiAdaptersToLinalg.cpp),
/// part of convert-peft-to-linalg.
void populateMultiAdaptersToLinalgPatterns(mlir::RewritePatternSet &patterns);
/// Marks the generics that select each row's slot of a slot table
/// (`out[b, i, j] = table[max(index[b], 0), i, j]`): a back end may read the
/// table at the row's slot instead of the copy, and skip rows of slot -1
/// (peft-cpu-lower-panel-gemms does). An integer value d says the body also
/// reads the slots' ranks (an f32 vector) and zeros positions past the
/// slot's rank along dimension d (1 or 2), which the table holds as zeros.
constexpr llvm::StringLiteral kSlotGatherAttr = "peft.slot_gather";

/// Argument attributes that `peft-externalize-weights` sets.
constexpr llvm::StringLiteral kWeightNameAttr = "peft.weight";
/// The tensor's key in its file, where it differs from its name (an
/// adapter's tensor, named after its adapter).
constexpr llvm::StringLiteral kWeightKeyAttr = "peft.key";
constexpr llvm::StringLiteral kWeightFileAttr = "peft.file";
constexpr llvm::StringLiteral kWeightValueAttr = "peft.value";
/// A weight stored packed for a back end's GEMM kernels:
/// `{of = "NAME", tile = T, transposed = B, shape = array<i64: ...>}`, the
/// fields of `PanelLayout` (runtime/Manifest.h), which the artifact writer
/// packs the weight's bytes by.
constexpr llvm::StringLiteral kWeightPanelsAttr = "peft.panels";

/// Registers the passes above.
inline void registerLoweringPasses() { registerPeftLoweringPasses(); }

} // namespace peft

#endif // PEFT_LOWERING_PASSES_H
