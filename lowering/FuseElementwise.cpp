//===- FuseElementwise.cpp - Fuse elementwise chains, not GEMMs -------------===//
#include "lowering/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
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
      signalPassFailure();
  }
};

} // namespace
