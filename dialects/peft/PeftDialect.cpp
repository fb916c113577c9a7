//===- PeftDialect.cpp - The peft dialect -----------------------------------===//
#include "dialects/peft/PeftDialect.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace peft;

#include "dialects/peft/PeftDialect.cpp.inc"
#include "dialects/peft/PeftInterfaces.cpp.inc"

void PeftDialect::initialize() {
  weightStore = std::make_unique<WeightStore>();
  addOperations<
#define GET_OP_LIST
#include "dialects/peft/PeftOps.cpp.inc"
      >();
}

std::optional<DType> peft::dtypeOf(Type elementType) {
  if (elementType.isF32())
    return DType::F32;
  if (elementType.isF16())
    return DType::F16;
  if (elementType.isBF16())
    return DType::BF16;
  if (elementType.isF64())
    return DType::F64;
  if (elementType.isInteger(64))
    return DType::I64;
  if (elementType.isInteger(32))
    return DType::I32;
  if (elementType.isInteger(16))
    return DType::I16;
  if (elementType.isInteger(8))
    return DType::I8;
  if (elementType.isInteger(1))
    return DType::Bool;
  return std::nullopt;
}

Type peft::computeTypeOf(Type elementType) {
  if (isa<FloatType>(elementType) && elementType.getIntOrFloatBitWidth() < 32)
    return Float32Type::get(elementType.getContext());
  return elementType;
}

Type peft::elementTypeOf(DType dtype, MLIRContext *context) {
  Builder builder(context);
  switch (dtype) {
  case DType::F32:
    return builder.getF32Type();
  case DType::F16:
    return builder.getF16Type();
  case DType::BF16:
    return builder.getBF16Type();
  case DType::F64:
    return builder.getF64Type();
  case DType::I64:
    return builder.getI64Type();
  case DType::I32:
    return builder.getI32Type();
  case DType::I16:
    return builder.getI16Type();
  case DType::I8:
  case DType::U8: // Unsigned integers are signless in the IR; see kDTypeAttr.
    return builder.getI8Type();
  case DType::U16:
    return builder.getI16Type();
  case DType::U32:
    return builder.getI32Type();
  case DType::U64:
    return builder.getI64Type();
  case DType::Bool:
    return builder.getI1Type();
  default:
    return {};
  }
}
