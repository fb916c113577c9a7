//===- peft-translate.cpp - Translate between ONNX and the peft dialect -----===//
//
//   peft-translate --import-onnx MODEL.onnx -o MODEL.mlir
//   peft-translate --export-onnx MERGED.mlir -o MERGED.onnx
//   peft-translate --extract-adapters TRAINED.onnx -o DIR
//
// Importing keeps the weights in MODEL.onnx: the IR references them by name,
// so it stays small however large the model is. Exporting writes the model
// the IR was imported from with the IR's (merged) weights, unmerged adapters
// as standard ops. Extracting writes the adapters such an export carries
// (trained since, perhaps) back as adapter directories, DIR/<name>/.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/OnnxExporter.h"
#include "frontends/onnx/OnnxImporter.h"

#include "dialects/peft/PeftDialect.h"
#include "support/Diagnostics.h"
#include "support/OutputFile.h"
#include "support/ToolOptions.h"
#include "tools/common/ToolDiagnostics.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

// --help lists these groups only (LLVM's and MLIR's options still parse).
static cl::OptionCategory translations("Translations (choose one)");
static cl::OptionCategory outputOptions("Output");

static cl::opt<bool> importOnnx("import-onnx", cl::desc("Import an ONNX model"),
                                cl::cat(translations));
static cl::opt<bool> exportOnnx("export-onnx",
                                cl::desc("Export merged IR as its source ONNX model"),
                                cl::cat(translations));
static cl::opt<bool> extractAdapters(
    "extract-adapters", cl::desc("Write the adapters an exported ONNX model carries as "
                                 "adapter directories under -o"),
    cl::cat(translations));
static cl::opt<std::string> inputPath(cl::Positional, cl::desc("<input>"), cl::Required,
                                      cl::cat(translations));
static cl::opt<std::string> outputPath("o", cl::desc("Output file (default: stdout)"),
                                       cl::value_desc("file"), cl::init("-"),
                                       cl::cat(outputOptions));

static int fail(llvm::Error error) {
  return peft::reportError("peft-translate", llvm::toString(std::move(error)));
}

static int runImport(mlir::MLIRContext &context) {
  auto module = peft::importOnnxModel(&context, inputPath);
  if (!module)
    return fail(module.takeError());
  mlir::OpPrintingFlags flags;
  if (llvm::Error error = peft::writeFileAtomically(outputPath, [&](llvm::raw_ostream &os) {
        (*module)->print(os, flags);
        return llvm::Error::success();
      }))
    return fail(std::move(error));
  return 0;
}

static int runExport(mlir::MLIRContext &context) {
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  registry.insert<peft::PeftDialect>();
  context.appendDialectRegistry(registry);
  llvm::SourceMgr sources;
  auto diagnostics = peft::printDiagnosticsAsLines(context, "peft-translate");
  auto module = mlir::parseSourceFile<mlir::ModuleOp>(inputPath, sources, &context);
  if (!module)
    return 1; // The parser reported why.
  // Written to a temporary file, renamed on success: no partial output.
  if (llvm::Error error = peft::writeFileAtomically(outputPath, [&](llvm::raw_ostream &os) {
        return peft::exportOnnx(*module, os);
      }))
    return fail(std::move(error));
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  peft::prepareToolOptions("peft-translate", {&translations, &outputOptions});
  cl::ParseCommandLineOptions(argc, argv,
                              "peft-mlir translation tool\n\n"
                              "Exit status: 0 on success; 1 on any error, reported in one line "
                              "on stderr (no partial output is left)\n");
  if (importOnnx + exportOnnx + extractAdapters != 1)
    return fail(llvm::createStringError(
        "choose one translation: --import-onnx, --export-onnx or --extract-adapters"));
  if (extractAdapters) {
    if (outputPath == "-")
      return fail(llvm::createStringError("--extract-adapters needs -o DIR"));
    if (llvm::Error error = peft::extractAdapters(inputPath, outputPath))
      return fail(std::move(error));
    return 0;
  }
  mlir::MLIRContext context;
  peft::registerOnnxWeightFormat();
  return importOnnx ? runImport(context) : runExport(context);
}
