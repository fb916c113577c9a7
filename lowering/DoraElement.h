//===- DoraElement.h - PEFT's DoRA output for one element -------*- C++ -*-===//
#ifndef PEFT_LOWERING_DORAELEMENT_H
#define PEFT_LOWERING_DORAELEMENT_H

#include "mlir/IR/Builders.h"

namespace peft {

/// In a body, PEFT's DoRA output for one element of a linear layer, in the
/// compute type of `base`: base + (n − 1)·round(base − bias) + n·update,
/// `update` the low-rank branch s·(x·Aᵀ)·Bᵀ, `bias` the layer's (or null),
/// round(·) to `layerType` and back as PEFT's Linear rounds its base result
/// (nothing when the layer computes in that type).
mlir::Value doraElement(mlir::OpBuilder &builder, mlir::Location loc, mlir::Value base,
                        mlir::Value update, mlir::Value n, mlir::Value bias,
                        mlir::Type layerType);

} // namespace peft

#endif // PEFT_LOWERING_DORAELEMENT_H
