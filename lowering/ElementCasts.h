//===- ElementCasts.h - Float element types of tensors, converted -*- C++ -*-===//
#ifndef PEFT_LOWERING_ELEMENTCASTS_H
#define PEFT_LOWERING_ELEMENTCASTS_H

#include "mlir/IR/Builders.h"

namespace peft {

/// `value` widened or narrowed to the float type `type`; between f16 and
/// bf16 (one width, neither wider) through f32.
mlir::Value convertFloat(mlir::OpBuilder &builder, mlir::Location loc, mlir::Value value,
                         mlir::Type type);

/// A float tensor with its elements converted to `elementType`; an absent
/// value, an integer tensor (indices) or one already of that type as it is.
/// Unmerged adapters compute in their layer's computeTypeOf whatever the
/// types of their weights: the adapter's tensors and the layer's result are
/// widened, the sum rounded once.
mlir::Value castElements(mlir::OpBuilder &builder, mlir::Location loc, mlir::Value tensor,
                         mlir::Type elementType);

} // namespace peft

#endif // PEFT_LOWERING_ELEMENTCASTS_H
