//===- peft-translate.cpp - Translate between ONNX and the peft dialect -----===//
//
//   peft-translate --import-onnx MODEL.onnx -o MODEL.mlir
//
// Weights stay in MODEL.onnx: the IR references them by name, so it stays
// small however large the model is.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/OnnxImporter.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

static cl::opt<bool> importOnnx("import-onnx", cl::desc("Import an ONNX model"));
static cl::opt<std::string> inputPath(cl::Positional, cl::desc("<input>"), cl::Required);
static cl::opt<std::string> outputPath("o", cl::desc("Output file (default: stdout)"),
                                       cl::value_desc("file"), cl::init("-"));

static int fail(llvm::Error error) {
  llvm::WithColor::error(llvm::errs(), "peft-translate") << llvm::toString(std::move(error)) << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  cl::ParseCommandLineOptions(argc, argv, "peft-mlir translation tool\n");
  if (!importOnnx)
    return fail(llvm::createStringError("choose a translation: --import-onnx"));

  mlir::MLIRContext context;
  peft::registerOnnxWeightFormat();
  auto module = peft::importOnnxModel(&context, inputPath);
  if (!module)
    return fail(module.takeError());
  mlir::OpPrintingFlags flags;
  if (llvm::Error error = llvm::writeToOutput(outputPath, [&](llvm::raw_ostream &os) {
        (*module)->print(os, flags);
        return llvm::Error::success();
      }))
    return fail(std::move(error));
  return 0;
}
