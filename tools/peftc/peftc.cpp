//===- peftc.cpp - Compile an ONNX model and its adapters -------------------===//
//
//   peftc MODEL.onnx [--adapter DIR[=NAME][:WEIGHT]]... [--mode merge|fuse|multi]
//         [--max-adapters N] [--max-rank R] [--slot-modules NAME,...]
//         [--slot-methods lora_bias,dora,ia3]
//         [--combine cat|svd [--combine-rank N]]
//         [--target cpu|cuda [--gpu-arch sm_80|sm_90]] [--summary] [--mlir-timing] -o OUTDIR
//   peftc MODEL.onnx [--adapter DIR[=NAME][:WEIGHT]]... --emit onnx -o MERGED.onnx
//   peftc MODEL.onnx --insert adapter_config.json[=NAME]... [--seed N] --emit onnx -o TRAIN.onnx
//   peftc MODEL.onnx [...] --emit mlir -o LOWERED.mlir
//   peftc MODEL.onnx [...] --print-pipeline
//
// Imports the model, attaches the adapters, merges them (or keeps them
// unmerged with --mode fuse; in slots each row of a batch picks from with
// --mode multi), and writes an artifact directory: manifest.json,
// the target's library (model.so) and weights.safetensors. OUTDIR appears
// complete or not at all. With --emit onnx it writes the model as a standard
// ONNX file instead; the adapters left unmerged (fresh ones from --insert, to
// train elsewhere) are standard ops there, their tensors named initializers.
// --emit mlir writes what the target's library is compiled from, and
// --print-pipeline the passes that make it, as one pipeline: `peft-opt
// --pass-pipeline=...` on the imported model replays exactly what peftc runs.
//
// The compile itself is compileModel (compiler/Compile.h), which the Python
// package calls too; this file is its command line and its terminal.
//===----------------------------------------------------------------------===//
#include "Progress.h"
#include "compiler/Compile.h"
#include "support/Diagnostics.h"
#include "support/ProgressReport.h"
#include "support/ToolOptions.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Support/Timing.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"

namespace cl = llvm::cl;

// --help lists these groups only (LLVM's and MLIR's options still parse).
static cl::OptionCategory inputOptions("Model and adapters");
static cl::OptionCategory modeOptions("How adapters are applied");
static cl::OptionCategory outputOptions("Output");

static cl::opt<std::string> modelPath(cl::Positional, cl::desc("<model.onnx>"), cl::Required,
                                      cl::cat(inputOptions));
static cl::list<std::string> adapterSpecs("adapter",
                                          cl::desc("Hugging Face PEFT adapter: DIR[=NAME][:WEIGHT]"),
                                          cl::value_desc("dir"), cl::cat(inputOptions));
static cl::list<std::string> insertSpecs(
    "insert", cl::desc("Attach a fresh adapter to train, from a config: FILE[=NAME]"),
    cl::value_desc("adapter_config.json"), cl::cat(inputOptions));
static cl::opt<uint64_t> seed("seed", cl::desc("Seed of --insert's random initialization"),
                              cl::init(0), cl::cat(inputOptions));
static cl::opt<std::string> mode("mode", cl::value_desc("merge|fuse|multi"), cl::desc("merge: fold adapters into the weights; "
                                                  "fuse: keep them unmerged; multi: in slots, "
                                                  "each row of a batch picking its own "
                                                  "(input adapter_index)"),
                                 cl::cat(modeOptions));
static cl::opt<int64_t> maxAdapters("max-adapters",
                                    cl::desc("--mode multi: adapter slots (default: as many as "
                                             "--adapter names)"),
                                    cl::init(0), cl::cat(modeOptions));
static cl::opt<int64_t> maxRank("max-rank",
                                cl::desc("--mode multi: rank capacity of each slot (default: "
                                         "the largest rank attached)"),
                                cl::init(0), cl::cat(modeOptions));
static cl::list<std::string> slotModules(
    "slot-modules",
    cl::desc("--mode multi: also give slots to these linear layers (PEFT's target_modules: "
             "a module path or its last dotted parts), for adapters loaded at run time"),
    cl::value_desc("name,..."), cl::CommaSeparated, cl::cat(modeOptions));
static cl::list<std::string> slotMethods(
    "slot-methods",
    cl::desc("--mode multi: also give every slotted layer the tables these methods need, for "
             "adapters loaded at run time (LoRA's are always there)"),
    cl::value_desc("lora_bias,dora,ia3"), cl::CommaSeparated, cl::cat(modeOptions));
static cl::opt<std::string> combine("combine",
                                    cl::desc("Combine the LoRAs on each layer into one: cat "
                                             "(exact, rank Σr) or svd (truncated to --combine-rank)"),
                                    cl::value_desc("cat|svd"), cl::cat(modeOptions));
static cl::opt<int64_t> combineRank("combine-rank", cl::desc("The rank --combine svd keeps"),
                                    cl::init(0), cl::cat(modeOptions));
static cl::opt<std::string> targetName("target", cl::desc("Code generation target"),
                                       cl::init("cpu"), cl::cat(outputOptions));
static cl::opt<std::string> gpuArch("gpu-arch",
                                    cl::desc("GPU architecture of a GPU target (default sm_80)"),
                                    cl::value_desc("sm_80|sm_90"), cl::cat(outputOptions));
static cl::opt<std::string> gpuGemmTiles(
    "gpu-gemm-tiles",
    cl::desc("Tiles of C a GPU target's f16/bf16 GEMMs take (default auto: 128 where C "
             "has at least 256 of them)"),
    cl::value_desc("auto|64|128"), cl::cat(outputOptions));
static cl::opt<std::string> emit("emit", cl::value_desc("artifact|onnx|mlir"),
                                 cl::desc("artifact: a compiled artifact directory; "
                                          "onnx: the model as an ONNX file, unmerged "
                                          "adapters as standard ops; mlir: the lowered "
                                          "module the target's library is compiled from"),
                                 cl::init("artifact"), cl::cat(outputOptions));
static cl::opt<bool> printPipeline("print-pipeline",
                                   cl::desc("Print the passes peftc runs on the imported model, "
                                            "as a pipeline for peft-opt --pass-pipeline, and exit"), cl::cat(outputOptions));
static cl::opt<bool> summary("summary",
                             cl::desc("Print each adapted module: adapter, method, rank, "
                                      "parameters, merged or not"), cl::cat(outputOptions));
static cl::opt<std::string> outputDir("o", cl::desc("Artifact directory (a file with --emit onnx "
                                                   "or mlir)"),
                                      cl::value_desc("path"), cl::cat(outputOptions));

static cl::opt<bool> timing("timing",
                            cl::desc("Print the time each stage and pass took (MLIR's pass "
                                     "timing; also --mlir-timing)"),
                            cl::cat(outputOptions));

/// The progress line on a terminal; cleared before any error is printed.
static peft::Progress progress;

static int fail(const llvm::Twine &message) {
  progress.clear();
  return peft::reportError("peftc", message);
}

/// What peftc shows of a compile: its progress line on a terminal, warnings
/// as they come (errors come back from compileModel), and --summary.
class ToolObserver final : public peft::CompileObserver {
public:
  void stage(const llvm::Twine &name) override { progress.stage(name); }
  std::unique_ptr<mlir::PassInstrumentation> passes(llvm::StringRef stage,
                                                    size_t count) override {
    return progress.passes(stage, count);
  }
  void diagnostic(mlir::Diagnostic &diagnostic) override {
    if (diagnostic.getSeverity() == mlir::DiagnosticSeverity::Error)
      return;
    progress.clear();
    llvm::raw_ostream &os = llvm::errs();
    if (diagnostic.getSeverity() == mlir::DiagnosticSeverity::Warning)
      llvm::WithColor::warning(os, "peftc");
    else
      llvm::WithColor::remark(os, "peftc");
    os << peft::diagnosticLine(diagnostic) << "\n";
  }
  void summary(llvm::StringRef text) override {
    progress.clear();
    llvm::outs() << text;
  }
};

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerDefaultTimingManagerCLOptions();
  peft::registerCompiler();
  peft::prepareToolOptions("peftc", {&inputOptions, &modeOptions, &outputOptions});
  static const std::string targets = llvm::join(peft::targetNames(), "|");
  targetName.setValueStr(targets);
  cl::ParseCommandLineOptions(
      argc, argv,
      "peft-mlir compiler driver: an ONNX model and Hugging Face PEFT adapters to an "
      "artifact\n\n"
      "Exit status: 0 on success; 1 on any error, reported in one line on stderr "
      "(no partial output is left)\n");
  auto strings = [](const cl::list<std::string> &list) {
    return std::vector<std::string>(list.begin(), list.end());
  };
  peft::CompileOptions options;
  options.model = modelPath;
  options.adapters = strings(adapterSpecs);
  options.insert = strings(insertSpecs);
  options.seed = seed;
  options.mode = mode;
  options.maxAdapters = maxAdapters;
  options.maxRank = maxRank;
  options.slotModules = strings(slotModules);
  options.slotMethods = strings(slotMethods);
  options.combine = combine;
  options.combineRank = combineRank;
  options.target = targetName;
  options.targetOptions = {gpuArch, gpuGemmTiles};
  options.emit = emit;
  options.output = outputDir;
  options.summary = summary;
  if (printPipeline) {
    auto pipeline = peft::compilePipeline(options);
    if (!pipeline)
      return fail(llvm::toString(pipeline.takeError()));
    llvm::outs() << *pipeline << "\n";
    return 0;
  }

  mlir::DefaultTimingManager timingManager;
  mlir::applyDefaultTimingManagerCLOptions(timingManager);
  if (timing)
    timingManager.setEnabled(true);
  mlir::TimingScope timingScope = timingManager.getRootScope();
  if (progress.enabled()) // Passes report the items they work through.
    peft::setProgressSink([](llvm::StringRef items, size_t done, size_t total) {
      progress.detail(items + " " + llvm::Twine(done) + " of " + llvm::Twine(total));
    });
  ToolObserver observer;
  if (llvm::Error error = peft::compileModel(options, observer, timingScope))
    return fail(llvm::toString(std::move(error)));
  return 0;
}
