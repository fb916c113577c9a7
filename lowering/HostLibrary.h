//===- HostLibrary.h - LLVM dialect to a shared library for the host -*- C++ -*-===//
//
// Every target's artifact has host code: for the CPU all of it, for a GPU
// the entry that allocates buffers and launches kernels. It is compiled for
// the CPU that runs peftc and linked into the artifact's model.so.
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_HOSTLIBRARY_H
#define PEFT_LOWERING_HOSTLIBRARY_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/Error.h"

#include <string>

namespace peft {

/// The helpers every model.so links (runtime/cpu/model_support.c: memrefCopy,
/// the buffer cache, peft_parallel_for).
inline constexpr const char *kModelSupportLibrary = "libpeft_model_support.a";

/// Where compiles find the `supportLibraries` below, for a program that links
/// the compiler outside peft-mlir's prefix (the installed prefix's lib/; the
/// CMake package's PEFT_MLIR_LIBRARY_DIR). Without it: $PEFT_MLIR_LIBRARY_DIR,
/// else lib/ of the prefix that holds the tool or extension this code is in.
void setSupportLibraryDir(llvm::StringRef directory);

/// Translates `module` (the LLVM dialect; GPU binaries and launches too) to
/// LLVM IR, optimizes it for the host CPU and links it, with the static
/// `supportLibraries` (file names, found as setSupportLibraryDir says), into
/// the shared library `libraryPath`. Errors say which step failed.
llvm::Error compileHostLibrary(mlir::ModuleOp module, llvm::StringRef libraryPath,
                               llvm::ArrayRef<std::string> supportLibraries,
                               mlir::TimingScope &timing);

} // namespace peft

#endif // PEFT_LOWERING_HOSTLIBRARY_H
