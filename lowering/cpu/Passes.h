//===- Passes.h - The CPU back end's passes ---------------------*- C++ -*-===//
#ifndef PEFT_LOWERING_CPU_PASSES_H
#define PEFT_LOWERING_CPU_PASSES_H

#include "lowering/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"

namespace peft {

#define GEN_PASS_DECL
#include "lowering/cpu/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "lowering/cpu/Passes.h.inc"

/// Marks the linalg.generic of a panel GEMM (peft-cpu-pack-weights); its
/// value is the panel width.
constexpr llvm::StringLiteral kPanelGemmAttr = "peft.panel_gemm";

} // namespace peft

#endif // PEFT_LOWERING_CPU_PASSES_H
