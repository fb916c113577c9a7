//===- CpuDistributeLoops.cpp - Rows of maps and reductions as scf.forall ---===//
#include "lowering/cpu/Passes.h"

#include "lowering/cpu/Epilogue.h"
#include "lowering/cpu/GemmStart.h"
#include "lowering/cpu/WindowOps.h"

#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/IR/PatternMatch.h"

namespace peft {
#define GEN_PASS_DEF_CPUDISTRIBUTELOOPS
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// The loops to distribute: the leading parallel ones, but never the
/// innermost (it is what peft-cpu-vectorize-elementwise turns into vectors).
static unsigned distributedLoops(linalg::GenericOp op) {
  unsigned count = 0;
  for (utils::IteratorType type : op.getIteratorTypesArray()) {
    if (type != utils::IteratorType::parallel || count + 1 == op.getNumLoops())
      break;
    ++count;
  }
  return count;
}

/// Whether running `op`'s rows on the threads can pay: enough of them, and
/// enough work (every loop's trip count multiplied; unknown counts pass).
static bool worthDistributing(linalg::GenericOp op, unsigned loops, int64_t minElements) {
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  int64_t rows = 1, elements = 1;
  bool dynamic = false;
  for (auto [d, range] : llvm::enumerate(ranges)) {
    if (ShapedType::isDynamic(range)) {
      dynamic = true;
      continue;
    }
    elements *= range;
    if (d < loops)
      rows *= range;
  }
  return dynamic || (rows > 1 && elements >= minElements);
}

struct CpuDistributeLoopsPass : peft::impl::CpuDistributeLoopsBase<CpuDistributeLoopsPass> {
  using CpuDistributeLoopsBase::CpuDistributeLoopsBase;

  void runOnOperation() override {
    SmallVector<linalg::GenericOp> candidates;
    getOperation().walk([&](linalg::GenericOp op) {
      // GEMMs (with the ops that start them and the maps they run as
      // epilogues) and pooling windows have kernels of their own that split
      // their work.
      if (!isa<func::FuncOp>(op->getParentOp()) || !op.hasPureTensorSemantics() ||
          op->hasAttr(peft::kPanelGemmAttr) || linalg::isaContractionOpInterface(op) ||
          op->hasAttr(peft::kSlotGatherAttr) || // Read in place by the batched GEMM kernel.
          peft::matchWindowGemm(op) || peft::matchWindowReduction(op) ||
          peft::startsGemmKernel(op) || peft::isPanelGemmEpilogue(op))
        return;
      unsigned loops = distributedLoops(op);
      if (loops > 0 && worthDistributing(op, loops, minElements))
        candidates.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : candidates) {
      SmallVector<OpFoldResult> sizes(op.getNumLoops(), rewriter.getIndexAttr(0));
      for (unsigned d = 0, e = distributedLoops(op); d < e; ++d)
        sizes[d] = rewriter.getIndexAttr(1);
      scf::SCFTilingOptions options;
      options.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp).setTileSizes(sizes);
      rewriter.setInsertionPoint(op);
      FailureOr<scf::SCFTilingResult> tiled =
          scf::tileUsingSCF(rewriter, cast<TilingInterface>(op.getOperation()), options);
      if (failed(tiled)) {
        op.emitError("peft-cpu-distribute-loops: cannot tile this op into rows");
        return signalPassFailure();
      }
      rewriter.replaceOp(op, tiled->replacements);
    }
  }
};

} // namespace
