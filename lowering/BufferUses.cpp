//===- BufferUses.cpp - Which ops touch which buffers -----------------------===//
#include "lowering/BufferUses.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;

namespace peft {

llvm::SmallPtrSet<Value, 8> aliasesOf(Value value) {
  llvm::SmallPtrSet<Value, 8> aliases;
  SmallVector<Value> work = {value};
  while (!work.empty()) {
    Value next = work.pop_back_val();
    if (!aliases.insert(next).second)
      continue;
    for (Operation *user : next.getUsers())
      if (auto view = dyn_cast<ViewLikeOpInterface>(user); view && view.getViewSource() == next)
        work.push_back(view->getResult(0));
  }
  return aliases;
}

Value rootOf(Value value) {
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>())
    value = view.getViewSource();
  return value;
}

bool usesAnyOf(Operation *op, const llvm::SmallPtrSetImpl<Value> &values) {
  return op
      ->walk([&](Operation *nested) {
        return llvm::any_of(nested->getOperands(), [&](Value v) { return values.contains(v); })
                   ? WalkResult::interrupt()
                   : WalkResult::advance();
      })
      .wasInterrupted();
}

bool interferes(Operation *op, const llvm::SmallPtrSetImpl<Value> &touched,
                const llvm::SmallPtrSetImpl<Value> &read) {
  WalkResult result = op->walk([&](Operation *nested) {
    // A view or a size reads no element.
    if (isa<ViewLikeOpInterface, memref::DimOp>(nested))
      return WalkResult::advance();
    for (Value operand : nested->getOperands()) {
      if (touched.contains(operand))
        return WalkResult::interrupt();
      if (!read.contains(operand))
        continue;
      if (auto dps = dyn_cast<DestinationStyleOpInterface>(nested)) {
        if (llvm::is_contained(dps.getDpsInits(), operand))
          return WalkResult::interrupt();
      } else if (!isPure(nested) &&
                 !isa<ViewLikeOpInterface, memref::LoadOp, vector::LoadOp>(nested)) {
        return WalkResult::interrupt(); // A copy, a store, a call: may write it.
      }
    }
    return WalkResult::advance();
  });
  return result.wasInterrupted();
}

} // namespace peft
