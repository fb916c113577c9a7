//===- ElementCasts.cpp - Float element types of tensors, converted -------===//
#include "lowering/ElementCasts.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;

namespace peft {

/// `value` widened or narrowed to the float type `type`; between f16 and
/// bf16 (one width, neither wider) through f32.
Value convertFloat(OpBuilder &builder, Location loc, Value value, Type type) {
  unsigned from = value.getType().getIntOrFloatBitWidth(), to = type.getIntOrFloatBitWidth();
  if (value.getType() == type)
    return value;
  if (from < to)
    return arith::ExtFOp::create(builder, loc, type, value);
  if (from == to)
    value = arith::ExtFOp::create(builder, loc, builder.getF32Type(), value);
  return arith::TruncFOp::create(builder, loc, type, value);
}

/// A float tensor with its elements converted to `elementType`; an absent
/// value, an integer tensor (indices) or one already of that type as it is.
/// Unmerged adapters compute in their layer's computeTypeOf whatever the
/// types of their weights: the adapter's tensors and the layer's result are
/// widened, the sum rounded once.
Value castElements(OpBuilder &builder, Location loc, Value tensor, Type elementType) {
  if (!tensor)
    return tensor;
  auto type = cast<RankedTensorType>(tensor.getType());
  if (!isa<FloatType>(type.getElementType()) || type.getElementType() == elementType)
    return tensor;
  AffineMap identity = builder.getMultiDimIdentityMap(type.getRank());
  Value init = tensor::EmptyOp::create(builder, loc, tensor::getMixedSizes(builder, loc, tensor),
                                       elementType);
  return linalg::GenericOp::create(
             builder, loc, init.getType(), tensor, init, ArrayRef<AffineMap>{identity, identity},
             SmallVector<utils::IteratorType>(type.getRank(), utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               linalg::YieldOp::create(nested, nestedLoc,
                                       convertFloat(nested, nestedLoc, args[0], elementType));
             })
      .getResult(0);
}

} // namespace peft
