//===- SlotGather.cpp - Batched GEMMs that read adapter slots in place ------===//
#include "lowering/SlotGather.h"

#include "lowering/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "llvm/ADT/SmallPtrSet.h"

using namespace mlir;

namespace peft {

/// The memref a selection's body loads from with `rank` indices, defined
/// outside it, or null.
static Value loadedBy(linalg::GenericOp gather, int64_t rank) {
  Value loaded;
  gather.getBody()->walk([&](memref::LoadOp load) {
    if (load.getMemRefType().getRank() == rank)
      loaded = load.getMemRef();
  });
  if (!loaded || gather->isAncestor(loaded.getParentBlock()->getParentOp()))
    return {};
  return loaded;
}

static bool unitInnerStride(MemRefType type) {
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(type.getStridesAndOffset(strides, offset)) && !strides.empty() &&
         strides.back() == 1;
}

/// `gather` as a SlotGather, when its table and ranks are as one expects.
static std::optional<SlotGather> describe(linalg::GenericOp gather) {
  SlotGather slots{gather, gather.getDpsInputs()[0], loadedBy(gather, 3), {}, 0};
  auto index = dyn_cast<MemRefType>(slots.index.getType());
  if (!index || index.getRank() != 1 || !index.getElementType().isInteger(64))
    return std::nullopt;
  auto table = slots.table ? cast<MemRefType>(slots.table.getType()) : MemRefType();
  if (!table || !table.getElementType().isF32() || !unitInnerStride(table))
    return std::nullopt;
  if (auto dim = dyn_cast<IntegerAttr>(gather->getAttr(kSlotGatherAttr))) {
    Value ranks = loadedBy(gather, 1);
    if (ranks && cast<MemRefType>(ranks.getType()).getElementType().isF32() &&
        (dim.getInt() == 1 || dim.getInt() == 2)) {
      slots.ranks = ranks;
      slots.rankDim = dim.getInt();
    }
  }
  return slots;
}

std::optional<SlotGather> slotGatherOf(Operation *reader, Value operand) {
  Block *block = reader->getBlock();
  if (operand.getParentBlock() != block)
    return std::nullopt;
  // The ops of the reader's block that use `operand`, themselves or inside.
  llvm::SmallPtrSet<Operation *, 8> touching;
  for (Operation *user : operand.getUsers())
    if (Operation *inBlock = block->findAncestorOpInBlock(*user))
      touching.insert(inBlock);
  auto isGatherOfOperand = [&](Operation *op) {
    auto generic = dyn_cast<linalg::GenericOp>(op);
    return generic && generic->hasAttr(kSlotGatherAttr) && generic.getNumDpsInputs() == 1 &&
           generic.getNumDpsInits() == 1 && generic.getDpsInits()[0] == operand;
  };
  linalg::GenericOp gather;
  for (Operation *op = reader->getPrevNode(); op && !gather; op = op->getPrevNode())
    if (touching.contains(op)) {
      if (!isGatherOfOperand(op))
        return std::nullopt;
      gather = cast<linalg::GenericOp>(op);
    }
  if (!gather)
    return std::nullopt;
  for (Operation *op = reader->getNextNode(); op; op = op->getNextNode())
    if (touching.contains(op)) {
      if (!isGatherOfOperand(op) && !isa<memref::DeallocOp>(op))
        return std::nullopt;
      break;
    }
  return describe(gather);
}

void eraseSlotGather(SlotGather gather) {
  Value buffer = gather.op.getDpsInits()[0];
  gather.op->erase();
  auto alloc = buffer.getDefiningOp<memref::AllocOp>();
  if (!alloc || !llvm::all_of(buffer.getUsers(), llvm::IsaPred<memref::DeallocOp>))
    return;
  for (Operation *user : llvm::make_early_inc_range(buffer.getUsers()))
    user->erase();
  alloc->erase();
}

} // namespace peft
