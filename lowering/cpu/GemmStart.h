//===- GemmStart.h - The CPU GEMM kernels' starts ---------------*- C++ -*-===//
//
// The CPU's panel and window GEMM kernels start their registers from the op
// before them (lowering/GemmStart.h); these say which ops the tensor-level
// passes leave to them, and how kernel names tell the starts apart.
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_CPU_GEMMSTART_H
#define PEFT_LOWERING_CPU_GEMMSTART_H

#include "lowering/GemmStart.h"

#include "mlir/IR/Operation.h"

#include <string>

namespace peft {

/// On tensors: whether `op` starts a panel or window GEMM whose kernel takes
/// it over (its result is that GEMM's output operand and read by nothing
/// else): left for the kernel by the passes that would run it apart.
bool startsGemmKernel(mlir::Operation *op);

/// "", "_from_zero" or "_from_bias": kernel names differ where starts do.
std::string startSuffix(GemmStart::Kind kind);

} // namespace peft

#endif // PEFT_LOWERING_CPU_GEMMSTART_H
