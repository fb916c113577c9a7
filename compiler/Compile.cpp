//===- Compile.cpp - What peftc does, as one library call -------------------===//
//
// Imports the model, attaches the adapters, merges them (or keeps them
// unmerged with mode fuse; in slots each row of a batch picks from with mode
// multi), and writes an artifact directory: manifest.json, the target's
// library (model.so) and weights.safetensors; or, with emit onnx, the model as
// a standard ONNX file, the adapters left unmerged as standard ops; with emit
// mlir, what the target's library is compiled from.
//===----------------------------------------------------------------------===//
#include "compiler/Compile.h"

#include "frontends/onnx/OnnxExporter.h"
#include "frontends/onnx/OnnxImporter.h"
#include "lowering/Artifact.h"
#include "lowering/Passes.h"
#include "lowering/cpu/CpuBackend.h"
#include "lowering/cuda/CudaBackend.h"
#include "passes/AdapterPipeline.h"
#include "passes/Passes.h"
#include "support/Diagnostics.h"
#include "support/OutputFile.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include <map>
#include <mutex>
#include <set>
#include <tuple>

namespace peft {

CompileObserver::~CompileObserver() = default;

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
  llvm::SmallVector<WeightOp> weights;
};

static AdapterParts partsOf(AdapterOp op) {
  AdapterParts parts{op.getMethod().str(), op.getAdapterRank(), op.getAdapterScale(), {}};
  for (mlir::OpOperand *use : adapterTensorUses(op))
    parts.weights.push_back(use->get().getDefiningOp<WeightOp>());
  return parts;
}

/// Why peft-merge-adapters left `op` unmerged; "" when it did not run.
static std::string notMergedReason(mlir::Operation *op) {
  auto reason = op->getAttrOfType<mlir::StringAttr>(kNotMergedAttr);
  return reason ? reason.str() : std::string();
}

static std::vector<AdapterUse> collectAdapters(mlir::ModuleOp module) {
  std::vector<AdapterUse> uses;
  module.walk([&](AdapterOp op) {
    AdapterParts parts = partsOf(op);
    int64_t parameters = 0;
    for (WeightOp weight : parts.weights)
      parameters += weight.getType().getNumElements();
    uses.push_back({adaptedModulePath(op).str(), op.getAdapterName().str(), parts.method,
                    parts.rank, parameters, notMergedReason(op)});
  });
  return uses;
}

/// Prints each attached adapter with what became of it; `module` holds the
/// adapters left unmerged.
static std::string summaryOf(std::vector<AdapterUse> attached, mlir::ModuleOp module,
                              llvm::StringRef mode) {
  std::string text;
  llvm::raw_string_ostream os(text);
  std::map<std::tuple<std::string, std::string, std::string>, std::string> left;
  for (const AdapterUse &use : collectAdapters(module))
    left[{use.module, use.adapter, use.method}] =
        use.notMergedReason.empty() ? ("unmerged (--mode " + mode + ")").str()
                                    : "unmerged: " + use.notMergedReason;
  // --mode multi: each adapter in its slot of the layer's peft.multi_lora.
  int64_t slotLayers = 0, slotCount = 0, capacity = 0, filled = 0;
  // Layers whose slots hold each table beyond LoRA's factors.
  int64_t biasLayers = 0, doraLayers = 0, ia3Outputs = 0, ia3Inputs = 0;
  module.walk([&](MultiIa3Op scaling) { ++(scaling.scalesInput() ? ia3Inputs : ia3Outputs); });
  module.walk([&](MultiLoraOp batched) {
    ++slotLayers;
    biasLayers += bool(batched.getLoraBias());
    doraLayers += bool(batched.getDoraScales());
    slotCount = batched.getSlots();
    capacity = batched.getRankCapacity();
    filled = llvm::count_if(batched.getAdapters().getAsValueRange<mlir::StringAttr>(),
                            [](llvm::StringRef name) { return !name.empty(); });
  });
  // (Each slot's name on each layer: the adapters attached to it are looked up.)
  auto markSlots = [&](mlir::ArrayAttr names, AdaptableLayer layer, llvm::StringRef method) {
    std::string path = layer ? layer.getModulePath().str() : std::string();
    for (auto [slot, name] : llvm::enumerate(names.getAsValueRange<mlir::StringAttr>()))
      if (!name.empty())
        left[{path, name.str(), method.str()}] = "slot " + std::to_string(slot) + " (--mode multi)";
  };
  module.walk([&](MultiLoraOp op) {
    markSlots(op.getAdapters(), op.getLayer(), "LoRA");
    markSlots(op.getAdapters(), op.getLayer(), "DoRA");
  });
  module.walk([&](MultiIa3Op op) {
    markSlots(op.getAdapters(), op.getLayer(), "IA3");
  });
  llvm::sort(attached, [](const AdapterUse &l, const AdapterUse &r) {
    return std::tie(l.module, l.adapter) < std::tie(r.module, r.adapter);
  });
  os << llvm::formatv("{0,-48} {1,-10} {2,-10} {3,5} {4,11}  {5}\n", "module", "adapter",
                                "method", "rank", "parameters", "state");
  int64_t parameters = 0, merged = 0;
  std::set<std::string> modules;
  for (const AdapterUse &use : attached) {
    modules.insert(use.module);
    auto unmerged = left.find({use.module, use.adapter, use.method});
    parameters += use.parameters;
    merged += unmerged == left.end();
    os << llvm::formatv("{0,-48} {1,-10} {2,-10} {3,5} {4,11}  {5}\n", use.module,
                                  use.adapter, use.method,
                                  use.rank ? std::to_string(use.rank) : std::string("-"),
                                  use.parameters,
                                  unmerged == left.end() ? "merged" : unmerged->second);
  }
  os << llvm::formatv("{0} adapters on {1} modules, {2} adapter parameters; {3} merged, "
                                "{4} unmerged\n",
                                attached.size(), modules.size(), parameters, merged,
                                attached.size() - merged);
  if (slotLayers)
    os << llvm::formatv("{0} adapter slots of rank capacity {1} on {2} linear layers, "
                                  "{3} filled at compile time\n",
                                  slotCount, capacity, slotLayers, filled);
  if (slotLayers)
    os << llvm::formatv("slots for lora_bias on {0} of those layers, DoRA on {1}, IA3 "
                                  "on {2} outputs and {3} inputs\n",
                                  biasLayers, doraLayers, ia3Outputs, ia3Inputs);
  return text;
}

/// What a manifest says of an adapter op, if it can be swapped: not when a
/// weight is computed at compile time (a combined adapter).
static std::optional<ManifestAdapter> describeAdapter(AdapterOp op) {
  AdapterParts parts = partsOf(op);
  std::string adapter = op.getAdapterName().str();
  std::vector<std::string> tensors;
  for (WeightOp weight : parts.weights) {
    if (!weight.getFile())
      return std::nullopt;
    tensors.push_back(adapterWeightName(weight.getName().str(), adapter));
  }
  return ManifestAdapter{adapter, parts.method, adaptedModulePath(op).str(),
                               parts.scale, std::move(tensors)};
}

/// The adapters left unmerged whose weights come from adapter files: the
/// ones `peft-run --adapter` can swap.
static std::vector<ManifestAdapter> swappableAdapters(mlir::ModuleOp module) {
  std::vector<ManifestAdapter> adapters;
  module.walk([&](AdapterOp op) {
    if (std::optional<ManifestAdapter> adapter = describeAdapter(op))
      adapters.push_back(std::move(*adapter));
  });
  return adapters;
}

/// The adapter stage's options (passes/AdapterPipeline.h).
static void setAdapterOptions(AdapterPipelineOptions &stage,
                              const CompileOptions &options) {
  stage.adapters = options.adapters;
  stage.insert = options.insert;
  stage.seed = options.seed;
  stage.combine = options.combine;
  stage.combineRank = options.combineRank;
  stage.mode = options.mode;
  stage.slots = options.maxAdapters;
  stage.maxRank = options.maxRank;
  stage.slotModules = options.slotModules;
  stage.slotMethods = options.slotMethods;
}

static void buildAttachPipeline(mlir::OpPassManager &pm, const CompileOptions &options) {
  AdapterPipelineOptions stage;
  setAdapterOptions(stage, options);
  buildAttachStage(pm, stage);
}

static void buildMergePipeline(mlir::OpPassManager &pm, const CompileOptions &options) {
  AdapterPipelineOptions stage;
  setAdapterOptions(stage, options);
  buildApplyStage(pm, stage);
}

/// Compiling, the weights become the entry's arguments.
static void buildExternalizePipeline(mlir::OpPassManager &pm) {
  pm.addPass(createExternalizeWeights());
}

/// Every pass peftc runs on the imported module, in order, as one pipeline.
static void buildCompilePipeline(mlir::OpPassManager &pm, const CompileOptions &options,
                                 const Target &target) {
  buildAttachPipeline(pm, options);
  buildMergePipeline(pm, options);
  if (options.emit != "onnx") {
    buildExternalizePipeline(pm);
    buildLoweringPipeline(pm, target);
  }
}

/// Runs `build`'s passes on `module`, timed under `name`.
static mlir::LogicalResult runStage(mlir::ModuleOp module, CompileObserver &observer,
                                    mlir::TimingScope &timing, llvm::StringRef name,
                                    llvm::function_ref<void(mlir::OpPassManager &)> build) {
  mlir::PassManager pm(module.getContext());
  build(pm);
  if (auto reporter = observer.passes(name, pm.size()))
    pm.addInstrumentation(std::move(reporter));
  mlir::TimingScope scope = timing.nest(name);
  pm.enableTiming(scope);
  return pm.run(module);
}

/// --mode multi: the slots and, on each layer, the entry's weights holding
/// them (after peft-externalize-weights), for the runtime to load adapters
/// into free slots.
static std::optional<ManifestSlots> describeSlots(mlir::ModuleOp module) {
  std::optional<ManifestSlots> slots;
  auto entry = module.lookupSymbol<mlir::func::FuncOp>("forward");
  auto weightName = [&](mlir::Value value) -> std::string {
    auto argument = llvm::dyn_cast_or_null<mlir::BlockArgument>(value);
    auto name = argument && entry ? entry.getArgAttrOfType<mlir::StringAttr>(
                                        argument.getArgNumber(), kWeightNameAttr)
                                  : mlir::StringAttr();
    return name ? name.str() : std::string();
  };
  module.walk([&](MultiLoraOp batched) {
    if (!slots) {
      slots.emplace();
      slots->count = batched.getSlots();
      slots->capacity = batched.getRankCapacity();
      for (llvm::StringRef name : batched.getAdapters().getAsValueRange<mlir::StringAttr>())
        slots->filled.push_back(name.str());
    }
    AdaptableLayer layer = batched.getLayer();
    ManifestSlots::Layer &entry = slots->layers.emplace_back();
    entry.module = layer ? layer.getModulePath().str() : std::string();
    entry.loraA = weightName(batched.getLoraA());
    entry.loraB = weightName(batched.getLoraB());
    entry.scales = weightName(batched.getScales());
    if (batched.getLoraBias())
      entry.loraBias = weightName(batched.getLoraBias());
    if (batched.getRanks())
      entry.ranks = weightName(batched.getRanks());
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
  module.walk([&](MultiIa3Op scaling) {
    AdaptableLayer layer = scaling.getLayer();
    if (!slots || !layer)
      return;
    for (ManifestSlots::Layer &entry : slots->layers)
      if (entry.module == layer.getModulePath())
        (scaling.scalesInput() ? entry.ia3In : entry.ia3Out) = weightName(scaling.getScales());
  });
  return slots;
}

static mlir::LogicalResult runAdapterPasses(mlir::ModuleOp module, const CompileOptions &options,
                                            CompileObserver &observer, mlir::TimingScope &timing,
                                            std::vector<ManifestAdapter> &unmerged,
                                            std::optional<ManifestSlots> &slots) {
  if (mlir::failed(runStage(module, observer, timing, "attach adapters",
                            [&](mlir::OpPassManager &pm) { buildAttachPipeline(pm, options); })))
    return mlir::failure();
  std::vector<AdapterUse> attached = collectAdapters(module);
  if (mlir::failed(runStage(module, observer, timing, "merge adapters",
                            [&](mlir::OpPassManager &pm) { buildMergePipeline(pm, options); })))
    return mlir::failure();
  if (options.summary)
    observer.summary(summaryOf(std::move(attached), module, options.mode));
  unmerged = swappableAdapters(module);
  if (options.emit == "onnx")
    return mlir::success();
  if (mlir::failed(runStage(module, observer, timing, "externalize weights",
                            buildExternalizePipeline)))
    return mlir::failure();
  slots = describeSlots(module);
  return mlir::success();
}

/// Lowers `module` to what `target` compiles its library from.
static mlir::LogicalResult lowerForTarget(mlir::ModuleOp module, const Target &target,
                                          CompileObserver &observer, mlir::TimingScope &timing) {
  return runStage(module, observer, timing, "lowering to tensors",
                  [&](mlir::OpPassManager &pm) {
                    buildTensorPipeline(pm);
                    target.buildTensorPipeline(pm);
                  });
}

/// Writes the whole artifact into `stagingDir`.
static llvm::Error writeArtifact(mlir::ModuleOp module, llvm::StringRef stagingDir,
                                 std::vector<ManifestAdapter> adapters,
                                 std::optional<ManifestSlots> slots,
                                 const Target &target, CompileObserver &observer,
                                 mlir::TimingScope &timing) {
  if (mlir::failed(lowerForTarget(module, target, observer, timing)))
    return makeError("lowering to linalg failed (see the diagnostics above)");
  // The entry's signature is final: the manifest and the weights file.
  auto entry = module.lookupSymbol<mlir::func::FuncOp>("forward");
  auto manifest = describeEntry(entry);
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
  observer.stage("weights file");
  mlir::TimingScope weights = timing.nest("weights file");
  if (llvm::Error error = writeEntryWeights(entry, path))
    return error;
  weights.stop();
  embedSignature(module, *manifest);
  if (mlir::failed(runStage(module, observer, timing, "code generation pipeline",
                            [&](mlir::OpPassManager &pm) { target.buildCodegenPipeline(pm); })))
    return makeError("lowering for target '" + target.name() +
                           "' failed (see the diagnostics above)");
  path = stagingDir;
  llvm::sys::path::append(path, manifest->library);
  observer.stage("compiling " + llvm::Twine(manifest->library));
  if (llvm::Error error = target.writeLibrary(module, path, timing))
    return error;
  path = stagingDir;
  llvm::sys::path::append(path, "manifest.json");
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    os << manifest->toJson();
    return llvm::Error::success();
  });
}

/// --emit mlir: the module the target's library would be compiled from.
static llvm::Error writeLoweredModule(mlir::ModuleOp module, const Target &target,
                                      llvm::StringRef output, CompileObserver &observer,
                                      mlir::TimingScope &timing) {
  if (mlir::failed(runStage(module, observer, timing, "lowering",
                            [&](mlir::OpPassManager &pm) {
                              buildTensorPipeline(pm);
                              target.buildTensorPipeline(pm);
                              target.buildCodegenPipeline(pm);
                            })))
    return makeError("lowering failed (see the diagnostics above)");
  return writeFileAtomically(output, [&](llvm::raw_ostream &os) {
    module->print(os);
    os << "\n"; // As peft-opt ends its output.
    return llvm::Error::success();
  });
}


void registerCompiler() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerCpuTarget();
    registerCudaTarget();
    registerOnnxWeightFormat();
  });
}

llvm::Error checkCompileOptions(CompileOptions &options) {
  registerCompiler();
  // Unsaid: merge, but --insert's fresh adapters stay unmerged.
  if (options.mode.empty())
    options.mode = options.insert.empty() ? "merge" : "fuse";
  if (!options.insert.empty() && options.mode == "merge")
    return makeError("--insert adds fresh adapters to train; they stay unmerged (--mode fuse)");
  const std::string &mode = options.mode;
  if (mode != "merge" && mode != "fuse" && mode != "multi")
    return makeError("--mode must be 'merge', 'fuse' or 'multi', got '" + mode + "'");
  if (mode != "multi" && (options.maxAdapters || options.maxRank ||
                          !options.slotModules.empty() || !options.slotMethods.empty()))
    return makeError("--max-adapters, --max-rank, --slot-modules and --slot-methods shape the "
                     "slots of --mode multi");
  for (const std::string &method : options.slotMethods)
    if (!isSlotMethod(method))
      return makeError("--slot-methods takes " + llvm::join(llvm::ArrayRef(kSlotMethods), ", ") +
                       ", not '" + method + "'");
  if (options.maxAdapters < 0 || options.maxRank < 0)
    return makeError("--max-adapters and --max-rank must not be negative");
  if (mode == "multi" &&
      (!options.combine.empty() || !options.insert.empty() || options.emit == "onnx"))
    return makeError("--mode multi serves the adapters named by --adapter as they are: no "
                     "--combine, --insert or --emit onnx");
  if (mode == "multi" && options.adapters.empty() &&
      (options.slotModules.empty() || options.maxAdapters == 0 || options.maxRank == 0))
    return makeError("--mode multi needs adapters to put in slots (--adapter DIR=NAME), or, for "
                     "slots to load adapters into at run time, --slot-modules, --max-adapters "
                     "and --max-rank");
  if (!options.combine.empty() && options.combine != "cat" && options.combine != "svd")
    return makeError("--combine must be 'cat' or 'svd', got '" + options.combine + "'");
  if (options.combine == "svd" && options.combineRank < 1)
    return makeError("--combine svd needs --combine-rank N (N >= 1)");
  Target *target = lookupTarget(options.target);
  if (!target)
    return makeError("--target must be one of: " + llvm::join(targetNames(), ", ") + "; got '" +
                     options.target + "'");
  if (llvm::Error error = target->configure(options.targetOptions))
    return error;
  if (options.emit != "artifact" && options.emit != "onnx" && options.emit != "mlir")
    return makeError("--emit must be 'artifact', 'onnx' or 'mlir', got '" + options.emit + "'");
  return llvm::Error::success();
}

llvm::Expected<std::string> compilePipeline(CompileOptions options) {
  if (llvm::Error error = checkCompileOptions(options))
    return std::move(error);
  mlir::OpPassManager pm("builtin.module");
  buildCompilePipeline(pm, options, *lookupTarget(options.target));
  std::string text;
  llvm::raw_string_ostream os(text);
  pm.printAsTextualPipeline(os);
  return text;
}

std::string diagnosticLine(mlir::Diagnostic &diagnostic) {
  std::string where;
  if (auto file = llvm::dyn_cast<mlir::FileLineColLoc>(diagnostic.getLocation()))
    where = (file.getFilename().getValue() + ":" + llvm::Twine(file.getLine()) + ":" +
             llvm::Twine(file.getColumn()) + ": ")
                .str();
  return oneLineMessage(where + diagnostic.str());
}

llvm::Error compileModel(CompileOptions options, CompileObserver &observer,
                         mlir::TimingScope &timing) {
  if (llvm::Error error = checkCompileOptions(options))
    return error;
  if (options.output.empty())
    return makeError("no output: give -o PATH");
  const Target &target = *lookupTarget(options.target);

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registerTargetDialects(registry);
  mlir::MLIRContext context(registry);
  // The first error a pass emits is the compile's error; the observer sees
  // every diagnostic as it comes.
  std::string firstError;
  mlir::ScopedDiagnosticHandler diagnostics(&context, [&](mlir::Diagnostic &diagnostic) {
    if (diagnostic.getSeverity() == mlir::DiagnosticSeverity::Error && firstError.empty())
      firstError = diagnosticLine(diagnostic);
    observer.diagnostic(diagnostic);
    return mlir::success();
  });
  // A failure the diagnostics explain is reported as their first error.
  auto explained = [&](llvm::Error error) -> llvm::Error {
    if (!error || firstError.empty())
      return error;
    llvm::consumeError(std::move(error));
    return makeError(firstError);
  };

  observer.stage("import " + llvm::Twine(options.model));
  mlir::TimingScope importing = timing.nest("import");
  auto module = importOnnxModel(&context, options.model);
  if (!module)
    return module.takeError();
  importing.stop();
  std::vector<ManifestAdapter> unmerged;
  std::optional<ManifestSlots> slots;
  if (mlir::failed(runAdapterPasses(**module, options, observer, timing, unmerged, slots)))
    return explained(makeError("the adapter passes failed"));
  if (options.emit == "onnx")
    // Written to a temporary file, renamed on success: no partial output.
    return writeFileAtomically(options.output, [&](llvm::raw_ostream &os) {
      return exportOnnx(**module, os);
    });
  if (options.emit == "mlir")
    return explained(writeLoweredModule(**module, target, options.output, observer, timing));

  auto staging = createStagingDir(options.output);
  if (!staging)
    return staging.takeError();
  llvm::Error error = writeArtifact(**module, *staging, std::move(unmerged), std::move(slots),
                                    target, observer, timing);
  if (!error)
    error = publishStagingDir(*staging, options.output);
  if (!error)
    return llvm::Error::success();
  llvm::sys::fs::remove_directories(*staging);
  error = explained(std::move(error));
  // A file's error names it in the artifact, not in the staging directory,
  // which is gone ("out/weights.safetensors: cannot write: No space left").
  std::string message = llvm::toString(std::move(error));
  for (size_t at = message.find(*staging); at != std::string::npos;
       at = message.find(*staging, at + options.output.size()))
    message.replace(at, staging->size(), options.output);
  return makeError(message);
}

llvm::Error compileModel(CompileOptions options) {
  CompileObserver quiet;
  mlir::DefaultTimingManager timingManager;
  mlir::TimingScope timing = timingManager.getRootScope();
  return compileModel(std::move(options), quiet, timing);
}

} // namespace peft
