//===- TransformSchedule.h - Apply a schedule written as text ---*- C++ -*-===//
#ifndef PEFT_LOWERING_CPU_TRANSFORMSCHEDULE_H
#define PEFT_LOWERING_CPU_TRANSFORMSCHEDULE_H

#include "mlir/IR/BuiltinOps.h"

namespace peft {

/// Registers the transform-dialect extensions our schedules use (linalg,
/// scf, tensor, vector): for a pass's getDependentDialects.
void registerScheduleExtensions(mlir::DialectRegistry &registry);

/// Parses `text`, a module holding the transform-dialect sequence
/// `@__transform_main`, and applies it to `root`.
mlir::LogicalResult applyTransformSchedule(mlir::ModuleOp root, llvm::StringRef text);

/// Schedule text that vectorizes each op of the handle `%HANDLE` whose
/// shapes are static; the others fail to, and stay as they are.
std::string vectorizeEachStatic(llvm::StringRef handle);

} // namespace peft

#endif // PEFT_LOWERING_CPU_TRANSFORMSCHEDULE_H
