//===- GemmStart.cpp - Where a GEMM kernel's sums start -------------------===//
#include "lowering/GemmStart.h"

#include "lowering/BufferUses.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"

using namespace mlir;

namespace peft {

GemmStart matchGemmStart(Operation *op, unsigned loops, unsigned channelDim, bool widenedBias) {
  if (auto fill = dyn_cast_or_null<linalg::FillOp>(op)) {
    if (auto constant = fill.getInputs()[0].getDefiningOp<arith::ConstantOp>())
      if (auto value = dyn_cast<FloatAttr>(constant.getValue()))
        if (value.getValue().isPosZero() && value.getType().isF32())
          return {GemmStart::Zeros, {}};
    return {};
  }
  auto generic = dyn_cast_or_null<linalg::GenericOp>(op);
  if (!generic || generic.getNumDpsInputs() != 1 || generic.getNumDpsInits() != 1 ||
      generic.getNumLoops() != loops)
    return {};
  MLIRContext *context = op->getContext();
  Block &body = generic.getRegion().front();
  Value bias = generic.getDpsInputs()[0];
  // The body yields the bias element, or (widenedBias) it widened to f32.
  Value yielded = body.getTerminator()->getOperand(0);
  if (auto widened = yielded.getDefiningOp<arith::ExtFOp>();
      widenedBias && widened && body.getOperations().size() == 2)
    yielded = widened.getIn();
  else if (body.getOperations().size() != 1 || !getElementTypeOrSelf(bias.getType()).isF32())
    return {};
  if (generic.getIndexingMapsArray()[0] !=
          AffineMap::get(loops, 0, getAffineDimExpr(channelDim, context)) ||
      !generic.getIndexingMapsArray()[1].isIdentity() || yielded != body.getArgument(0) ||
      !getElementTypeOrSelf(generic.getDpsInits()[0].getType()).isF32())
    return {};
  return {GemmStart::Bias, bias};
}

Operation *startOf(Operation *gemm, Value out) {
  // Any view of out's buffer: a write through another view between the start
  // and the GEMM changes what the GEMM starts from.
  llvm::SmallPtrSet<Value, 8> aliases = aliasesOf(rootOf(out));
  for (Operation *previous = gemm->getPrevNode(); previous; previous = previous->getPrevNode()) {
    if (auto dps = dyn_cast<DestinationStyleOpInterface>(previous);
        dps && dps.getNumDpsInits() == 1 && dps.getDpsInits()[0] == out &&
        llvm::none_of(dps.getDpsInputs(), [&](Value v) { return aliases.contains(v); }))
      return previous;
    if (interferes(previous, aliases, /*read=*/llvm::SmallPtrSet<Value, 1>()))
      return nullptr;
  }
  return nullptr;
}

} // namespace peft
