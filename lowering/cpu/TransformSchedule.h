//===- TransformSchedule.h - Apply a schedule written as text ---*- C++ -*-===//
#ifndef PEFT_LOWERING_CPU_TRANSFORMSCHEDULE_H
#define PEFT_LOWERING_CPU_TRANSFORMSCHEDULE_H

#include "mlir/IR/BuiltinOps.h"

namespace peft {

/// Parses `text`, a module holding the transform-dialect sequence
/// `@__transform_main`, and applies it to `root`.
mlir::LogicalResult applyTransformSchedule(mlir::ModuleOp root, llvm::StringRef text);

} // namespace peft

#endif // PEFT_LOWERING_CPU_TRANSFORMSCHEDULE_H
