//===- Target.cpp - The registry of targets and the shared pipeline --------===//
#include "lowering/Target.h"

#include "lowering/Passes.h"

#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/ErrorHandling.h"

#include <mutex>
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace peft {

Target::~Target() = default;

void Target::registerDialects(DialectRegistry &) const {}

llvm::Error Target::configure(const TargetOptions &options) {
  if (!options.gpuArch.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "--gpu-arch applies to GPU targets, not '" + name() + "'");
  if (!options.gpuGemmTiles.empty() && options.gpuGemmTiles != "auto")
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "--gpu-gemm-tiles applies to GPU targets, not '" + name() +
                                       "'");
  return llvm::Error::success();
}

static std::vector<std::unique_ptr<Target>> &registry() {
  static std::vector<std::unique_ptr<Target>> targets;
  return targets;
}

void registerTarget(std::unique_ptr<Target> target) {
  if (!lookupTarget(target->name()))
    registry().push_back(std::move(target));
}

Target *lookupTarget(llvm::StringRef name) {
  for (const std::unique_ptr<Target> &target : registry())
    if (target->name() == name)
      return target.get();
  return nullptr;
}

void registerTargetDialects(DialectRegistry &dialects) {
  for (const std::unique_ptr<Target> &target : registry())
    target->registerDialects(dialects);
}

std::vector<llvm::StringRef> targetNames() {
  std::vector<llvm::StringRef> names;
  for (const std::unique_ptr<Target> &target : registry())
    names.push_back(target->name());
  return names;
}

void buildTensorPipeline(OpPassManager &pm) {
  pm.addPass(createConvertPeftToLinalg());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createFuseElementwise());
  pm.addPass(createCanonicalizerPass());
}

void registerUpstreamPasses() {
  static std::once_flag registered;
  std::call_once(registered, [] { registerAllPasses(); });
}

void buildBufferizationPipeline(OpPassManager &pm) {
  static constexpr llvm::StringLiteral kBufferize =
      "canonicalize,cse,"
      "one-shot-bufferize{bufferize-function-boundaries "
      "function-boundary-type-conversion=identity-layout-map},"
      "buffer-deallocation-pipeline,convert-bufferization-to-memref";
  registerUpstreamPasses();
  if (failed(parsePassPipeline(kBufferize, pm, llvm::errs())))
    llvm::report_fatal_error("peft-mlir: the built-in bufferization pipeline does not parse");
}

void buildLoweringPipeline(OpPassManager &pm, const Target &target) {
  buildTensorPipeline(pm);
  target.buildTensorPipeline(pm);
  target.buildCodegenPipeline(pm);
}

void registerLoweringPipelines() {
  static bool registered = false;
  if (registered)
    return;
  registered = true;
  PassPipelineRegistration<>("peft-lower-to-linalg",
                             "Lower peft to linalg on tensors, cleaned up and fused "
                             "(the part of the lowering every target shares)",
                             buildTensorPipeline);
  for (const std::unique_ptr<Target> &owned : registry()) {
    const Target *target = owned.get();
    PassPipelineRegistration<>(
        ("peft-" + target->name() + "-lowering").str(),
        ("Lower peft and linalg on tensors for the " + target->description() +
         " (what peftc --target " + target->name() + " runs)")
            .str(),
        [target](OpPassManager &pm) { buildLoweringPipeline(pm, *target); });
  }
}

} // namespace peft
