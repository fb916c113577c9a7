//===- CpuPipeline.cpp - peft + linalg on tensors to LLVM for the host ------===//
#include "lowering/cpu/CpuBackend.h"

#include "lowering/Passes.h"

#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassRegistry.h"

#include <mutex>

using namespace mlir;

namespace peft {

/// Upstream passes after the peft-specific ones, in order: tensor-level
/// clean-up and fusion, bufferization with ownership-based deallocation, then
/// conversion of every dialect to LLVM.
static constexpr llvm::StringLiteral kUpstreamCpuPipeline =
    "canonicalize,cse,linalg-fuse-elementwise-ops,canonicalize,"
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map},"
    "buffer-deallocation-pipeline,"
    "convert-linalg-to-loops,lower-affine,convert-scf-to-cf,canonicalize,"
    "expand-strided-metadata,lower-affine,finalize-memref-to-llvm,convert-math-to-libm,"
    "convert-math-to-llvm,convert-arith-to-llvm,convert-func-to-llvm,"
    "convert-cf-to-llvm,convert-index-to-llvm,reconcile-unrealized-casts";

void buildCpuLoweringPipeline(OpPassManager &pm) {
  // The upstream part is spelled as text; its passes must be registered.
  static std::once_flag registered;
  std::call_once(registered, [] { registerAllPasses(); });
  pm.addPass(createConvertPeftToLinalg());
  if (failed(parsePassPipeline(kUpstreamCpuPipeline, pm, llvm::errs())))
    llvm::report_fatal_error("peft-mlir: the built-in CPU pipeline does not parse");
  pm.addPass(createEmitPackedEntry());
}

void registerCpuPipeline() {
  PassPipelineRegistration<>(
      "peft-cpu-lowering",
      "Lower peft and linalg on tensors to the LLVM dialect for the host CPU",
      buildCpuLoweringPipeline);
}

} // namespace peft
