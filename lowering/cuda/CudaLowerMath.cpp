//===- CudaLowerMath.cpp - Math in kernels without libdevice ----------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <algorithm>

namespace peft {
#define GEN_PASS_DEF_CUDALOWERMATH
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// A math op of f32 or f64 as one PTX instruction, `opcode.TYPE` with the
/// result first and the operands in order (`$0, $1, ...`): the NVVM lowering
/// would otherwise call libdevice, and it refuses LLVM's intrinsics for them.
template <typename MathOp>
struct ToPtx : OpRewritePattern<MathOp> {
  ToPtx(MLIRContext *context, StringRef opcode, bool reverse = false)
      : OpRewritePattern<MathOp>(context), opcode(opcode.str()), reverse(reverse) {}

  LogicalResult matchAndRewrite(MathOp op, PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!type.isF32() && !type.isF64())
      return failure();
    bool f32 = type.isF32();
    std::string text = opcode + (f32 ? ".f32" : ".f64");
    if (opcode.rfind("cvt.", 0) == 0)
      text += f32 ? ".f32" : ".f64"; // cvt names the source type too.
    text += " $0";
    SmallVector<Value> operands(op->getOperands());
    if (reverse)
      std::reverse(operands.begin(), operands.end());
    std::string constraints = f32 ? "=f" : "=d";
    for (size_t i = 0; i < operands.size(); ++i) {
      text += ", $" + std::to_string(i + 1);
      constraints += f32 ? ",f" : ",d";
    }
    text += ";";
    rewriter.replaceOpWithNewOp<LLVM::InlineAsmOp>(
        op, type, operands, text, constraints, /*has_side_effects=*/false,
        /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
        LLVM::AsmDialectAttr(), ArrayAttr());
    return success();
  }

  std::string opcode;
  bool reverse; ///< PTX takes the operands the other way round.
};

struct CudaLowerMathPass : peft::impl::CudaLowerMathBase<CudaLowerMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // Powers, hyperbolic and rounding helpers into exp, log and arithmetic
    // (not fma: the GPU has it).
    math::populateExpansionPatterns(patterns, {"powf", "fpowi", "tan", "sinh", "cosh", "asinh",
                                               "acosh", "atanh", "exp2", "rsqrt", "ctlz",
                                               "round"});
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef) { return true; });
    MLIRContext *context = &getContext();
    patterns.add<ToPtx<math::SqrtOp>>(context, "sqrt.rn");
    patterns.add<ToPtx<math::AbsFOp>>(context, "abs");
    patterns.add<ToPtx<math::FmaOp>>(context, "fma.rn");
    patterns.add<ToPtx<math::FloorOp>>(context, "cvt.rmi");
    patterns.add<ToPtx<math::CeilOp>>(context, "cvt.rpi");
    patterns.add<ToPtx<math::TruncOp>>(context, "cvt.rzi");
    patterns.add<ToPtx<math::RoundEvenOp>>(context, "cvt.rni");
    // copysign.type d, a, b: b with a's sign; math.copysign(x, y): x with y's.
    patterns.add<ToPtx<math::CopySignOp>>(context, "copysign", /*reverse=*/true);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
