//===- TransformSchedule.cpp - Apply a schedule written as text -------------===//
#include "lowering/cpu/TransformSchedule.h"

#include "mlir/Dialect/Linalg/TransformOps/DialectExtension.h"
#include "mlir/Dialect/SCF/TransformOps/SCFTransformOps.h"
#include "mlir/Dialect/Tensor/TransformOps/TensorTransformOps.h"
#include "mlir/Dialect/Transform/IR/TransformOps.h"
#include "mlir/Dialect/Vector/TransformOps/VectorTransformOps.h"
#include "mlir/Dialect/Transform/Transforms/TransformInterpreterUtils.h"
#include "mlir/Parser/Parser.h"

using namespace mlir;

namespace peft {

void registerScheduleExtensions(DialectRegistry &registry) {
  linalg::registerTransformDialectExtension(registry);
  scf::registerTransformDialectExtension(registry);
  tensor::registerTransformDialectExtension(registry);
  vector::registerTransformDialectExtension(registry);
}

LogicalResult applyTransformSchedule(ModuleOp root, llvm::StringRef text) {
  OwningOpRef<ModuleOp> schedule = parseSourceString<ModuleOp>(text, root.getContext());
  if (!schedule)
    return failure();
  auto entry = schedule->lookupSymbol<transform::NamedSequenceOp>("__transform_main");
  return transform::applyTransformNamedSequence(root, entry, *schedule,
                                                transform::TransformOptions());
}

std::string vectorizeEachStatic(llvm::StringRef handle) {
  return ("    transform.foreach %" + handle + " : !transform.any_op {\n"
          "    ^bb0(%tile: !transform.any_op):\n"
          "      transform.sequence %tile : !transform.any_op failures(suppress) {\n"
          "      ^bb0(%static_tile: !transform.any_op):\n"
          "        transform.structured.vectorize %static_tile : !transform.any_op\n"
          "      }\n"
          "    }\n")
      .str();
}

} // namespace peft
