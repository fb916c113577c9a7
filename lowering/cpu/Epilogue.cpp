//===- Epilogue.cpp - Panel GEMM epilogues on vectors ---------------------===//
#include "lowering/cpu/Epilogue.h"

#include "lowering/cpu/Passes.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;

namespace peft {

bool isPanelGemmEpilogue(linalg::GenericOp op) {
  if (!op.hasPureTensorSemantics())
    return false;
  // Read by one op, and by tensor.dim (sizes are not reads).
  auto oneReader = [](Value value) {
    return llvm::count_if(value.getUsers(),
                          [](Operation *user) { return !isa<tensor::DimOp>(user); }) == 1;
  };
  auto fromPanelGemm = [&](Value value) {
    // Through reshapes that split the rows into a batch.
    while (auto expand = value.getDefiningOp<tensor::ExpandShapeOp>()) {
      if (!oneReader(value) || expand.getReassociationIndices().back() !=
                                   ReassociationIndices{expand.getResultType().getRank() - 1})
        return false;
      value = expand.getSrc();
    }
    auto gemm = value.getDefiningOp<linalg::GenericOp>();
    return gemm && gemm->hasAttr(kPanelGemmAttr) && oneReader(value);
  };
  // Of a map reading several GEMMs' results (SwiGLU's silu(gate) · up), one
  // GEMM's kernel takes it, the others' results read as rows.
  SmallVector<Value> inputs = op.getDpsInputs();
  auto first = llvm::find_if(inputs, fromPanelGemm);
  if (first == inputs.end())
    return false;
  Value accumulator = *first;
  return epilogueInputs(op, [&](Value value) { return value == accumulator; }).has_value();
}

Value emitEpilogue(OpBuilder &builder, Location loc, linalg::GenericOp op, ValueRange inputs,
                   int64_t width) {
  Block &body = op.getRegion().front();
  IRMapping mapping;
  for (auto [argument, input] : llvm::zip(body.getArguments(), inputs))
    mapping.map(argument, input);
  auto vectorOf = [&](Type type) { return VectorType::get({width}, type); };
  for (Operation &nested : body.without_terminator()) {
    if (auto constant = dyn_cast<arith::ConstantOp>(nested)) {
      auto splat = DenseElementsAttr::get(vectorOf(constant.getType()), constant.getValue());
      mapping.map(constant.getResult(), arith::ConstantOp::create(builder, loc, splat));
      continue;
    }
    SmallVector<Value> operands;
    for (Value operand : nested.getOperands()) {
      if (Value mapped = mapping.lookupOrNull(operand)) {
        operands.push_back(mapped);
        continue;
      }
      // A scalar constant from above, splatted.
      auto constant = operand.getDefiningOp<arith::ConstantOp>();
      auto splat = DenseElementsAttr::get(vectorOf(constant.getType()), constant.getValue());
      operands.push_back(arith::ConstantOp::create(builder, loc, splat));
    }
    OperationState state(loc, nested.getName(), operands,
                         TypeRange{vectorOf(nested.getResult(0).getType())}, nested.getAttrs());
    mapping.map(nested.getResult(0), builder.create(state)->getResult(0));
  }
  return mapping.lookup(body.getTerminator()->getOperand(0));
}

std::string epilogueKey(linalg::GenericOp op, ArrayRef<EpilogueInput> kinds) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  for (EpilogueInput kind : kinds)
    stream << static_cast<int>(kind) << ",";
  // The body with its values named by position: argument i, op j, or the
  // constant itself.
  Block &body = op.getRegion().front();
  llvm::DenseMap<Value, unsigned> position;
  for (BlockArgument argument : body.getArguments())
    position[argument] = position.size();
  for (Operation &nested : body) {
    stream << nested.getName() << "(";
    for (Value operand : nested.getOperands()) {
      if (auto it = position.find(operand); it != position.end())
        stream << "%" << it->second << " ";
      else if (auto constant = operand.getDefiningOp<arith::ConstantOp>())
        stream << constant.getValue() << " ";
    }
    stream << ")" << nested.getAttrDictionary() << ";";
    for (Value result : nested.getResults())
      position[result] = position.size();
  }
  return llvm::formatv("{0:x-}", static_cast<uint64_t>(llvm::hash_value(text))).str();
}

} // namespace peft
