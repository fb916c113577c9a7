//===- KernelBuilding.cpp - What the kernel-generating passes share ---------===//
#include "lowering/cpu/KernelBuilding.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;

namespace peft {

bool isF32MultiplyAccumulate(linalg::GenericOp op) {
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1)
    return false;
  for (Value operand : op->getOperands())
    if (!getElementTypeOrSelf(operand.getType()).isF32())
      return false;
  Block &body = op.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  auto add = yield.getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!add || body.getOperations().size() != 3)
    return false;
  Value acc = body.getArgument(2);
  if (add.getLhs() != acc && add.getRhs() != acc)
    return false;
  auto mul = (add.getLhs() == acc ? add.getRhs() : add.getLhs()).getDefiningOp<arith::MulFOp>();
  Value a = body.getArgument(0), b = body.getArgument(1);
  return mul && ((mul.getLhs() == a && mul.getRhs() == b) ||
                 (mul.getLhs() == b && mul.getRhs() == a));
}

bool hasUnitInnerStride(MemRefType type) {
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(type.getStridesAndOffset(strides, offset)) && strides.back() == 1;
}

MemRefType withDynamicStrides(MemRefType type) {
  SmallVector<int64_t> strides(type.getRank(), ShapedType::kDynamic);
  strides.back() = 1;
  return MemRefType::get(type.getShape(), type.getElementType(),
                         StridedLayoutAttr::get(type.getContext(), ShapedType::kDynamic, strides));
}

Value loadVector(OpBuilder &builder, Location loc, VectorType type, Value memref,
                 ValueRange indices, Value mask) {
  if (!mask)
    return vector::LoadOp::create(builder, loc, type, memref, indices);
  Value zero = arith::ConstantOp::create(
      builder, loc, DenseElementsAttr::get(type, builder.getZeroAttr(type.getElementType())));
  return vector::MaskedLoadOp::create(builder, loc, type, memref, indices, mask, zero);
}

void storeVector(OpBuilder &builder, Location loc, Value value, Value memref, ValueRange indices,
                 Value mask) {
  if (!mask)
    vector::StoreOp::create(builder, loc, value, memref, indices);
  else
    vector::MaskedStoreOp::create(builder, loc, memref, indices, mask, value);
}

func::FuncOp getOrCreateKernelFunction(ModuleOp module, StringRef name, TypeRange arguments,
                                       function_ref<void(OpBuilder &, Block *)> buildBody) {
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
  Location loc = builder.getUnknownLoc();
  auto kernel = func::FuncOp::create(builder, loc, name, builder.getFunctionType(arguments, {}));
  kernel.setPrivate();
  Block *body = kernel.addEntryBlock();
  builder.setInsertionPointToStart(body);
  buildBody(builder, body);
  func::ReturnOp::create(builder, loc);
  return kernel;
}

} // namespace peft
