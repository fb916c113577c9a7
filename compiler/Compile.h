//===- Compile.h - What peftc does, as one library call ---------*- C++ -*-===//
//
// An ONNX model and Hugging Face PEFT adapters to an artifact directory (or an
// ONNX file, or the lowered MLIR), for any caller: `peftc` parses its command
// line into CompileOptions, the Python package (python/) fills them from
// keyword arguments, and both call compileModel. Errors come back as one-line
// llvm::Errors, a pass's error diagnostic included; nothing is printed here.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_COMPILER_COMPILE_H
#define PEFT_COMPILER_COMPILE_H

#include "lowering/Target.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace peft {

/// A compile, as peftc's options spell it (README.md, "Tools").
struct CompileOptions {
  std::string model;                 ///< The ONNX file.
  std::vector<std::string> adapters; ///< `--adapter`: DIR[=NAME][:WEIGHT] each.
  std::vector<std::string> insert;   ///< `--insert`: FILE[=NAME], fresh adapters to train.
  uint64_t seed = 0;                 ///< `--seed` of --insert's initialization.
  std::string mode;                  ///< merge | fuse | multi; "": merge (fuse with insert).
  int64_t maxAdapters = 0;           ///< --mode multi's slots (0: one per adapter).
  int64_t maxRank = 0;               ///< Their rank capacity (0: the largest rank).
  std::vector<std::string> slotModules, slotMethods;
  std::string combine;               ///< "", cat or svd.
  int64_t combineRank = 0;
  std::string target = "cpu";
  TargetOptions targetOptions;
  std::string emit = "artifact";     ///< artifact | onnx | mlir.
  std::string output;                ///< The artifact directory, or the file.
  bool summary = false;              ///< Describe each adapted module (observer's summary).
};

/// What a caller sees of a compile as it goes; every hook may be left out.
class CompileObserver {
public:
  virtual ~CompileObserver();
  /// A step that is not a pass pipeline ("weights file").
  virtual void stage(const llvm::Twine &name) {}
  /// What a pipeline of `count` top-level passes under `stage` adds to
  /// report them (peftc: its progress line), or null.
  virtual std::unique_ptr<mlir::PassInstrumentation> passes(llvm::StringRef stage,
                                                            size_t count) {
    return nullptr;
  }
  /// A diagnostic as it is emitted, errors included (the compile's Error
  /// repeats the first error's text).
  virtual void diagnostic(mlir::Diagnostic &diagnostic) {}
  /// The table CompileOptions::summary asks for, whole.
  virtual void summary(llvm::StringRef text) {}
};

/// Registers what compiles need once per process (the targets, the ONNX
/// weight format); compileModel calls it.
void registerCompiler();

/// Checks that `options` go together, and settles what they leave unsaid (no
/// mode: merge, or fuse with --insert). The error names the option.
llvm::Error checkCompileOptions(CompileOptions &options);

/// The passes compileModel runs on the imported model, as one textual
/// pipeline: `peft-opt --pass-pipeline=...` replays exactly what it runs.
llvm::Expected<std::string> compilePipeline(CompileOptions options);

/// Compiles as `peftc` does: options.output appears complete or not at all.
/// Options are checked first (checkCompileOptions).
llvm::Error compileModel(CompileOptions options, CompileObserver &observer,
                         mlir::TimingScope &timing);
llvm::Error compileModel(CompileOptions options);

/// `diagnostic` as the one line tools print: "FILE:LINE:COL: MESSAGE".
std::string diagnosticLine(mlir::Diagnostic &diagnostic);

} // namespace peft

#endif // PEFT_COMPILER_COMPILE_H
