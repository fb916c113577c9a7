//===- CpuDistributeCopies.cpp - Copies and fills in rows on the threads ----===//
//
// On memrefs, after bufferization: the copies and fills it made (a pad's
// fill and interior, a strided slice made contiguous, a buffer copied where
// two ops could not share it) would run on one thread, in memrefCopy's
// element-by-element loop when strided. Each large one becomes
//
//   scf.forall (%i...) in (leading dims) {
//     scf.for %j = 0 to row length { dst[%i..., %j] = src[%i..., %j] or c }
//   }
//
// a loop LLVM vectorizes, run on the threads by peft-cpu-lower-forall.
//===----------------------------------------------------------------------===//
#include "lowering/cpu/Passes.h"

namespace peft {
#define GEN_PASS_DEF_CPUDISTRIBUTECOPIES
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// Fills `target` row by row in parallel with valueAt(builder, indices).
static void writeRows(OpBuilder &builder, Location loc, Value target,
                      function_ref<Value(OpBuilder &, Location, ValueRange)> valueAt) {
  auto type = cast<MemRefType>(target.getType());
  int64_t rank = type.getRank();
  SmallVector<OpFoldResult> rows;
  for (int64_t d = 0; d + 1 < rank; ++d)
    rows.push_back(memref::getMixedSize(builder, loc, target, d));
  Value length = memref::DimOp::create(builder, loc, target, rank - 1);
  scf::ForallOp::create(
      builder, loc, rows, ValueRange{}, std::nullopt,
      [&](OpBuilder &nested, Location nestedLoc, ValueRange ivs) {
        Value zero = arith::ConstantIndexOp::create(nested, nestedLoc, 0);
        Value one = arith::ConstantIndexOp::create(nested, nestedLoc, 1);
        scf::ForOp::create(nested, nestedLoc, zero, length, one, ValueRange{},
                           [&](OpBuilder &inner, Location innerLoc, Value j, ValueRange) {
                             SmallVector<Value> indices(ivs.begin(), ivs.end());
                             indices.push_back(j);
                             Value value = valueAt(inner, innerLoc, indices);
                             memref::StoreOp::create(inner, innerLoc, value, target, indices);
                             scf::YieldOp::create(inner, innerLoc);
                           });
        scf::InParallelOp::create(nested, nestedLoc);
      });
}

struct CpuDistributeCopiesPass : peft::impl::CpuDistributeCopiesBase<CpuDistributeCopiesPass> {
  using CpuDistributeCopiesBase::CpuDistributeCopiesBase;

  /// Whether writing `target` is worth waking the threads: rows to share,
  /// and enough elements (unknown sizes pass).
  bool worthDistributing(Value target) const {
    auto type = dyn_cast<MemRefType>(target.getType());
    if (!type || type.getRank() < 2)
      return false;
    return !type.hasStaticShape() || type.getNumElements() >= minElements;
  }

  void runOnOperation() override {
    SmallVector<Operation *> candidates;
    getOperation().walk([&](Operation *op) {
      if (!isa_and_nonnull<func::FuncOp>(op->getParentOp()))
        return;
      if (auto copy = dyn_cast<memref::CopyOp>(op)) {
        if (worthDistributing(copy.getTarget()))
          candidates.push_back(op);
      } else if (auto fill = dyn_cast<linalg::FillOp>(op)) {
        if (fill.hasPureBufferSemantics() && worthDistributing(fill.getOutputs()[0]))
          candidates.push_back(op);
      } else if (auto map = dyn_cast<linalg::MapOp>(op)) {
        // A fill spelled as a map: no inputs, a value from above.
        Block &body = map.getMapper().front();
        Value yielded = body.getTerminator()->getOperand(0);
        if (map.hasPureBufferSemantics() && map.getInputs().empty() &&
            body.getOperations().size() == 1 && yielded.getParentBlock() != &body &&
            worthDistributing(map.getInit()))
          candidates.push_back(op);
      }
    });
    for (Operation *op : candidates) {
      OpBuilder builder(op);
      Location loc = op->getLoc();
      if (auto copy = dyn_cast<memref::CopyOp>(op)) {
        Value source = copy.getSource();
        writeRows(builder, loc, copy.getTarget(),
                  [&](OpBuilder &b, Location l, ValueRange indices) {
                    return memref::LoadOp::create(b, l, source, indices).getResult();
                  });
      } else if (auto fill = dyn_cast<linalg::FillOp>(op)) {
        Value value = fill.getInputs()[0];
        writeRows(builder, loc, fill.getOutputs()[0],
                  [&](OpBuilder &, Location, ValueRange) { return value; });
      } else {
        auto map = cast<linalg::MapOp>(op);
        Value value = map.getMapper().front().getTerminator()->getOperand(0);
        writeRows(builder, loc, map.getInit(),
                  [&](OpBuilder &, Location, ValueRange) { return value; });
      }
      op->erase();
    }
  }
};

} // namespace
