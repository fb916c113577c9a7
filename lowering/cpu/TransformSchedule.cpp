//===- TransformSchedule.cpp - Apply a schedule written as text -------------===//
#include "lowering/cpu/TransformSchedule.h"

#include "mlir/Dialect/Transform/IR/TransformOps.h"
#include "mlir/Dialect/Transform/Transforms/TransformInterpreterUtils.h"
#include "mlir/Parser/Parser.h"

using namespace mlir;

namespace peft {

LogicalResult applyTransformSchedule(ModuleOp root, llvm::StringRef text) {
  OwningOpRef<ModuleOp> schedule = parseSourceString<ModuleOp>(text, root.getContext());
  if (!schedule)
    return failure();
  auto entry = schedule->lookupSymbol<transform::NamedSequenceOp>("__transform_main");
  return transform::applyTransformNamedSequence(root, entry, *schedule,
                                                transform::TransformOptions());
}

} // namespace peft
