//===- CpuPipeline.cpp - peft + linalg on tensors to LLVM for the host ------===//
#include "lowering/cpu/CpuBackend.h"

#include "lowering/Passes.h"

#include "mlir/InitAllPasses.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/TargetParser/Host.h"

#include <mutex>

using namespace mlir;

namespace peft {

/// In order: peft -> linalg; tensor-level clean-up and fusion; the GEMM
/// schedule (tiling, vectorization); bufferization with ownership-based
/// deallocation; conversion of every dialect to LLVM; the packed entry.
static constexpr llvm::StringLiteral kTensorCleanup = "canonicalize,cse";
static constexpr llvm::StringLiteral kBufferize =
    "canonicalize,cse,"
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map},"
    "buffer-deallocation-pipeline,convert-bufferization-to-memref,"
    "convert-linalg-to-loops,convert-vector-to-scf{full-unroll=true},lower-affine,convert-scf-to-cf,"
    "canonicalize";
static constexpr llvm::StringLiteral kToLlvm =
    "convert-math-to-funcs,arith-expand{include-bf16=true},expand-strided-metadata,lower-affine,"
    "finalize-memref-to-llvm,"
    "convert-math-to-libm,convert-vector-to-llvm,convert-math-to-llvm,"
    "convert-arith-to-llvm,convert-func-to-llvm,"
    "convert-cf-to-llvm,convert-index-to-llvm,convert-ub-to-llvm,reconcile-unrealized-casts";

/// Appends an upstream pipeline spelled as text.
static void addUpstream(OpPassManager &pm, llvm::StringRef pipeline) {
  if (failed(parsePassPipeline(pipeline, pm, llvm::errs())))
    llvm::report_fatal_error("peft-mlir: the built-in CPU pipeline does not parse");
}

void buildCpuLoweringPipeline(OpPassManager &pm) {
  // The upstream part is spelled as text; its passes must be registered.
  static std::once_flag registered;
  std::call_once(registered, [] { registerAllPasses(); });
  pm.addPass(createConvertPeftToLinalg());
  addUpstream(pm, kTensorCleanup);
  pm.addPass(createFuseElementwise());
  pm.addPass(createCanonicalizerPass());
  // Register tiles of one AVX-512 vector, or two AVX2 vectors, per row.
  CpuTileAndVectorizeOptions tiles;
  tiles.microCols = llvm::sys::getHostCPUFeatures().lookup("avx512f") ? 32 : 16;
  pm.addPass(createCpuTileAndVectorize(tiles));
  pm.addPass(createCpuApproximateMath());
  addUpstream(pm, kBufferize);
  pm.addPass(createExpandShapeToReinterpretCast());
  addUpstream(pm, kToLlvm);
  pm.addPass(createEmitPackedEntry());
}

void registerCpuPipeline() {
  PassPipelineRegistration<>(
      "peft-cpu-lowering",
      "Lower peft and linalg on tensors to the LLVM dialect for the host CPU",
      buildCpuLoweringPipeline);
}

} // namespace peft
