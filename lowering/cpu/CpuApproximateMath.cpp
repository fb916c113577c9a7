//===- CpuApproximateMath.cpp - Branch-free erf, tanh and exp -------------===//
#include "lowering/cpu/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace peft {
#define GEN_PASS_DEF_CPUAPPROXIMATEMATH
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// A math rounding op as the LLVM intrinsic of the same name.
template <typename MathOp, typename IntrinsicOp>
struct RoundingToIntrinsic : OpRewritePattern<MathOp> {
  using OpRewritePattern<MathOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(MathOp op, PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<IntrinsicOp>(op, op.getType(), op.getOperand());
    return success();
  }
};

struct CpuApproximateMathPass : peft::impl::CpuApproximateMathBase<CpuApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == math::ErfOp::getOperationName() || name == math::TanhOp::getOperationName() ||
             name == math::ExpOp::getOperationName();
    });
    // The approximations use math.fma, which the libm conversion would turn
    // into calls: expand it into a multiply and an add.
    math::populateExpansionPatterns(patterns, {"fma"});
    patterns.add<RoundingToIntrinsic<math::FloorOp, LLVM::FFloorOp>,
                 RoundingToIntrinsic<math::CeilOp, LLVM::FCeilOp>,
                 RoundingToIntrinsic<math::TruncOp, LLVM::FTruncOp>,
                 RoundingToIntrinsic<math::RoundEvenOp, LLVM::RoundEvenOp>>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
