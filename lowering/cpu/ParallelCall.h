//===- ParallelCall.h - Calls split over the runtime's threads --*- C++ -*-===//
#ifndef PEFT_LOWERING_CPU_PARALLELCALL_H
#define PEFT_LOWERING_CPU_PARALLELCALL_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace peft {

/// Emits, at the builder's point, `kernel(captures..., begin, end)` for
/// chunks [begin, end) of [0, count) run by the runtime's thread pool:
/// `peft_parallel_for(task, context, count)` (runtime/cpu/model_support.c), where
/// the context holds the captures' LLVM values (memref descriptors, scalars)
/// and `KERNEL_task(context, begin, end)`, made once per kernel, unpacks them
/// and calls the kernel. `kernel`'s last two arguments are the index bounds.
/// Works on memrefs, before the conversion to the LLVM dialect.
void createParallelCall(mlir::OpBuilder &builder, mlir::Location loc, mlir::func::FuncOp kernel,
                        mlir::ValueRange captures, mlir::Value count);

} // namespace peft

#endif // PEFT_LOWERING_CPU_PARALLELCALL_H
