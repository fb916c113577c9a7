//===- Target.h - Code generation targets behind one interface ---*- C++ -*-===//
//
// A target turns linalg on tensors into the code of an artifact: the CPU
// back end (lowering/cpu) makes model.so; a GPU back end adds itself the same
// way, with its own passes, pipelines and library writer. peftc picks one by
// `--target NAME`; peft-opt registers `peft-NAME-lowering` for each, so it
// replays exactly the pipeline peftc runs (`peftc --print-pipeline`).
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_TARGET_H
#define PEFT_LOWERING_TARGET_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <vector>

namespace peft {

/// What the command line asks of a target's code.
struct TargetOptions {
  std::string gpuArch; ///< `--gpu-arch`: "sm_80", "sm_90"; empty: the default.
  /// `--gpu-gemm-tiles`: "64" or "128", the tiles of C a GPU's tensor-core
  /// GEMMs take; empty or "auto": chosen by C's size.
  std::string gpuGemmTiles;
};

class Target {
public:
  virtual ~Target();

  /// What `--target` and the manifest's "target" call it.
  virtual llvm::StringRef name() const = 0;
  virtual llvm::StringRef description() const = 0;

  /// Takes `options` before the pipelines are built; an error says which
  /// option this target cannot take (the default: any GPU architecture).
  virtual llvm::Error configure(const TargetOptions &options);

  /// Adds what this target's passes need of a context's registry (a GPU
  /// target: the translations its kernels go through to PTX).
  virtual void registerDialects(mlir::DialectRegistry &registry) const;

  /// Tensor-level passes after the shared ones (buildTensorPipeline): the
  /// layouts this target's kernels want. The entry's signature, which the
  /// manifest describes, is final after them.
  virtual void buildTensorPipeline(mlir::OpPassManager &pm) const = 0;

  /// From there to what writeLibrary takes (for the CPU, the LLVM dialect).
  virtual void buildCodegenPipeline(mlir::OpPassManager &pm) const = 0;

  /// The library file of an artifact ("model.so"): what the manifest names.
  virtual llvm::StringRef libraryFile() const = 0;

  /// Files writeLibrary writes beside the library for people and tools to
  /// read (the manifest's "sources").
  virtual std::vector<std::string> sourceFiles() const { return {}; }

  /// Compiles `module`, after the codegen pipeline, into the library at
  /// `path`. Errors say which step failed.
  virtual llvm::Error writeLibrary(mlir::ModuleOp module, llvm::StringRef path,
                                   mlir::TimingScope &timing) const = 0;
};

/// Makes `target` available to lookupTarget and registerLoweringPipelines.
void registerTarget(std::unique_ptr<Target> target);

/// The target named `name`, or null.
Target *lookupTarget(llvm::StringRef name);

/// Every registered target's registerDialects: for the registry of a
/// context that may run any target's pipeline.
void registerTargetDialects(mlir::DialectRegistry &registry);

/// The names of the registered targets, in registration order.
std::vector<llvm::StringRef> targetNames();

/// Shared by every target: peft -> linalg on tensors, cleaned up and fused.
void buildTensorPipeline(mlir::OpPassManager &pm);

/// Registers MLIR's passes once per process: pipelines spelled as text
/// (bufferization, the CPU's conversions) parse against them.
void registerUpstreamPasses();

/// One-shot bufferization (function boundaries included, identity layouts)
/// with ownership-based deallocation: linalg on tensors to linalg on memrefs,
/// as every target does it.
void buildBufferizationPipeline(mlir::OpPassManager &pm);

/// The whole lowering for `target`: the shared tensor pipeline, then the
/// target's tensor and codegen pipelines.
void buildLoweringPipeline(mlir::OpPassManager &pm, const Target &target);

/// Registers `peft-lower-to-linalg` (buildTensorPipeline) and, for every
/// registered target, `peft-NAME-lowering` (buildLoweringPipeline).
void registerLoweringPipelines();

} // namespace peft

#endif // PEFT_LOWERING_TARGET_H
