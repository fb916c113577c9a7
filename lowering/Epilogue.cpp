//===- Epilogue.cpp - Elementwise ops run in a GEMM kernel's store ----------===//
#include "lowering/Epilogue.h"

#include "lowering/BufferUses.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;

namespace peft {

/// Whether `value`, used in a body, is a scalar constant from above.
static bool isScalarConstant(Value value) {
  auto constant = value.getDefiningOp<arith::ConstantOp>();
  return constant && constant.getType().isIntOrIndexOrFloat();
}

std::optional<SmallVector<EpilogueInput>>
epilogueInputs(linalg::GenericOp op, function_ref<bool(Value)> isAccumulator,
               EpilogueTypes types) {
  if (op.getNumDpsInits() != 1 || op.getNumResults() > 1 ||
      op.getNumParallelLoops() != op.getNumLoops() || op.getNumLoops() < 1 ||
      !op.getIndexingMapsArray().back().isIdentity())
    return std::nullopt;
  for (Value operand : op->getOperands()) {
    Type element = getElementTypeOrSelf(operand.getType());
    if (types == EpilogueTypes::F32 ? !element.isF32() : !isa<FloatType>(element))
      return std::nullopt;
  }
  // The body: elementwise arith and math ops on its arguments and constants.
  Block &body = op.getRegion().front();
  for (Operation &nested : body.without_terminator()) {
    if (isScalarConstant(nested.getResult(0)))
      continue;
    if (!nested.hasTrait<OpTrait::Elementwise>() || nested.getNumRegions() ||
        !isa<arith::ArithDialect, math::MathDialect>(nested.getDialect()) ||
        nested.getNumResults() != 1)
      return std::nullopt;
    for (Value operand : nested.getOperands())
      if (operand.getParentBlock() != &body && !isScalarConstant(operand))
        return std::nullopt;
  }
  if (body.getArgument(op.getNumDpsInputs()).getNumUses() != 0) // Reads its output.
    return std::nullopt;
  unsigned rank = op.getNumLoops();
  MLIRContext *context = op.getContext();
  AffineMap columns = AffineMap::get(rank, 0, getAffineDimExpr(rank - 1, context));
  SmallVector<EpilogueInput> kinds;
  int accumulators = 0;
  for (OpOperand *input : op.getDpsInputOperands()) {
    AffineMap map = op.getMatchingIndexingMap(input);
    if (map.isIdentity() && isAccumulator(input->get()) &&
        getElementTypeOrSelf(input->get().getType()).isF32()) {
      kinds.push_back(EpilogueInput::Accumulator);
      ++accumulators;
    } else if (map.isIdentity()) {
      kinds.push_back(EpilogueInput::Rows);
    } else if (map == columns) {
      kinds.push_back(EpilogueInput::Columns);
    } else {
      return std::nullopt;
    }
  }
  if (accumulators != 1)
    return std::nullopt;
  return kinds;
}

std::optional<FoundEpilogue> findEpilogue(ArrayRef<Operation *> gemms, Value out,
                                          ValueRange inputs, EpilogueTypes types) {
  Operation *last = gemms.back();
  llvm::SmallPtrSet<Value, 8> outAliases = aliasesOf(out), inputAliases;
  for (Value input : inputs)
    inputAliases.insert_range(aliasesOf(input));
  linalg::GenericOp consumer;
  for (Operation *op = last->getNextNode(); op && !consumer; op = op->getNextNode()) {
    // Views (of out too: the consumer reads through them) and sizes read
    // nothing.
    if (isa<ViewLikeOpInterface, memref::DimOp>(op))
      continue;
    if (!usesAnyOf(op, outAliases)) {
      if (interferes(op, outAliases, inputAliases))
        return std::nullopt;
      continue;
    }
    consumer = dyn_cast<linalg::GenericOp>(op);
    if (!consumer || !consumer.hasPureBufferSemantics())
      return std::nullopt;
  }
  if (!consumer)
    return std::nullopt;
  std::optional<SmallVector<EpilogueInput>> kinds =
      epilogueInputs(consumer, [&](Value v) { return outAliases.contains(v); }, types);
  Value target = consumer.getDpsInits()[0];
  if (!kinds || outAliases.contains(target) ||
      llvm::any_of(inputs, [&](Value input) { return rootOf(input) == rootOf(target); }))
    return std::nullopt;
  // Nothing reads out after the GEMM but the epilogue: its result is all
  // that is left of out (what writes out before, its start, stays).
  Operation *first = gemms.front();
  for (Value alias : outAliases)
    for (Operation *user : alias.getUsers()) {
      Operation *ancestor = first->getBlock()->findAncestorOpInBlock(*user);
      if (!llvm::is_contained(gemms, user) && user != consumer.getOperation() &&
          !isa<ViewLikeOpInterface, memref::DeallocOp, memref::DimOp>(user) &&
          !(ancestor && ancestor->isBeforeInBlock(first)))
        return std::nullopt;
    }
  return FoundEpilogue{consumer, *kinds};
}

} // namespace peft
