//===- CpuVectorizeElementwise.cpp - Maps and row reductions in vectors -----===//
#include "lowering/cpu/Passes.h"

#include "lowering/cpu/Epilogue.h"
#include "lowering/cpu/GemmStart.h"
#include "lowering/cpu/TransformSchedule.h"


#include "llvm/Support/FormatVariadic.h"

#include <map>

namespace peft {
#define GEN_PASS_DEF_CPUVECTORIZEELEMENTWISE
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// Marks the generics of one loop count for the schedule below.
constexpr llvm::StringLiteral kTagPrefix = "peft.vectorize_loops_";
/// Marks every generic the schedule tiles, and so the tiles.
constexpr llvm::StringLiteral kTileTag = "peft.vectorize";

/// For the generics tagged with {0}: tiles of {1} (1 on every loop but the
/// innermost, `vector-width` on it), the innermost loop peeled so that every
/// tile but a row's last is full (static), and the full tiles vectorized
/// (below); a row's last partial tile stays scalar. (Masked tiles would read
/// undefined padding into row reductions.)
constexpr const char *kSection = R"mlir(
    %ops_{2} = transform.structured.match ops{{["linalg.generic"]} attributes{{{0}} in %root
      : (!transform.any_op) -> !transform.any_op
    transform.foreach %ops_{2} : !transform.any_op {{
    ^bb0(%op: !transform.any_op):
      transform.sequence %op : !transform.any_op failures(suppress) {{
      ^bb0(%generic: !transform.any_op):
        %tile, %loops:{2} = transform.structured.tile_using_for %generic tile_sizes [{1}]
          : (!transform.any_op) -> (!transform.any_op{3})
        %columns = transform.cast %loops#{4} : !transform.any_op to !transform.op<"scf.for">
        %full, %rest = transform.loop.peel %columns
          : (!transform.op<"scf.for">) -> (!transform.any_op, !transform.any_op)
      }
    }
)mlir";

constexpr const char *kSchedule = R"mlir(
module attributes {{transform.with_named_sequence} {{
  transform.named_sequence @__transform_main(%root: !transform.any_op {{transform.readonly}) {{
{0}
    %funcs = transform.structured.match ops{{["func.func"]} in %root
      : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %funcs {{
      transform.apply_patterns.canonicalization
      transform.apply_patterns.linalg.tiling_canonicalization
      transform.apply_patterns.scf.for_loop_canonicalization
    } : !transform.any_op
    // Full tiles have static shapes now: those vectorize; others fail, and stay.
    %tiles = transform.structured.match ops{{["linalg.generic"]} attributes{{{1}} in %root
      : (!transform.any_op) -> !transform.any_op
{2}    // Down to what the LLVM conversion takes, one group at a time (together
    // some of them undo each other): leading unit dimensions dropped,
    // reductions of one vector.
    transform.apply_patterns to %funcs {{
      transform.apply_patterns.vector.cast_away_vector_leading_one_dim
    } : !transform.any_op
    transform.apply_patterns to %funcs {{
      transform.apply_patterns.vector.lower_multi_reduction lowering_strategy = "innerreduction"
    } : !transform.any_op
    transform.apply_patterns to %funcs {{
      transform.apply_patterns.vector.lower_shape_cast
      transform.apply_patterns.vector.lower_broadcast
    } : !transform.any_op
    transform.apply_patterns to %funcs {{
      transform.apply_patterns.canonicalization
    } : !transform.any_op
    transform.yield
  }
}
)mlir";

/// Whether every operand reads its elements along the innermost loop
/// contiguously or not at all (a broadcast), so that a tile of it is one
/// vector load; gathers, transposed reads and GEMMs are left alone.
static bool readsRowsInOrder(linalg::GenericOp op) {
  unsigned innermost = op.getNumLoops() - 1;
  bool innermostIsReduction = op.getIteratorTypesArray()[innermost] == utils::IteratorType::reduction;
  for (unsigned d = 0; d < innermost; ++d)
    if (op.getIteratorTypesArray()[d] != utils::IteratorType::parallel)
      return false;
  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap map = op.getMatchingIndexingMap(&operand);
    if (!map.isProjectedPermutation(/*allowZeroInResults=*/true))
      return false;
    // Booleans are bytes in memory but bits in a vector: left scalar.
    auto type = dyn_cast<RankedTensorType>(operand.get().getType());
    if (!type || !type.getElementType().isIntOrFloat() || type.getElementType().isInteger(1))
      return false;
    for (unsigned r = 0; r < map.getNumResults(); ++r)
      if (map.getResult(r) == getAffineDimExpr(innermost, op.getContext()) &&
          r + 1 != map.getNumResults())
        return false;
    // The output of a row reduction does not vary along the innermost loop.
    if (innermostIsReduction && op.isDpsInit(&operand) &&
        map.isFunctionOfDim(innermost))
      return false;
  }
  // linalg.index gives positions: fine to vectorize. Reads at computed
  // positions (tensor.extract: gathers, Resize's tables) are not, nor is
  // anything with regions or side effects.
  for (Operation &nested : op.getRegion().front())
    if (isa<tensor::ExtractOp>(nested) || nested.getNumRegions() ||
        !isMemoryEffectFree(&nested))
      return false;
  return true;
}

struct CpuVectorizeElementwisePass
    : peft::impl::CpuVectorizeElementwiseBase<CpuVectorizeElementwisePass> {
  using CpuVectorizeElementwiseBase::CpuVectorizeElementwiseBase;

  void getDependentDialects(DialectRegistry &registry) const override {
    CpuVectorizeElementwiseBase::getDependentDialects(registry);
    peft::registerScheduleExtensions(registry);
  }

  void runOnOperation() override {
    if (vectorWidth < 1) {
      getOperation().emitError("peft-cpu-vectorize-elementwise: vector-width must be positive");
      return signalPassFailure();
    }
    // Tag what the schedule vectorizes, by loop count.
    std::map<unsigned, std::string> tags;
    getOperation().walk([&](linalg::GenericOp op) {
      // A GEMM's start and a panel GEMM's epilogue are the kernels' to write.
      // (A slot gather is read in place by the batched GEMM kernel.)
      if (op->hasAttr(peft::kPanelGemmAttr) || op->hasAttr(peft::kSlotGatherAttr) ||
          !op.hasPureTensorSemantics() || op.getNumLoops() == 0 ||
          !readsRowsInOrder(op) || peft::startsGemmKernel(op) || peft::isPanelGemmEpilogue(op))
        return;
      std::string tag = (kTagPrefix + llvm::Twine(op.getNumLoops())).str();
      op->setAttr(tag, UnitAttr::get(&getContext()));
      op->setAttr(kTileTag, UnitAttr::get(&getContext()));
      tags[op.getNumLoops()] = tag;
    });
    if (tags.empty())
      return;
    std::string sections;
    for (auto &[loops, tag] : tags) {
      std::string sizes;
      for (unsigned d = 0; d < loops; ++d)
        sizes += d + 1 < loops ? "1, " : std::to_string(vectorWidth);
      std::string loopTypes;
      for (unsigned d = 0; d < loops; ++d)
        loopTypes += ", !transform.any_op";
      sections += llvm::formatv(kSection, tag, sizes, loops, loopTypes, loops - 1).str();
    }
    std::string text =
        llvm::formatv(kSchedule, sections, kTileTag, peft::vectorizeEachStatic("tiles"));
    if (failed(peft::applyTransformSchedule(getOperation(), text)))
      return signalPassFailure();
    // A tile's sum in order is a chain of one add per element through the
    // row (RMSNorm's mean of squares: 1024 adds of 3-4 cycles each); within
    // the tile the order is free, as in torch's vectorized sums.
    getOperation().walk([&](vector::ReductionOp op) {
      bool sumOrProduct = op.getKind() == vector::CombiningKind::ADD ||
                          op.getKind() == vector::CombiningKind::MUL;
      if (sumOrProduct && isa<FloatType>(op.getDest().getType()))
        op.setFastmath(op.getFastmath() | arith::FastMathFlags::reassoc);
    });
    getOperation().walk([&](Operation *op) {
      op->removeAttr(kTileTag);
      for (auto &[loops, tag] : tags)
        op->removeAttr(tag);
    });
  }
};

} // namespace
