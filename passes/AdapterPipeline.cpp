//===- AdapterPipeline.cpp - What peftc does with adapters, by name ---------===//
#include "passes/AdapterPipeline.h"

#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace peft {

void buildAttachStage(mlir::OpPassManager &pm, const AdapterPipelineOptions &options) {
  if (!options.adapters.empty()) {
    AttachAdaptersOptions attach;
    attach.adapters.assign(options.adapters.begin(), options.adapters.end());
    pm.addPass(createAttachAdapters(attach));
  }
  if (!options.insert.empty()) {
    InsertAdaptersOptions insert;
    insert.configs.assign(options.insert.begin(), options.insert.end());
    insert.seed = options.seed;
    pm.addPass(createInsertAdapters(insert));
  }
  if (!options.combine.empty()) {
    CombineAdaptersOptions combine;
    combine.method = options.combine;
    combine.rank = options.combineRank;
    pm.addPass(createCombineAdapters(combine));
  }
}

void buildApplyStage(mlir::OpPassManager &pm, const AdapterPipelineOptions &options) {
  if (options.mode == "merge")
    pm.addPass(createMergeAdapters());
  if (options.mode == "multi") {
    BatchAdaptersOptions batch;
    for (const std::string &spec : options.adapters)
      if (mlir::FailureOr<AdapterSpec> parsed = parseAdapterSpec(spec); mlir::succeeded(parsed))
        batch.adapters.push_back(parsed->name);
    batch.modules.assign(options.slotModules.begin(), options.slotModules.end());
    batch.methods.assign(options.slotMethods.begin(), options.slotMethods.end());
    batch.slots = options.slots;
    batch.maxRank = options.maxRank;
    pm.addPass(createBatchAdapters(batch));
  }
  if (options.insert.empty()) // It would fold fresh LoRAs (B = 0) away.
    pm.addPass(mlir::createCanonicalizerPass());
}

void registerAdapterPipeline() {
  static bool registered = false;
  if (registered)
    return;
  registered = true;
  mlir::PassPipelineRegistration<AdapterPipelineOptions>(
      "peft-apply-adapters",
      "Attach adapters and merge them, put them in slots or leave them unmerged (what peftc "
      "does before lowering)",
      [](mlir::OpPassManager &pm, const AdapterPipelineOptions &options) {
        buildAttachStage(pm, options);
        buildApplyStage(pm, options);
      });
}

} // namespace peft
