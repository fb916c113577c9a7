//===- ExpandShapeToReinterpretCast.cpp - Split dynamic sizes on buffers ----===//
#include "lowering/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace peft {
#define GEN_PASS_DEF_EXPANDSHAPETOREINTERPRETCAST
#include "lowering/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// Whether some reassociation group of `op` yields two or more dynamic sizes.
bool splitsDynamicSize(memref::ExpandShapeOp op) {
  ArrayRef<int64_t> shape = op.getResultType().getShape();
  return llvm::any_of(op.getReassociationIndices(), [&](const ReassociationIndices &group) {
    return llvm::count_if(group, [&](int64_t d) { return ShapedType::isDynamic(shape[d]); }) > 1;
  });
}

struct ExpandShapeOnContiguousBuffer : OpRewritePattern<memref::ExpandShapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(memref::ExpandShapeOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getSrcType().getLayout().isIdentity() ||
        !op.getResultType().getLayout().isIdentity() || !splitsDynamicSize(op))
      return rewriter.notifyMatchFailure(op, "upstream lowers this one");
    Location loc = op.getLoc();
    SmallVector<OpFoldResult> sizes = op.getMixedOutputShape();
    SmallVector<OpFoldResult> strides(sizes.size());
    OpFoldResult stride = rewriter.getIndexAttr(1);
    for (int64_t d = sizes.size() - 1; d >= 0; --d) {
      strides[d] = stride;
      std::optional<int64_t> lhs = getConstantIntValue(stride), rhs = getConstantIntValue(sizes[d]);
      stride = lhs && rhs ? OpFoldResult(rewriter.getIndexAttr(*lhs * *rhs))
                          : OpFoldResult(arith::MulIOp::create(
                                             rewriter, loc,
                                             getValueOrCreateConstantIndexOp(rewriter, loc, stride),
                                             getValueOrCreateConstantIndexOp(rewriter, loc, sizes[d]))
                                             .getResult());
    }
    rewriter.replaceOpWithNewOp<memref::ReinterpretCastOp>(
        op, op.getResultType(), op.getSrc(), rewriter.getIndexAttr(0), sizes, strides);
    return success();
  }
};

struct ExpandShapeToReinterpretCastPass
    : peft::impl::ExpandShapeToReinterpretCastBase<ExpandShapeToReinterpretCastPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ExpandShapeOnContiguousBuffer>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
