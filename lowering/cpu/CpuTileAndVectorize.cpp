//===- CpuTileAndVectorize.cpp - The CPU back end's GEMM schedule -----------===//
#include "lowering/cpu/Passes.h"

#include "lowering/cpu/TransformSchedule.h"


#include "llvm/Support/FormatVariadic.h"

namespace peft {
#define GEN_PASS_DEF_CPUTILEANDVECTORIZE
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// The schedule, in the transform dialect. {0} and {1} are the register
/// tile's rows and columns.
constexpr const char *kSchedule = R"mlir(
module attributes {{transform.with_named_sequence} {{
  transform.named_sequence @__transform_main(%root: !transform.any_op {{transform.readonly}) {{
    %gemms = transform.structured.match ops{{["linalg.matmul"]} in %root
      : (!transform.any_op) -> !transform.any_op
    transform.foreach %gemms : !transform.any_op {{
    ^bb0(%gemm: !transform.any_op):
      // Cache blocks, then register tiles over the whole K block.
      %block, %block_loops:3 = transform.structured.tile_using_for %gemm tile_sizes [64, 128, 128]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
      %tile, %tile_loops:3 = transform.structured.tile_using_for %block tile_sizes [{0}, {1}, 8]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
      // Full register tiles get static shapes; the remainder rows run apart.
      // A row loop whose tiles are all full already has nothing to peel.
      transform.sequence %tile_loops#0 : !transform.any_op failures(suppress) {{
      ^bb0(%row_loop: !transform.any_op):
        %rows = transform.cast %row_loop : !transform.any_op to !transform.op<"scf.for">
        %full, %rest = transform.loop.peel %rows
          : (!transform.op<"scf.for">) -> (!transform.any_op, !transform.any_op)
      }
    }
    %funcs = transform.structured.match ops{{["func.func"]} in %root
      : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %funcs {{
      transform.apply_patterns.canonicalization
      transform.apply_patterns.linalg.tiling_canonicalization
      transform.apply_patterns.scf.for_loop_canonicalization
    } : !transform.any_op
    // GEMM tiles whose shapes are now static become vector code; the others
    // (partial tiles) stay scalar.
    %tiles = transform.structured.match ops{{["linalg.matmul"]} in %funcs
      : (!transform.any_op) -> !transform.any_op
{2}    // Vectorized tiles read broadcast operands, multiply and reduce: fold the
    // broadcasts out of the reads and the whole into matmul contractions.
    transform.apply_patterns to %funcs {{
      transform.apply_patterns.vector.transfer_permutation_patterns
      transform.apply_patterns.vector.reduction_to_contract
      transform.apply_patterns.canonicalization
    } : !transform.any_op
    // Keep each accumulator tile in registers across its K loop.
    %loops = transform.structured.match ops{{["scf.for"]} in %funcs
      : (!transform.any_op) -> !transform.any_op
    transform.foreach %loops : !transform.any_op {{
    ^bb0(%loop: !transform.any_op):
      transform.loop.hoist_loop_invariant_subsets %loop : !transform.any_op
    }
    transform.apply_patterns to %funcs {{
      transform.apply_patterns.vector.lower_masked_transfers
      transform.apply_patterns.vector.transfer_permutation_patterns
      transform.apply_patterns.vector.lower_contraction lowering_strategy = "outerproduct"
      transform.apply_patterns.vector.lower_outerproduct
      transform.apply_patterns.canonicalization
    } : !transform.any_op
    transform.yield
  }
}
)mlir";

struct CpuTileAndVectorizePass
    : peft::impl::CpuTileAndVectorizeBase<CpuTileAndVectorizePass> {
  using CpuTileAndVectorizeBase::CpuTileAndVectorizeBase;

  void getDependentDialects(DialectRegistry &registry) const override {
    CpuTileAndVectorizeBase::getDependentDialects(registry);
    peft::registerScheduleExtensions(registry);
  }

  void runOnOperation() override {
    if (microRows < 1 || microCols < 1) {
      getOperation().emitError("micro-rows and micro-cols must be positive");
      return signalPassFailure();
    }
    std::string text = llvm::formatv(kSchedule, microRows.getValue(), microCols.getValue(),
                                     peft::vectorizeEachStatic("tiles"));
    if (failed(peft::applyTransformSchedule(getOperation(), text)))
      signalPassFailure();
  }
};

} // namespace
