//===- DoraElement.cpp - PEFT's DoRA output for one element ----------------===//
#include "lowering/DoraElement.h"

#include "lowering/ElementCasts.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;

namespace peft {

Value doraElement(OpBuilder &builder, Location loc, Value base, Value update, Value n, Value bias,
                  Type layerType) {
  Type type = base.getType();
  Value centered = bias ? arith::SubFOp::create(builder, loc, base, bias).getResult() : base;
  centered = convertFloat(builder, loc, convertFloat(builder, loc, centered, layerType), type);
  Value one = arith::ConstantOp::create(builder, loc, builder.getFloatAttr(type, 1.0));
  Value rescale = arith::MulFOp::create(builder, loc, arith::SubFOp::create(builder, loc, n, one),
                                        centered);
  Value scaled = arith::MulFOp::create(builder, loc, n, update);
  return arith::AddFOp::create(builder, loc, base,
                               arith::AddFOp::create(builder, loc, rescale, scaled));
}

} // namespace peft
