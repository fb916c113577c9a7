//===- peftc.cpp - Compile an ONNX model and its adapters -------------------===//
//
//   peftc MODEL.onnx [--adapter DIR[=NAME][:WEIGHT]]... [--mode merge|fuse]
//         [--target cpu] -o OUTDIR
//   peftc MODEL.onnx [--adapter DIR[=NAME][:WEIGHT]]... --emit onnx -o MERGED.onnx
//
// Imports the model, attaches the adapters, merges them (or keeps them
// unmerged with --mode fuse), and writes an artifact directory: manifest.json,
// model.so and weights.safetensors. OUTDIR appears complete or not at all.
// With --emit onnx it writes the merged model as a standard ONNX file instead.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/OnnxExporter.h"
#include "frontends/onnx/OnnxImporter.h"
#include "lowering/Artifact.h"
#include "lowering/Passes.h"
#include "lowering/cpu/CpuBackend.h"
#include "passes/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"

namespace cl = llvm::cl;

static cl::opt<std::string> modelPath(cl::Positional, cl::desc("<model.onnx>"), cl::Required);
static cl::list<std::string> adapterSpecs("adapter",
                                          cl::desc("Hugging Face PEFT adapter: DIR[=NAME][:WEIGHT]"),
                                          cl::value_desc("dir"));
static cl::opt<std::string> mode("mode", cl::desc("merge: fold adapters into the weights; "
                                                  "fuse: keep them unmerged"),
                                 cl::init("merge"));
static cl::opt<std::string> target("target", cl::desc("Code generation target"), cl::init("cpu"));
static cl::opt<std::string> emit("emit",
                                 cl::desc("artifact: a compiled artifact directory; "
                                          "onnx: the merged model as an ONNX file"),
                                 cl::init("artifact"));
static cl::opt<std::string> outputDir("o", cl::desc("Artifact directory (ONNX file with --emit onnx)"),
                                      cl::value_desc("path"), cl::Required);

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "peftc") << message << "\n";
  return 1;
}

/// Prints each diagnostic as one line: "peftc: error: message".
static mlir::LogicalResult printDiagnostic(mlir::Diagnostic &diagnostic) {
  llvm::raw_ostream &os = llvm::errs();
  switch (diagnostic.getSeverity()) {
  case mlir::DiagnosticSeverity::Error:
    llvm::WithColor::error(os, "peftc");
    break;
  case mlir::DiagnosticSeverity::Warning:
    llvm::WithColor::warning(os, "peftc");
    break;
  default:
    llvm::WithColor::remark(os, "peftc");
  }
  os << diagnostic.str() << "\n";
  return mlir::success();
}

static mlir::LogicalResult runAdapterPasses(mlir::ModuleOp module, bool externalize) {
  mlir::PassManager pm(module.getContext());
  if (!adapterSpecs.empty()) {
    peft::AttachAdaptersOptions options;
    options.adapters.assign(adapterSpecs.begin(), adapterSpecs.end());
    pm.addPass(peft::createAttachAdapters(options));
  }
  if (mode == "merge")
    pm.addPass(peft::createMergeAdapters());
  pm.addPass(mlir::createCanonicalizerPass());
  if (externalize)
    pm.addPass(peft::createExternalizeWeights());
  return pm.run(module);
}

/// Writes the whole artifact into `stagingDir`.
static llvm::Error writeArtifact(mlir::ModuleOp module, llvm::StringRef stagingDir) {
  auto entry = module.lookupSymbol<mlir::func::FuncOp>("forward");
  auto manifest = peft::describeEntry(entry);
  if (!manifest)
    return manifest.takeError();
  manifest->library = "model.so";
  manifest->entry = "forward_packed";
  manifest->weightsFile = "weights.safetensors";
  llvm::SmallString<256> path(stagingDir);
  llvm::sys::path::append(path, manifest->weightsFile);
  if (llvm::Error error = peft::writeEntryWeights(entry, path))
    return error;
  path = stagingDir;
  llvm::sys::path::append(path, manifest->library);
  if (llvm::Error error = peft::compileCpuLibrary(module, path))
    return error;
  path = stagingDir;
  llvm::sys::path::append(path, "manifest.json");
  return llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
    os << manifest->toJson();
    return llvm::Error::success();
  });
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "peft-mlir compiler driver\n");
  if (mode != "merge" && mode != "fuse")
    return fail("--mode must be 'merge' or 'fuse', got '" + mode + "'");
  if (target != "cpu")
    return fail("--target must be 'cpu', got '" + target + "'");
  if (emit != "artifact" && emit != "onnx")
    return fail("--emit must be 'artifact' or 'onnx', got '" + emit + "'");
  if (emit == "onnx" && mode != "merge")
    return fail("--emit onnx writes merged models; it needs --mode merge");

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::MLIRContext context(registry);
  mlir::ScopedDiagnosticHandler diagnostics(&context, printDiagnostic);
  peft::registerOnnxWeightFormat();

  auto module = peft::importOnnxModel(&context, modelPath);
  if (!module)
    return fail(llvm::toString(module.takeError()));
  if (mlir::failed(runAdapterPasses(**module, /*externalize=*/emit == "artifact")))
    return 1; // The passes reported why.
  if (emit == "onnx") {
    // Written to a temporary file, renamed on success: no partial output.
    if (llvm::Error error = llvm::writeToOutput(outputDir, [&](llvm::raw_ostream &os) {
          return peft::exportMergedOnnx(**module, os);
        }))
      return fail(llvm::toString(std::move(error)));
    return 0;
  }

  auto staging = peft::createStagingDir(outputDir);
  if (!staging)
    return fail(llvm::toString(staging.takeError()));
  llvm::Error error = writeArtifact(**module, *staging);
  if (!error)
    error = peft::publishStagingDir(*staging, outputDir);
  if (error) {
    llvm::sys::fs::remove_directories(*staging);
    return fail(llvm::toString(std::move(error)));
  }
  return 0;
}
