//===- compile-model.cpp - What peftc does, from another program ------------===//
//
//   compile-model MODEL.onnx ADAPTER_DIR OUTDIR
//
// Compiles the model with the adapter merged into an artifact, through the
// installed library (PeftMLIR::Compiler); prints the one-line error and
// exits 1 on failure.
//===----------------------------------------------------------------------===//
#include "compiler/Compile.h"
#include "lowering/HostLibrary.h"

#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  if (argc != 4) {
    llvm::errs() << "usage: compile-model MODEL.onnx ADAPTER_DIR OUTDIR\n";
    return 2;
  }
  // The archives each model.so links, from the installed package.
  peft::setSupportLibraryDir(PEFT_MLIR_LIBRARY_DIR);
  peft::CompileOptions options;
  options.model = argv[1];
  options.adapters = {argv[2]};
  options.mode = "merge";
  options.output = argv[3];
  if (llvm::Error error = peft::compileModel(options)) {
    llvm::errs() << "compile-model: " << llvm::toString(std::move(error)) << "\n";
    return 1;
  }
  return 0;
}
