//===- FuseElementwise.cpp - Fuse elementwise chains, not GEMMs -------------===//
#include "lowering/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace peft {
#define GEN_PASS_DEF_FUSEELEMENTWISE
#include "lowering/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

bool isElementwiseGeneric(Operation *op) {
  auto generic = dyn_cast_or_null<linalg::GenericOp>(op);
  return generic && linalg::isElementwise(generic);
}

/// pad(op(x)), the pad alone reading the op's result and the op's output
/// starting empty or filled with a constant (an activation before a
/// convolution, a pooling window): the padded tensor is filled with the
/// padding value and the op writes into its interior (tensor.insert_slice of
/// its result, in place once bufferized), so the pad copies nothing.
struct WriteIntoPadding : OpRewritePattern<tensor::PadOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::PadOp pad, PatternRewriter &rewriter) const override {
    Value padding = pad.getConstantPaddingValue();
    if (!padding || pad.getNofold())
      return rewriter.notifyMatchFailure(pad, "not a constant pad");
    Location loc = pad.getLoc();
    RankedTensorType type = pad.getResultType();
    int64_t rank = type.getRank();

    auto producer = pad.getSource().getDefiningOp<linalg::GenericOp>();
    OpOperand *init = producer && producer.getNumResults() == 1 && pad.getSource().hasOneUse()
                          ? producer.getDpsInitOperand(0)
                          : nullptr;
    linalg::FillOp initialFill;
    if (init && !init->get().getDefiningOp<tensor::EmptyOp>()) {
      initialFill = init->get().getDefiningOp<linalg::FillOp>();
      if (!initialFill || !initialFill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>() ||
          !initialFill->hasOneUse())
        init = nullptr;
    } else if (init && producer.payloadUsesValueFromOperand(init)) {
      init = nullptr;
    }
    if (!init)
      return rewriter.notifyMatchFailure(pad, "not the only reader of an op writing afresh");
    // Sizes from before the producer: its result is about to move.
    SmallVector<OpFoldResult> interior = tensor::getMixedSizes(
        rewriter, loc, initialFill ? initialFill.getOutputs()[0] : init->get());
    SmallVector<OpFoldResult> sizes;
    for (auto [d, size] : llvm::enumerate(interior)) {
      if (!type.isDynamicDim(d)) {
        sizes.push_back(rewriter.getIndexAttr(type.getDimSize(d)));
        continue;
      }
      Value total = getValueOrCreateConstantIndexOp(rewriter, loc, size);
      for (OpFoldResult edge : {pad.getMixedLowPad()[d], pad.getMixedHighPad()[d]})
        total = arith::AddIOp::create(rewriter, loc, total,
                                      getValueOrCreateConstantIndexOp(rewriter, loc, edge));
      sizes.push_back(total);
    }
    // A map, not a linalg.fill: canonicalization would fold the slice of a
    // fill into a fill of its own, and the interior would be copied again.
    Value empty = tensor::EmptyOp::create(rewriter, loc, sizes, type.getElementType());
    Value filled = linalg::MapOp::create(rewriter, loc, ValueRange{}, empty,
                                         [&](OpBuilder &nested, Location nestedLoc, ValueRange) {
                                           linalg::YieldOp::create(nested, nestedLoc, padding);
                                         })
                       .getResult()[0];
    SmallVector<OpFoldResult> ones(rank, rewriter.getIndexAttr(1));
    Value slot = tensor::ExtractSliceOp::create(rewriter, loc, filled, pad.getMixedLowPad(),
                                                interior, ones);
    Value target = slot;
    if (initialFill)
      target = linalg::FillOp::create(rewriter, loc, initialFill.getInputs()[0], slot).getResult(0);
    rewriter.modifyOpInPlace(producer, [&] {
      init->set(target);
      producer.getResult(0).setType(cast<RankedTensorType>(target.getType()));
    });
    rewriter.moveOpAfter(producer, target.getDefiningOp());
    if (initialFill)
      rewriter.eraseOp(initialFill);
    rewriter.replaceOpWithNewOp<tensor::InsertSliceOp>(pad, producer.getResult(0), filled,
                                                       pad.getMixedLowPad(), interior, ones);
    return success();
  }
};

struct FuseElementwisePass : peft::impl::FuseElementwiseBase<FuseElementwisePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // A producer that other ops read too is not fused: each consumer would
    // compute it again (a BERT embedding's gather and layer norm ended up in
    // every op that reads the residual stream).
    linalg::populateElementwiseOpsFusionPatterns(patterns, [](OpOperand *operand) {
      Operation *producer = operand->get().getDefiningOp();
      Operation *consumer = operand->getOwner();
      return isElementwiseGeneric(producer) && isElementwiseGeneric(consumer) &&
             llvm::all_of(producer->getUsers(),
                          [&](Operation *user) { return user == consumer; });
    });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    // Apart: the fusion patterns give a map that does not read its output a
    // fresh tensor.empty to write, undoing this.
    RewritePatternSet padding(&getContext());
    padding.add<WriteIntoPadding>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(padding))))
      signalPassFailure();
  }
};

} // namespace
