//===- PeftToLinalg.cpp - peft layers and adapters to linalg ----------------===//
#include "lowering/Passes.h"

#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace peft {
#define GEN_PASS_DEF_CONVERTPEFTTOLINALG
#include "lowering/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// [d0, ..., dn-1, K] -> [d0·...·dn-1, K]; a vector [K] becomes [1, K].
Value flattenBatch(OpBuilder &builder, Location loc, Value input) {
  auto type = cast<RankedTensorType>(input.getType());
  int64_t rank = type.getRank();
  if (rank == 2)
    return input;
  if (rank == 1) {
    auto matrix = RankedTensorType::get({1, type.getDimSize(0)}, type.getElementType());
    return tensor::ExpandShapeOp::create(builder, loc, matrix, input,
                                         ArrayRef<ReassociationIndices>{{0, 1}});
  }
  ReassociationIndices batch = llvm::to_vector(llvm::seq<int64_t>(0, rank - 1));
  return tensor::CollapseShapeOp::create(
      builder, loc, input, ArrayRef<ReassociationIndices>{batch, {rank - 1}});
}

/// The inverse of flattenBatch: [M, N] -> [d0, ..., dn-1, N], the batch sizes
/// taken from `like` (the layer's input).
Value restoreBatch(OpBuilder &builder, Location loc, Value matrix, Value like,
                   RankedTensorType resultType) {
  int64_t rank = resultType.getRank();
  if (rank == 2)
    return matrix;
  if (rank == 1)
    return tensor::CollapseShapeOp::create(builder, loc, resultType, matrix,
                                           ArrayRef<ReassociationIndices>{{0, 1}});
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(builder, loc, like);
  sizes.back() = builder.getIndexAttr(resultType.getShape().back());
  ReassociationIndices batch = llvm::to_vector(llvm::seq<int64_t>(0, rank - 1));
  return tensor::ExpandShapeOp::create(builder, loc, resultType, matrix,
                                       ArrayRef<ReassociationIndices>{batch, {rank - 1}},
                                       sizes);
}

/// acc + lhs·rhs, or acc + lhs·rhsᵀ when `rhsTransposed`, as a linalg.matmul.
Value matmul(OpBuilder &builder, Location loc, Value lhs, Value rhs,
             bool rhsTransposed, Value acc) {
  MLIRContext *context = builder.getContext();
  AffineExpr m, n, k;
  bindDims(context, m, n, k);
  auto map = [&](ArrayRef<AffineExpr> results) {
    return AffineMapAttr::get(AffineMap::get(3, 0, results, context));
  };
  ArrayAttr maps = builder.getArrayAttr(
      {map({m, k}), rhsTransposed ? map({n, k}) : map({k, n}), map({m, n})});
  return linalg::MatmulOp::create(builder, loc, TypeRange{acc.getType()},
                                  ValueRange{lhs, rhs}, ValueRange{acc},
                                  {builder.getNamedAttr("indexing_maps", maps)})
      .getResult(0);
}

/// An [M, N] tensor of zeros, M the rows of `rows`.
Value zerosFor(OpBuilder &builder, Location loc, Value rows, int64_t n, Type elementType) {
  SmallVector<OpFoldResult> sizes = {tensor::getMixedSize(builder, loc, rows, 0),
                                     builder.getIndexAttr(n)};
  Value empty = tensor::EmptyOp::create(builder, loc, sizes, elementType);
  Value zero = arith::ConstantOp::create(builder, loc, builder.getZeroAttr(elementType));
  return linalg::FillOp::create(builder, loc, zero, empty).getResult(0);
}

/// matrix[m, n] + bias[n]. The bias is added after the GEMM, not used as its
/// accumulator, so that it fuses with the elementwise ops that follow and the
/// GEMM stays a named op for the back ends' schedules.
Value addBias(OpBuilder &builder, Location loc, Value matrix, Value bias) {
  MLIRContext *context = builder.getContext();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, context);
  AffineMap column = AffineMap::get(2, 0, getAffineDimExpr(1, context));
  Value init = tensor::EmptyOp::create(builder, loc, tensor::getMixedSizes(builder, loc, matrix),
                                       cast<ShapedType>(matrix.getType()).getElementType());
  return linalg::GenericOp::create(
             builder, loc, init.getType(), ValueRange{matrix, bias}, init,
             ArrayRef<AffineMap>{identity, column, identity},
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               linalg::YieldOp::create(
                   nested, nestedLoc,
                   arith::AddFOp::create(nested, nestedLoc, args[0], args[1]).getResult());
             })
      .getResult(0);
}

/// `factor`·`matrix`, elementwise, into `init`.
Value scaleBy(OpBuilder &builder, Location loc, Value matrix, FloatAttr factor, Value init) {
  Value scale = arith::ConstantOp::create(builder, loc, factor);
  AffineMap identity = builder.getMultiDimIdentityMap(2);
  return linalg::GenericOp::create(
             builder, loc, matrix.getType(), matrix, init,
             ArrayRef<AffineMap>{identity, identity},
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               linalg::YieldOp::create(nested, nestedLoc,
                                       arith::MulFOp::create(nested, nestedLoc, args[0], scale)
                                           .getResult());
             })
      .getResult(0);
}

struct LowerLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType resultType = op.getResult().getType();
    Value rows = flattenBatch(rewriter, loc, op.getInput());
    Value zeros = zerosFor(rewriter, loc, rows, op.getOutFeatures(), resultType.getElementType());
    Value product = matmul(rewriter, loc, rows, op.getWeight(),
                           /*rhsTransposed=*/!op.getWeightInOut(), zeros);
    if (Value bias = op.getBias())
      product = addBias(rewriter, loc, product, bias);
    rewriter.replaceOp(op, restoreBatch(rewriter, loc, product, op.getInput(), resultType));
    return success();
  }
};

/// base + s·(x·Aᵀ)·Bᵀ, with the scale applied to the thin [M, r] intermediate.
struct LowerLora : OpRewritePattern<LoraOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LoraOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type f32 = rewriter.getF32Type();
    if (op.getLoraA().getType().getElementType() != f32 ||
        op.getLoraB().getType().getElementType() != f32)
      return rewriter.notifyMatchFailure(op, "unmerged adapters must be f32");
    int64_t rank = op.getLoraA().getType().getDimSize(0);
    Value rows = flattenBatch(rewriter, loc, op.getInput());
    Value zeros = zerosFor(rewriter, loc, rows, rank, f32);
    Value down = matmul(rewriter, loc, rows, op.getLoraA(), true, zeros);
    Value scaled = scaleBy(rewriter, loc, down, op.getScaleAttr(),
                           tensor::EmptyOp::create(rewriter, loc, tensor::getMixedSizes(rewriter, loc, down),
                                                   f32));
    Value base = flattenBatch(rewriter, loc, op.getBase());
    Value up = matmul(rewriter, loc, scaled, op.getLoraB(), true, base);
    rewriter.replaceOp(op, restoreBatch(rewriter, loc, up, op.getInput(), op.getType()));
    return success();
  }
};

struct LowerValueWeight : OpRewritePattern<WeightOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(WeightOp op, PatternRewriter &rewriter) const override {
    if (!op.getValue())
      return rewriter.notifyMatchFailure(op, "weight lives in a file");
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, cast<TypedAttr>(*op.getValue()));
    return success();
  }
};

struct ConvertPeftToLinalgPass
    : peft::impl::ConvertPeftToLinalgBase<ConvertPeftToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<LowerLinear, LowerLora, LowerValueWeight>(&getContext());
    GreedyRewriteConfig config;
    config.enableFolding(false);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      return signalPassFailure();
    WalkResult leftover = getOperation().walk([](Operation *op) {
      if (!isa<PeftDialect>(op->getDialect()))
        return WalkResult::advance();
      if (auto weight = dyn_cast<WeightOp>(op))
        op->emitError("weight '") << weight.getName()
                                  << "' still names a file; run peft-externalize-weights first";
      else
        op->emitError("cannot lower this op to linalg");
      return WalkResult::interrupt();
    });
    if (leftover.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
