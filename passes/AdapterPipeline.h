//===- AdapterPipeline.h - What peftc does with adapters, by name -*- C++ -*-===//
//
// The adapter stage peftc runs on an imported model, as a pipeline any
// *-opt that registers it runs too (`peft-apply-adapters`): the adapters
// attached (from PEFT directories, fresh ones, combined), then merged,
// batched into slots or left unmerged, and the IR cleaned up. peftc builds
// its stage from the same options (one description of it).
//===----------------------------------------------------------------------===//
#ifndef PEFT_PASSES_ADAPTERPIPELINE_H
#define PEFT_PASSES_ADAPTERPIPELINE_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace peft {

struct AdapterPipelineOptions : mlir::PassPipelineOptions<AdapterPipelineOptions> {
  ListOption<std::string> adapters{*this, "adapters",
                                   llvm::cl::desc("PEFT adapter directories, DIR[=NAME][:WEIGHT]")};
  ListOption<std::string> insert{*this, "insert",
                                 llvm::cl::desc("Fresh adapters to train, CONFIG.json[=NAME]")};
  Option<uint64_t> seed{*this, "seed", llvm::cl::desc("Seed of insert's initialization"),
                        llvm::cl::init(0)};
  Option<std::string> combine{*this, "combine",
                              llvm::cl::desc("Combine each layer's LoRAs: cat or svd")};
  Option<int64_t> combineRank{*this, "combine-rank", llvm::cl::desc("The rank svd keeps"),
                              llvm::cl::init(0)};
  Option<std::string> mode{*this, "mode", llvm::cl::desc("merge, fuse or multi"),
                           llvm::cl::init("merge")};
  Option<int64_t> slots{*this, "slots", llvm::cl::desc("multi: adapter slots"),
                        llvm::cl::init(0)};
  Option<int64_t> maxRank{*this, "max-rank", llvm::cl::desc("multi: rank capacity of a slot"),
                          llvm::cl::init(0)};
  ListOption<std::string> slotModules{*this, "slot-modules",
                                      llvm::cl::desc("multi: more linear layers with slots")};
  ListOption<std::string> slotMethods{
      *this, "slot-methods", llvm::cl::desc("multi: tables every slotted layer holds")};
};

/// The adapters attached: from files, fresh ones, combined.
void buildAttachStage(mlir::OpPassManager &pm, const AdapterPipelineOptions &options);

/// Then merged (mode merge), or put in slots (mode multi), and cleaned up.
void buildApplyStage(mlir::OpPassManager &pm, const AdapterPipelineOptions &options);

/// Registers `peft-apply-adapters`: both stages.
void registerAdapterPipeline();

} // namespace peft

#endif // PEFT_PASSES_ADAPTERPIPELINE_H
