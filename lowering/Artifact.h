//===- Artifact.h - Describe and package a compiled entry -------*- C++ -*-===//
//
// The target-independent half of an artifact: the manifest (inputs, outputs,
// weights of the entry) and the weights file. Back ends add the code.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_ARTIFACT_H
#define PEFT_LOWERING_ARTIFACT_H

#include "runtime/Manifest.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

namespace peft {

/// The entry's signature as the manifest states it. `entry` must have been
/// through peft-externalize-weights.
llvm::Expected<Manifest> describeEntry(mlir::func::FuncOp entry);

/// Adds the exported constant `<entry>_signature` holding
/// `manifest.signature()`, which the runtime compares with the manifest it
/// reads: a back end compiles it into the library like any global.
void embedSignature(mlir::ModuleOp module, const Manifest &manifest);

/// Writes the bytes of every weight argument of `entry` to a safetensors file.
llvm::Error writeEntryWeights(mlir::func::FuncOp entry, llvm::StringRef path);

/// Creates a fresh, empty staging directory beside `outputDir`; `publish`
/// moves it into place so that `outputDir` is never left half-written. Both
/// refuse a destination that is a symlink, or anything but an artifact of
/// ours (a manifest with the format marker, and only the files it names).
llvm::Expected<std::string> createStagingDir(llvm::StringRef outputDir);
llvm::Error publishStagingDir(llvm::StringRef stagingDir, llvm::StringRef outputDir);

} // namespace peft

#endif // PEFT_LOWERING_ARTIFACT_H
