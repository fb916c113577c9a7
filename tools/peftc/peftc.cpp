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
//===----------------------------------------------------------------------===//
#include "frontends/onnx/OnnxExporter.h"
#include "frontends/onnx/OnnxImporter.h"
#include "lowering/Artifact.h"
#include "support/Diagnostics.h"
#include "support/OutputFile.h"
#include "support/ToolOptions.h"
#include "Progress.h"
#include "passes/AdapterPipeline.h"
#include "support/ProgressReport.h"
#include "tools/common/ToolDiagnostics.h"
#include "lowering/Passes.h"
#include "lowering/Target.h"
#include "lowering/cpu/CpuBackend.h"
#include "lowering/cuda/CudaBackend.h"
#include "passes/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"

#include <map>
#include <set>
#include <tuple>

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
                                 cl::init("merge"), cl::cat(modeOptions));
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

static llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// One adapter on one layer, as --summary reports it.
struct AdapterUse {
  std::string module, adapter, method;
  int64_t rank = 0, parameters = 0;
  /// Why the merge left it ("" if it was not asked to merge).
  std::string notMergedReason;
};

/// What an adapter op is made of: its method, its rank (0 where it has
/// none), its scale, and the weights it reads or computes its delta from.
struct AdapterParts {
  std::string method;
  int64_t rank = 0;
  double scale = 1;
  llvm::SmallVector<peft::WeightOp> weights;
};

static AdapterParts partsOf(peft::AdapterOp op) {
  AdapterParts parts{op.getMethod().str(), op.getAdapterRank(), op.getAdapterScale(), {}};
  for (mlir::OpOperand *use : peft::adapterTensorUses(op))
    parts.weights.push_back(use->get().getDefiningOp<peft::WeightOp>());
  return parts;
}

/// Why peft-merge-adapters left `op` unmerged; "" when it did not run.
static std::string notMergedReason(mlir::Operation *op) {
  auto reason = op->getAttrOfType<mlir::StringAttr>(peft::kNotMergedAttr);
  return reason ? reason.str() : std::string();
}

static std::vector<AdapterUse> collectAdapters(mlir::ModuleOp module) {
  std::vector<AdapterUse> uses;
  module.walk([&](peft::AdapterOp op) {
    AdapterParts parts = partsOf(op);
    int64_t parameters = 0;
    for (peft::WeightOp weight : parts.weights)
      parameters += weight.getType().getNumElements();
    uses.push_back({peft::adaptedModulePath(op).str(), op.getAdapterName().str(), parts.method,
                    parts.rank, parameters, notMergedReason(op)});
  });
  return uses;
}

/// Prints each attached adapter with what became of it; `module` holds the
/// adapters left unmerged.
static void printSummary(std::vector<AdapterUse> attached, mlir::ModuleOp module) {
  std::map<std::tuple<std::string, std::string, std::string>, std::string> left;
  for (const AdapterUse &use : collectAdapters(module))
    left[{use.module, use.adapter, use.method}] =
        use.notMergedReason.empty() ? "unmerged (--mode " + mode + ")"
                                    : "unmerged: " + use.notMergedReason;
  // --mode multi: each adapter in its slot of the layer's peft.multi_lora.
  int64_t slotLayers = 0, slotCount = 0, capacity = 0, filled = 0;
  // Layers whose slots hold each table beyond LoRA's factors.
  int64_t biasLayers = 0, doraLayers = 0, ia3Outputs = 0, ia3Inputs = 0;
  module.walk([&](peft::MultiIa3Op scaling) { ++(scaling.scalesInput() ? ia3Inputs : ia3Outputs); });
  module.walk([&](peft::MultiLoraOp batched) {
    ++slotLayers;
    biasLayers += bool(batched.getLoraBias());
    doraLayers += bool(batched.getDoraScales());
    slotCount = batched.getSlots();
    capacity = batched.getRankCapacity();
    filled = llvm::count_if(batched.getAdapters().getAsValueRange<mlir::StringAttr>(),
                            [](llvm::StringRef name) { return !name.empty(); });
  });
  // (Each slot's name on each layer: the adapters attached to it are looked up.)
  auto markSlots = [&](mlir::ArrayAttr names, peft::AdaptableLayer layer, llvm::StringRef method) {
    std::string path = layer ? layer.getModulePath().str() : std::string();
    for (auto [slot, name] : llvm::enumerate(names.getAsValueRange<mlir::StringAttr>()))
      if (!name.empty())
        left[{path, name.str(), method.str()}] = "slot " + std::to_string(slot) + " (--mode multi)";
  };
  module.walk([&](peft::MultiLoraOp op) {
    markSlots(op.getAdapters(), op.getLayer(), "LoRA");
    markSlots(op.getAdapters(), op.getLayer(), "DoRA");
  });
  module.walk([&](peft::MultiIa3Op op) {
    markSlots(op.getAdapters(), op.getLayer(), "IA3");
  });
  llvm::sort(attached, [](const AdapterUse &l, const AdapterUse &r) {
    return std::tie(l.module, l.adapter) < std::tie(r.module, r.adapter);
  });
  llvm::outs() << llvm::formatv("{0,-48} {1,-10} {2,-10} {3,5} {4,11}  {5}\n", "module", "adapter",
                                "method", "rank", "parameters", "state");
  int64_t parameters = 0, merged = 0;
  std::set<std::string> modules;
  for (const AdapterUse &use : attached) {
    modules.insert(use.module);
    auto unmerged = left.find({use.module, use.adapter, use.method});
    parameters += use.parameters;
    merged += unmerged == left.end();
    llvm::outs() << llvm::formatv("{0,-48} {1,-10} {2,-10} {3,5} {4,11}  {5}\n", use.module,
                                  use.adapter, use.method,
                                  use.rank ? std::to_string(use.rank) : std::string("-"),
                                  use.parameters,
                                  unmerged == left.end() ? "merged" : unmerged->second);
  }
  llvm::outs() << llvm::formatv("{0} adapters on {1} modules, {2} adapter parameters; {3} merged, "
                                "{4} unmerged\n",
                                attached.size(), modules.size(), parameters, merged,
                                attached.size() - merged);
  if (slotLayers)
    llvm::outs() << llvm::formatv("{0} adapter slots of rank capacity {1} on {2} linear layers, "
                                  "{3} filled at compile time\n",
                                  slotCount, capacity, slotLayers, filled);
  if (slotLayers)
    llvm::outs() << llvm::formatv("slots for lora_bias on {0} of those layers, DoRA on {1}, IA3 "
                                  "on {2} outputs and {3} inputs\n",
                                  biasLayers, doraLayers, ia3Outputs, ia3Inputs);
}

/// What a manifest says of an adapter op, if it can be swapped: not when a
/// weight is computed at compile time (a combined adapter).
static std::optional<peft::ManifestAdapter> describeAdapter(peft::AdapterOp op) {
  AdapterParts parts = partsOf(op);
  std::string adapter = op.getAdapterName().str();
  std::vector<std::string> tensors;
  for (peft::WeightOp weight : parts.weights) {
    if (!weight.getFile())
      return std::nullopt;
    tensors.push_back(peft::adapterWeightName(weight.getName().str(), adapter));
  }
  return peft::ManifestAdapter{adapter, parts.method, peft::adaptedModulePath(op).str(),
                               parts.scale, std::move(tensors)};
}

/// The adapters left unmerged whose weights come from adapter files: the
/// ones `peft-run --adapter` can swap.
static std::vector<peft::ManifestAdapter> swappableAdapters(mlir::ModuleOp module) {
  std::vector<peft::ManifestAdapter> adapters;
  module.walk([&](peft::AdapterOp op) {
    if (std::optional<peft::ManifestAdapter> adapter = describeAdapter(op))
      adapters.push_back(std::move(*adapter));
  });
  return adapters;
}

/// The adapter stage's options (passes/AdapterPipeline.h), from the command
/// line.
static void setAdapterOptions(peft::AdapterPipelineOptions &options) {
  auto strings = [](const cl::list<std::string> &list) {
    return std::vector<std::string>(list.begin(), list.end());
  };
  options.adapters = strings(adapterSpecs);
  options.insert = strings(insertSpecs);
  options.seed = seed;
  options.combine = combine;
  options.combineRank = combineRank;
  options.mode = mode;
  options.slots = maxAdapters;
  options.maxRank = maxRank;
  options.slotModules = strings(slotModules);
  options.slotMethods = strings(slotMethods);
}

static void buildAttachPipeline(mlir::OpPassManager &pm) {
  peft::AdapterPipelineOptions options;
  setAdapterOptions(options);
  peft::buildAttachStage(pm, options);
}

static void buildMergePipeline(mlir::OpPassManager &pm) {
  peft::AdapterPipelineOptions options;
  setAdapterOptions(options);
  peft::buildApplyStage(pm, options);
}

/// Compiling, the weights become the entry's arguments.
static void buildExternalizePipeline(mlir::OpPassManager &pm) {
  pm.addPass(peft::createExternalizeWeights());
}

/// Every pass peftc runs on the imported module, in order, as one pipeline.
static void buildPeftcPipeline(mlir::OpPassManager &pm, const peft::Target &target) {
  buildAttachPipeline(pm);
  buildMergePipeline(pm);
  if (emit != "onnx") {
    buildExternalizePipeline(pm);
    peft::buildLoweringPipeline(pm, target);
  }
}

/// Runs `build`'s passes on `module`, timed under `name`.
static mlir::LogicalResult runStage(mlir::ModuleOp module, mlir::TimingScope &timing,
                                    llvm::StringRef name,
                                    llvm::function_ref<void(mlir::OpPassManager &)> build) {
  mlir::PassManager pm(module.getContext());
  build(pm);
  if (auto reporter = progress.passes(name, pm.size()))
    pm.addInstrumentation(std::move(reporter));
  mlir::TimingScope scope = timing.nest(name);
  pm.enableTiming(scope);
  return pm.run(module);
}

/// --mode multi: the slots and, on each layer, the entry's weights holding
/// them (after peft-externalize-weights), for the runtime to load adapters
/// into free slots.
static std::optional<peft::ManifestSlots> describeSlots(mlir::ModuleOp module) {
  std::optional<peft::ManifestSlots> slots;
  auto entry = module.lookupSymbol<mlir::func::FuncOp>("forward");
  auto weightName = [&](mlir::Value value) -> std::string {
    auto argument = llvm::dyn_cast_or_null<mlir::BlockArgument>(value);
    auto name = argument && entry ? entry.getArgAttrOfType<mlir::StringAttr>(
                                        argument.getArgNumber(), peft::kWeightNameAttr)
                                  : mlir::StringAttr();
    return name ? name.str() : std::string();
  };
  module.walk([&](peft::MultiLoraOp batched) {
    if (!slots) {
      slots.emplace();
      slots->count = batched.getSlots();
      slots->capacity = batched.getRankCapacity();
      for (llvm::StringRef name : batched.getAdapters().getAsValueRange<mlir::StringAttr>())
        slots->filled.push_back(name.str());
    }
    peft::AdaptableLayer layer = batched.getLayer();
    peft::ManifestSlots::Layer &entry = slots->layers.emplace_back();
    entry.module = layer ? layer.getModulePath().str() : std::string();
    entry.loraA = weightName(batched.getLoraA());
    entry.loraB = weightName(batched.getLoraB());
    entry.scales = weightName(batched.getScales());
    if (batched.getLoraBias())
      entry.loraBias = weightName(batched.getLoraBias());
    if (batched.getDoraScales()) {
      entry.doraScales = weightName(batched.getDoraScales());
      // The runtime computes a loaded DoRA's factors from an F32 weight.
      if (layer && layer.getWeight().getType().getElementType().isF32()) {
        entry.weight = weightName(layer.getWeight());
        entry.weightInOut = layer.getWeightInOut();
      }
    }
  });
  // IA3 vectors, on the layers that have LoRA slots.
  module.walk([&](peft::MultiIa3Op scaling) {
    peft::AdaptableLayer layer = scaling.getLayer();
    if (!slots || !layer)
      return;
    for (peft::ManifestSlots::Layer &entry : slots->layers)
      if (entry.module == layer.getModulePath())
        (scaling.scalesInput() ? entry.ia3In : entry.ia3Out) = weightName(scaling.getScales());
  });
  return slots;
}

static mlir::LogicalResult runAdapterPasses(mlir::ModuleOp module, mlir::TimingScope &timing,
                                            std::vector<peft::ManifestAdapter> &unmerged,
                                            std::optional<peft::ManifestSlots> &slots) {
  if (mlir::failed(runStage(module, timing, "attach adapters", buildAttachPipeline)))
    return mlir::failure();
  std::vector<AdapterUse> attached = collectAdapters(module);
  if (mlir::failed(runStage(module, timing, "merge adapters", buildMergePipeline)))
    return mlir::failure();
  if (summary)
    printSummary(std::move(attached), module);
  unmerged = swappableAdapters(module);
  if (emit == "onnx")
    return mlir::success();
  if (mlir::failed(runStage(module, timing, "externalize weights", buildExternalizePipeline)))
    return mlir::failure();
  slots = describeSlots(module);
  return mlir::success();
}

/// Lowers `module` to what `target` compiles its library from.
static mlir::LogicalResult lowerForTarget(mlir::ModuleOp module, const peft::Target &target,
                                          mlir::TimingScope &timing) {
  return runStage(module, timing, "lowering to tensors",
                  [&](mlir::OpPassManager &pm) {
                    peft::buildTensorPipeline(pm);
                    target.buildTensorPipeline(pm);
                  });
}

/// Writes the whole artifact into `stagingDir`.
static llvm::Error writeArtifact(mlir::ModuleOp module, llvm::StringRef stagingDir,
                                 std::vector<peft::ManifestAdapter> adapters,
                                 std::optional<peft::ManifestSlots> slots,
                                 const peft::Target &target, mlir::TimingScope &timing) {
  if (mlir::failed(lowerForTarget(module, target, timing)))
    return makeError("lowering to linalg failed (see the diagnostics above)");
  // The entry's signature is final: the manifest and the weights file.
  auto entry = module.lookupSymbol<mlir::func::FuncOp>("forward");
  auto manifest = peft::describeEntry(entry);
  if (!manifest)
    return manifest.takeError();
  manifest->adapters = std::move(adapters);
  manifest->slots = std::move(slots);
  manifest->target = target.name().str();
  manifest->library = target.libraryFile().str();
  manifest->sources = target.sourceFiles();
  manifest->entry = "forward_packed";
  manifest->weightsFile = "weights.safetensors";
  llvm::SmallString<256> path(stagingDir);
  llvm::sys::path::append(path, manifest->weightsFile);
  progress.stage("weights file");
  mlir::TimingScope weights = timing.nest("weights file");
  if (llvm::Error error = peft::writeEntryWeights(entry, path))
    return error;
  weights.stop();
  peft::embedSignature(module, *manifest);
  if (mlir::failed(runStage(module, timing, "code generation pipeline",
                            [&](mlir::OpPassManager &pm) { target.buildCodegenPipeline(pm); })))
    return makeError("lowering for target '" + target.name() +
                           "' failed (see the diagnostics above)");
  path = stagingDir;
  llvm::sys::path::append(path, manifest->library);
  progress.stage("compiling " + llvm::Twine(manifest->library));
  if (llvm::Error error = target.writeLibrary(module, path, timing))
    return error;
  path = stagingDir;
  llvm::sys::path::append(path, "manifest.json");
  return peft::writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    os << manifest->toJson();
    return llvm::Error::success();
  });
}

/// --emit mlir: the module the target's library would be compiled from.
static llvm::Error writeLoweredModule(mlir::ModuleOp module, const peft::Target &target,
                                      mlir::TimingScope &timing) {
  if (mlir::failed(runStage(module, timing, "lowering",
                            [&](mlir::OpPassManager &pm) {
                              peft::buildTensorPipeline(pm);
                              target.buildTensorPipeline(pm);
                              target.buildCodegenPipeline(pm);
                            })))
    return makeError("lowering failed (see the diagnostics above)");
  return peft::writeFileAtomically(outputDir, [&](llvm::raw_ostream &os) {
    module->print(os);
    os << "\n"; // As peft-opt ends its output.
    return llvm::Error::success();
  });
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerDefaultTimingManagerCLOptions();
  peft::registerCpuTarget();
  peft::registerCudaTarget();
  peft::prepareToolOptions("peftc", {&inputOptions, &modeOptions, &outputOptions});
  static const std::string targets = llvm::join(peft::targetNames(), "|");
  targetName.setValueStr(targets);
  cl::ParseCommandLineOptions(
      argc, argv,
      "peft-mlir compiler driver: an ONNX model and Hugging Face PEFT adapters to an "
      "artifact\n\n"
      "Exit status: 0 on success; 1 on any error, reported in one line on stderr "
      "(no partial output is left)\n");
  if (mode != "merge" && mode != "fuse" && mode != "multi")
    return fail("--mode must be 'merge', 'fuse' or 'multi', got '" + mode + "'");
  if (mode != "multi" && (maxAdapters.getNumOccurrences() || maxRank.getNumOccurrences() ||
                          !slotModules.empty() || !slotMethods.empty()))
    return fail("--max-adapters, --max-rank, --slot-modules and --slot-methods shape the slots "
                "of --mode multi");
  for (const std::string &method : slotMethods)
    if (!peft::isSlotMethod(method))
      return fail("--slot-methods takes " + llvm::join(llvm::ArrayRef(peft::kSlotMethods), ", ") + ", not '" +
                  method + "'");
  if (maxAdapters < 0 || maxRank < 0)
    return fail("--max-adapters and --max-rank must not be negative");
  if (mode == "multi" && (!combine.empty() || !insertSpecs.empty() || emit == "onnx"))
    return fail("--mode multi serves the adapters named by --adapter as they are: no "
                "--combine, --insert or --emit onnx");
  if (mode == "multi" && adapterSpecs.empty() &&
      (slotModules.empty() || maxAdapters == 0 || maxRank == 0))
    return fail("--mode multi needs adapters to put in slots (--adapter DIR=NAME), or, for "
                "slots to load adapters into at run time, --slot-modules, --max-adapters and "
                "--max-rank");
  if (!combine.empty() && combine != "cat" && combine != "svd")
    return fail("--combine must be 'cat' or 'svd', got '" + combine + "'");
  if (combine == "svd" && combineRank < 1)
    return fail("--combine svd needs --combine-rank N (N >= 1)");
  peft::Target *target = peft::lookupTarget(targetName);
  if (!target)
    return fail("--target must be one of: " + llvm::join(peft::targetNames(), ", ") + "; got '" +
                targetName + "'");
  if (llvm::Error error = target->configure({gpuArch, gpuGemmTiles}))
    return fail(llvm::toString(std::move(error)));
  if (emit != "artifact" && emit != "onnx" && emit != "mlir")
    return fail("--emit must be 'artifact', 'onnx' or 'mlir', got '" + emit + "'");
  if (!insertSpecs.empty() && mode.getNumOccurrences() && mode == "merge")
    return fail("--insert adds fresh adapters to train; they stay unmerged (--mode fuse)");
  if (!insertSpecs.empty())
    mode = "fuse";
  if (printPipeline) {
    mlir::OpPassManager pm("builtin.module");
    buildPeftcPipeline(pm, *target);
    pm.printAsTextualPipeline(llvm::outs());
    llvm::outs() << "\n";
    return 0;
  }
  if (outputDir.empty())
    return fail("no output: give -o PATH");

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  peft::registerTargetDialects(registry);
  mlir::MLIRContext context(registry);
  auto diagnostics = peft::printDiagnosticsAsLines(context, "peftc");
  // Runs first: a diagnostic starts on a line of its own.
  mlir::ScopedDiagnosticHandler clearsProgress(&context, [](mlir::Diagnostic &) {
    progress.clear();
    return mlir::failure();
  });
  peft::registerOnnxWeightFormat();
  mlir::DefaultTimingManager timingManager;
  mlir::applyDefaultTimingManagerCLOptions(timingManager);
  if (timing)
    timingManager.setEnabled(true);
  mlir::TimingScope timing = timingManager.getRootScope();

  if (progress.enabled()) // Passes report the items they work through.
    peft::setProgressSink([](llvm::StringRef items, size_t done, size_t total) {
      progress.detail(items + " " + llvm::Twine(done) + " of " + llvm::Twine(total));
    });
  progress.stage("import " + llvm::Twine(modelPath));
  mlir::TimingScope importing = timing.nest("import");
  auto module = peft::importOnnxModel(&context, modelPath);
  if (!module)
    return fail(llvm::toString(module.takeError()));
  importing.stop();
  std::vector<peft::ManifestAdapter> unmerged;
  std::optional<peft::ManifestSlots> slots;
  if (mlir::failed(runAdapterPasses(**module, timing, unmerged, slots)))
    return 1; // The passes reported why.
  if (emit == "onnx" || emit == "mlir") {
    // Written to a temporary file, renamed on success: no partial output.
    llvm::Error error = emit == "onnx"
                            ? peft::writeFileAtomically(outputDir,
                                                        [&](llvm::raw_ostream &os) {
                                                          return peft::exportOnnx(**module, os);
                                                        })
                            : writeLoweredModule(**module, *target, timing);
    if (error)
      return fail(llvm::toString(std::move(error)));
    return 0;
  }

  auto staging = peft::createStagingDir(outputDir);
  if (!staging)
    return fail(llvm::toString(staging.takeError()));
  llvm::Error error = writeArtifact(**module, *staging, std::move(unmerged), std::move(slots),
                                    *target, timing);
  if (!error)
    error = peft::publishStagingDir(*staging, outputDir);
  if (error) {
    llvm::sys::fs::remove_directories(*staging);
    return fail(llvm::toString(std::move(error)));
  }
  return 0;
}
