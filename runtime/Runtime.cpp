//===- Runtime.cpp - Load an artifact and run its entry ---------------------===//
//
// The target-independent core: the manifest, inputs, weights and outputs.
// The target's Executable (runtime/cpu for model.so) runs the entry, called as
// lowering/EmitPackedEntry.cpp lays out: args[0] points to the result
// descriptors, then one pointer per input and per weight, each to an MLIR
// memref descriptor {allocated, aligned, offset, sizes[rank], strides[rank]}.
//
// A loaded model (LoadedModel) is shared by its sessions and changes only by
// publishing a new WeightSet: a run reads the set that was current when it
// started, so adapters load and unload while other threads run. A load or
// unload on the host writes its slot's part of the slot tables in place, once
// no run reads that slot (runs mark the slots they read).
//
//===----------------------------------------------------------------------===//
#include "runtime/peft_runtime.h"

#include "frontends/adapters/HfPeftAdapter.h"

#include "runtime/Executable.h"
#include "runtime/Manifest.h"
#include "runtime/ThreadPool.h"
#include "support/LowRank.h"
#include "support/Safetensors.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

thread_local std::string lastError;

int failWith(const std::string &message) {
  lastError = message;
  return 1;
}

const char *const kDTypeNames[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I8",
                                   "U8",  "BOOL", "I16",  "U16", "U32", "U64"};

bool dtypeFromName(const std::string &name, PeftDType &dtype) {
  for (int i = 0; i <= PEFT_U64; ++i)
    if (name == kDTypeNames[i])
      return dtype = static_cast<PeftDType>(i), true;
  return false;
}

/// An MLIR memref descriptor of a given rank, laid out as the ABI wants.
struct Descriptor {
  std::vector<int64_t> words;

  explicit Descriptor(size_t rank = 0) : words(3 + 2 * rank) {}
  static size_t wordsFor(size_t rank) { return 3 + 2 * rank; }

  void set(const void *data, const int64_t *shape, size_t rank) {
    words.assign(wordsFor(rank), 0);
    words[0] = words[1] = reinterpret_cast<int64_t>(data);
    int64_t stride = 1;
    for (size_t d = rank; d-- > 0;) {
      words[3 + d] = shape[d];
      words[3 + rank + d] = stride;
      stride *= shape[d];
    }
  }
};

/// One bound input: its manifest entry and descriptor.
struct Binding {
  peft::ManifestTensor info;
  PeftDType dtype = PEFT_F32;
  Descriptor descriptor;
  bool bound = false;
  bool onDevice = false; ///< Bound to device memory (peft_model_set_input_device).
};

struct Output {
  peft::ManifestTensor info;
  PeftDType dtype = PEFT_F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  PeftTensor view{};
};

/// The weights runs read, one descriptor per manifest weight, and what keeps
/// their data alive: the artifact's file, a bound file, a copy. Never changed
/// once published: a change publishes a new set, and a run in progress keeps
/// the one it started with.
struct WeightSet {
  std::vector<Descriptor> descriptors;
  std::vector<std::shared_ptr<const void>> owners; ///< What each descriptor points into.
  std::vector<uint64_t> versions; ///< Each weight's (RunPlacement::weightVersions).
  /// --mode multi: the adapter in each slot ("" free).
  std::vector<std::string> slotAdapters;

  /// The weight of `index` pointing at `data`, which `owner` keeps alive.
  void set(size_t index, const peft::ManifestTensor &info, const void *data,
           std::shared_ptr<const void> owner) {
    static std::atomic<uint64_t> lastVersion{0};
    descriptors[index].set(data, info.shape.data(), info.shape.size());
    owners[index] = std::move(owner);
    versions[index] = ++lastVersion;
  }
};

} // namespace

namespace peft {

/// An artifact once loaded, shared by its model handle and every session:
/// the manifest and the code never change, the weights by publishing.
struct LoadedModel {
  Manifest manifest;
  std::vector<PeftDType> inputDTypes, outputDTypes;
  std::unique_ptr<Executable> executable;

  ~LoadedModel() {
    weights.reset(); // Before the code that may own their device copies.
  }

  bool hasDevice() const { return executable->memory() != Memory::Host; }

  /// The weights a run starting now reads.
  std::shared_ptr<const WeightSet> currentWeights() const {
    std::lock_guard<std::mutex> lock(publishing);
    return weights;
  }

  /// Runs `change` on a copy of the current weights and publishes it when
  /// it returns 0. Changes happen one at a time; runs go on meanwhile.
  /// A change that writes only adapter slot `slot`'s part of the slot
  /// tables says so: on the host, it then writes the tables this model owns
  /// in place (rewritableWeight), once no run reads that slot, and runs
  /// that would read it wait until it is published.
  int changeWeights(const std::function<int(WeightSet &)> &change, int64_t slot = -1) {
    std::lock_guard<std::mutex> lock(changing);
    copiedInChange.clear();
    writingSlot = slot >= 0 && executable->memory() == Memory::Host ? slot : -1;
    SlotWrite write(*this, writingSlot);
    WeightSet next = *currentWeights();
    if (int failed = change(next))
      return failed;
    auto published = std::make_shared<const WeightSet>(std::move(next));
    std::lock_guard<std::mutex> publish(publishing);
    weights = std::move(published);
    return 0;
  }

  /// Marks the slots a run reads (`slots`, distinct) until endReading:
  /// waits while a change writes one of them in place.
  void beginReading(const std::vector<int64_t> &slots) {
    if (slots.empty())
      return;
    std::unique_lock<std::mutex> lock(slotUse);
    slotUseChanged.wait(lock, [&] {
      return std::none_of(slots.begin(), slots.end(), [&](int64_t s) { return slotWritten[s]; });
    });
    for (int64_t s : slots)
      ++slotReaders[s];
  }

  void endReading(const std::vector<int64_t> &slots) {
    if (slots.empty())
      return;
    std::lock_guard<std::mutex> lock(slotUse);
    for (int64_t s : slots)
      --slotReaders[s];
    slotUseChanged.notify_all();
  }

  int load(const std::string &directory);
  int bindWeights(const std::string &directory);
  /// Binds the tensors of the file at `path`, each over the weight named
  /// `weightName(its name)`.
  int bindFile(const std::string &path,
               const std::function<std::string(const std::string &)> &weightName);
  int loadAdapter(int64_t slot, const std::string &directory);
  int unloadAdapter(int64_t slot);

private:
  /// Whether `slot` is one of the artifact's adapter slots; fails otherwise.
  int checkSlot(int64_t slot) const;
  /// Empties adapter slot `slot` in `set`: zeros in fresh copies of every
  /// layer's slot weights, which a load then fills.
  int clearSlot(WeightSet &set, int64_t slot);
  /// Weight `name`'s values in a fresh copy of what `set` binds, bound in its
  /// place (a fresh copy, so that a device notices the change), made once
  /// per change; null when it is not an F32 weight of the artifact's own
  /// layout.
  float *rewritableWeight(WeightSet &set, const std::string &name);
  /// Whether `count` values of weight `name` from `offset` are all `value`
  /// in `set` (false where it cannot tell: not F32 in its own layout).
  bool holds(const WeightSet &set, const std::string &name, int64_t offset, int64_t count,
             float value) const;
  /// The weights the current change has copied (rewritableWeight; changes
  /// run one at a time, under `changing`).
  std::set<int64_t> copiedInChange;
  /// The slot the current change writes in place, or -1 (it copies).
  int64_t writingSlot = -1;
  /// The artifact's weights file; with adapter slots, mapped private, so
  /// that a change of one slot writes the tables there in place (the
  /// system copies the pages written).
  std::shared_ptr<const peft::SafetensorsFile> artifactWeights;
  /// The slot tables this model copied and owns (weight index to its copy,
  /// made where a table was bound elsewhere): written in place likewise
  /// while they are what the current weights bind.
  std::map<int64_t, std::shared_ptr<std::vector<float>>> ownedTables;

  /// The runs reading each slot, and whether a change writes it in place
  /// (beginReading, SlotWrite).
  std::mutex slotUse;
  std::condition_variable slotUseChanged;
  std::vector<int64_t> slotReaders;
  std::vector<bool> slotWritten;

  /// For its lifetime, slot `slot` (if >= 0) is written: runs that read it
  /// wait, and it begins once the runs reading it have ended.
  struct SlotWrite {
    LoadedModel &model;
    int64_t slot;
    SlotWrite(LoadedModel &model, int64_t slot) : model(model), slot(slot) {
      if (slot < 0)
        return;
      std::unique_lock<std::mutex> lock(model.slotUse);
      model.slotWritten[slot] = true;
      model.slotUseChanged.wait(lock, [&] { return model.slotReaders[slot] == 0; });
    }
    ~SlotWrite() {
      if (slot < 0)
        return;
      std::lock_guard<std::mutex> lock(model.slotUse);
      model.slotWritten[slot] = false;
      model.slotUseChanged.notify_all();
    }
  };
  /// The index of weight `name`, or -1.
  int64_t weightIndex(const std::string &name) const;
  /// `layer`'s base weight as `set` binds it, as a row-major [out, in]
  /// matrix, whether stored [out, in], [in, out] or packed in panels.
  std::vector<float> denseWeight(const WeightSet &set, const peft::ManifestSlots::Layer &layer,
                                 int64_t in, int64_t out) const;

  std::mutex changing;
  mutable std::mutex publishing;
  std::shared_ptr<const WeightSet> weights;
};

} // namespace peft

/// A request's state: the inputs bound, the outputs of the last run, and the
/// target's context (a CUDA stream). Sessions of one model run at once on
/// different threads; one session is for one thread at a time.
struct PeftSession {
  std::shared_ptr<peft::LoadedModel> model;
  std::unique_ptr<peft::ExecutionContext> context;
  std::vector<Binding> inputs;
  std::vector<Output> outputs;
  /// Buffers the model allocated that outputs of the last run point into,
  /// and whether each is in device memory.
  std::vector<std::pair<void *, bool>> adoptedBuffers;
  /// Outputs left in device memory (peft_model_set_output_location).
  bool outputsOnDevice = false;

  ~PeftSession() { freeAdoptedBuffers(); }

  void freeAdoptedBuffers() {
    for (auto [buffer, onDevice] : adoptedBuffers)
      context->freeBuffer(buffer, onDevice);
    adoptedBuffers.clear();
  }
  int setInput(const char *name, PeftDType dtype, int64_t rank, const int64_t *shape,
               const void *data, bool onDevice);
  int checkNamedDimensions() const;
  /// The adapter slots the bound adapter_index selects (-1 reads slot 0,
  /// whose values the code discards), distinct; none on a device.
  std::vector<int64_t> slotsThisRunReads() const;
  int run();
  int collectOutputs(const std::vector<int64_t> &results, const WeightSet &weights);
};

/// The handle peft_model_load returns: the loaded model and a session of its
/// own, which the peft_model_* run calls use.
struct PeftModel {
  std::shared_ptr<peft::LoadedModel> loaded;
  std::unique_ptr<PeftSession> own;
};

namespace {

/// A session of `model`; null with the error set.
std::unique_ptr<PeftSession> newSession(const std::shared_ptr<peft::LoadedModel> &model) {
  auto session = std::make_unique<PeftSession>();
  std::string error;
  session->context = model->executable->newContext(error);
  if (!session->context) {
    failWith(error);
    return nullptr;
  }
  session->model = model;
  const peft::Manifest &manifest = model->manifest;
  for (size_t i = 0; i < manifest.inputs.size(); ++i) {
    Binding &input = session->inputs.emplace_back();
    input.info = manifest.inputs[i];
    input.dtype = model->inputDTypes[i];
  }
  for (size_t i = 0; i < manifest.outputs.size(); ++i)
    session->outputs.push_back(Output{manifest.outputs[i], model->outputDTypes[i]});
  return session;
}

} // namespace

using peft::LoadedModel;

static int readFile(const std::string &path, std::string &text) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream)
    return failWith(path + ": cannot open");
  std::stringstream buffer;
  buffer << stream.rdbuf();
  text = buffer.str();
  return 0;
}

int LoadedModel::load(const std::string &directory) {
  std::string manifestPath = directory + "/manifest.json", text, error;
  if (readFile(manifestPath, text))
    return 1;
  if (!manifest.fromJson(text, error))
    return failWith(manifestPath + ": " + error);
  for (const auto &info : manifest.inputs) {
    PeftDType dtype;
    if (!dtypeFromName(info.dtype, dtype))
      return failWith(manifestPath + ": input '" + info.name + "' has unknown dtype " + info.dtype);
    inputDTypes.push_back(dtype);
  }
  for (const auto &info : manifest.outputs) {
    PeftDType dtype;
    if (!dtypeFromName(info.dtype, dtype))
      return failWith(manifestPath + ": output '" + info.name + "' has unknown dtype " + info.dtype);
    outputDTypes.push_back(dtype);
  }
  executable = peft::loadExecutable(manifest, directory, error);
  if (!executable)
    return failWith(error);
  if (manifest.slots) {
    slotReaders.assign(manifest.slots->count, 0);
    slotWritten.assign(manifest.slots->count, false);
  }
  return bindWeights(directory);
}

int LoadedModel::bindWeights(const std::string &directory) {
  std::string path = directory + "/" + manifest.weightsFile;
  auto opened = peft::SafetensorsFile::open(path, /*writable=*/manifest.slots.has_value());
  if (!opened)
    return failWith(llvm::toString(opened.takeError()));
  std::shared_ptr<const peft::SafetensorsFile> file = std::move(*opened);
  if (manifest.slots)
    artifactWeights = file;
  WeightSet set;
  set.descriptors.resize(manifest.weights.size());
  set.owners.resize(manifest.weights.size());
  set.versions.resize(manifest.weights.size());
  for (size_t i = 0; i < manifest.weights.size(); ++i) {
    const peft::ManifestTensor &info = manifest.weights[i];
    const peft::TensorView *view = file->find(info.name);
    if (!view)
      return failWith(path + ": missing weight '" + info.name + "'");
    if (view->shape != info.shape || peft::dtypeName(view->dtype) != info.dtype)
      return failWith(path + ": weight '" + info.name + "' is " +
                      peft::dtypeName(view->dtype).str() + " " + peft::formatShape(view->shape) +
                      ", the manifest expects " + info.dtype + " " + peft::formatShape(info.shape));
    set.set(i, info, view->data, file);
  }
  if (manifest.slots)
    set.slotAdapters = manifest.slots->filled;
  weights = std::make_shared<const WeightSet>(std::move(set));
  return 0;
}

/// Whether `view` widens exactly to an F32 weight: an F16 or BF16 adapter
/// swapped into an artifact compiled with F32 tensors.
static bool widensToF32(const peft::TensorView &view, const peft::ManifestTensor &info) {
  return info.dtype == "F32" &&
         (view.dtype == peft::DType::F16 || view.dtype == peft::DType::BF16);
}

int LoadedModel::bindFile(const std::string &path,
                          const std::function<std::string(const std::string &)> &weightName) {
  auto opened = peft::SafetensorsFile::open(path);
  if (!opened)
    return failWith(llvm::toString(opened.takeError()));
  std::shared_ptr<const peft::SafetensorsFile> file = std::move(*opened);
  // Tensor name -> the weights it binds over: the weight of that name, and
  // any weight packed from it.
  std::map<std::string, std::vector<size_t>> targets;
  for (const auto &[name, view] : file->tensors()) {
    std::string target = weightName(name);
    for (size_t i = 0; i < manifest.weights.size(); ++i) {
      const peft::ManifestTensor &info = manifest.weights[i];
      if (info.sourceName() != target)
        continue;
      const std::vector<int64_t> &shape = info.panels ? info.panels->sourceShape : info.shape;
      bool typeFits = peft::dtypeName(view.dtype) == info.dtype || widensToF32(view, info);
      if (view.shape != shape || !typeFits)
        return failWith(path + ": tensor '" + name + "' is " + peft::dtypeName(view.dtype).str() +
                        " " + peft::formatShape(view.shape) + ", the model's weight is " +
                        info.dtype + " " + peft::formatShape(shape));
      targets[name].push_back(i);
    }
    if (targets[name].empty())
      return failWith(path + ": tensor '" + name + "' is not a weight of this model" +
                      (target == name ? std::string() : " (as '" + target + "')"));
  }
  return changeWeights([&](WeightSet &set) {
    for (const auto &[name, view] : file->tensors()) {
      for (size_t i : targets[name]) {
        const peft::ManifestTensor &info = manifest.weights[i];
        if (const auto &panels = info.panels) {
          auto packed = std::make_shared<std::vector<float>>(peft::numElements(info.shape));
          peft::packPanels(view.toFloat32().data(), *panels, packed->data());
          set.set(i, info, packed->data(), packed);
        } else if (widensToF32(view, info)) {
          auto widened = std::make_shared<std::vector<float>>(view.toFloat32());
          set.set(i, info, widened->data(), widened);
        } else {
          set.set(i, info, view.data, file);
        }
        ownedTables.erase(static_cast<int64_t>(i)); // A copy of ours no longer bound.
      }
    }
    return 0;
  });
}

int64_t LoadedModel::weightIndex(const std::string &name) const {
  for (size_t i = 0; i < manifest.weights.size(); ++i)
    if (manifest.weights[i].name == name)
      return static_cast<int64_t>(i);
  return -1;
}

float *LoadedModel::rewritableWeight(WeightSet &set, const std::string &name) {
  int64_t index = weightIndex(name);
  if (index < 0)
    return nullptr;
  const peft::ManifestTensor &info = manifest.weights[index];
  if (info.dtype != "F32" || info.panels)
    return nullptr;
  const float *current = reinterpret_cast<const float *>(set.descriptors[index].words[1]);
  if (!copiedInChange.insert(index).second)
    return const_cast<float *>(current); // This change's own copy.
  if (writingSlot >= 0) {
    // Written in place (no run reads the slot): the artifact's own file,
    // mapped private, or a copy of ours.
    size_t bytes = peft::numElements(info.shape) * sizeof(float);
    if (void *mapped = artifactWeights ? artifactWeights->writableBytes(current, bytes) : nullptr)
      return static_cast<float *>(mapped);
    auto owned = ownedTables.find(index);
    if (owned != ownedTables.end() && owned->second->data() == current)
      return owned->second->data();
  }
  auto copy = std::make_shared<std::vector<float>>(current, current + peft::numElements(info.shape));
  float *data = copy->data();
  if (writingSlot >= 0)
    ownedTables[index] = copy;
  set.set(index, info, data, std::move(copy));
  return data;
}

bool LoadedModel::holds(const WeightSet &set, const std::string &name, int64_t offset,
                        int64_t count, float value) const {
  int64_t index = weightIndex(name);
  if (index < 0 || manifest.weights[index].dtype != "F32" || manifest.weights[index].panels)
    return false;
  const float *data = reinterpret_cast<const float *>(set.descriptors[index].words[1]) + offset;
  return std::all_of(data, data + count, [&](float x) { return x == value; });
}

std::vector<float> LoadedModel::denseWeight(const WeightSet &set,
                                            const peft::ManifestSlots::Layer &layer, int64_t in,
                                            int64_t out) const {
  std::vector<float> dense(out * in);
  for (size_t w = 0; w < manifest.weights.size(); ++w) {
    const peft::ManifestTensor &info = manifest.weights[w];
    if (info.sourceName() != layer.weight)
      continue; // (The manifest checked that one is there, of F32.)
    const float *data = reinterpret_cast<const float *>(set.descriptors[w].words[1]);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        int64_t at = layer.weightInOut ? i * out + o : o * in + i;
        if (const auto &panels = info.panels) // packed[p][k][j] = W[p·tile + j][k]
          at = ((o / panels->tile) * in + i) * panels->tile + o % panels->tile;
        dense[o * in + i] = data[at];
      }
    break;
  }
  return dense;
}

int LoadedModel::checkSlot(int64_t slot) const {
  if (!manifest.slots)
    return failWith("the artifact has no adapter slots (compile it with --mode multi)");
  int64_t count = manifest.slots->count;
  if (slot < 0 || slot >= count)
    return failWith("adapter slot " + std::to_string(slot) + " does not exist: the artifact has " +
                    std::to_string(count) + " (0 to " + std::to_string(count - 1) + ")");
  return 0;
}

int LoadedModel::clearSlot(WeightSet &set, int64_t slot) {
  const peft::ManifestSlots &slots = *manifest.slots;
  // Every table rewritable before any is written (a change may write in
  // place, and must not stop half done).
  for (const peft::ManifestSlots::Layer &layer : slots.layers)
    for (const std::string *name : {&layer.loraA, &layer.loraB, &layer.scales, &layer.ranks,
                                    &layer.loraBias, &layer.ia3In, &layer.ia3Out,
                                    &layer.doraScales}) {
      int64_t index = name->empty() ? 0 : weightIndex(*name);
      if (index < 0)
        return failWith("the artifact's slot weights of module '" + layer.module +
                        "' are missing");
      if (!name->empty() &&
          (manifest.weights[index].dtype != "F32" || manifest.weights[index].panels))
        return failWith("the artifact's slot weights of module '" + layer.module +
                        "' are not F32 weights");
    }
  // Each table's part for the slot set to `value`, unless it holds that
  // already (a free slot, a layer the slot's adapter left alone), so that
  // loading into a free slot writes only the tables the adapter does.
  auto clear = [&](const std::string &name, int64_t offset, int64_t count, float value) {
    if (!name.empty() && !holds(set, name, offset, count, value))
      std::fill_n(rewritableWeight(set, name) + offset, count, value);
  };
  for (const peft::ManifestSlots::Layer &layer : slots.layers) {
    // Aᵀ [slots, in, capacity], Bᵀ [slots, capacity, out].
    int64_t in = manifest.weights[weightIndex(layer.loraA)].shape[1];
    int64_t out = manifest.weights[weightIndex(layer.loraB)].shape[2];
    int64_t capacity = slots.capacity;
    clear(layer.loraA, slot * in * capacity, in * capacity, 0.0f);
    clear(layer.loraB, slot * capacity * out, capacity * out, 0.0f);
    clear(layer.scales, slot, 1, 0.0f);
    clear(layer.ranks, slot, 1, 0.0f);
    clear(layer.loraBias, slot * out, out, 0.0f);
    // IA3 vectors and DoRA factors of ones: the slot scales nothing.
    clear(layer.ia3In, slot * in, in, 1.0f);
    clear(layer.ia3Out, slot * out, out, 1.0f);
    clear(layer.doraScales, slot * out, out, 1.0f);
  }
  set.slotAdapters[slot].clear();
  return 0;
}

int LoadedModel::unloadAdapter(int64_t slot) {
  if (checkSlot(slot))
    return 1;
  return changeWeights([&](WeightSet &set) { return clearSlot(set, slot); }, slot);
}

int LoadedModel::loadAdapter(int64_t slot, const std::string &directory) {
  if (checkSlot(slot))
    return 1;
  const peft::ManifestSlots &slots = *manifest.slots;
  auto adapter = peft::readHfPeftAdapter(directory, "default");
  if (!adapter)
    return failWith(llvm::toString(adapter.takeError()));
  const peft::LoraConfig &config = adapter->config;
  if ((config.peftType != "LORA" && config.peftType != "IA3") ||
      !adapter->replacedParameters.empty())
    return failWith(directory + ": a " + config.peftType + " adapter" +
                    (adapter->replacedParameters.empty() ? "" : " that saves whole parameters") +
                    " cannot fill a slot (LoRA, DoRA and IA3 adapters do)");
  auto layerOf = [&](const std::string &module) {
    return std::find_if(slots.layers.begin(), slots.layers.end(),
                        [&](const auto &l) { return l.module == module; });
  };
  // IA3: each module's vector, on the layer's input or output slots.
  std::map<std::string, const peft::Ia3Module *> ia3ByModule;
  for (const peft::Ia3Module &module : adapter->ia3Modules) {
    auto layer = layerOf(module.modulePath);
    std::string where = directory + ": module '" + module.modulePath + "'";
    std::string vectors = layer == slots.layers.end() ? std::string()
                          : module.feedforward             ? layer->ia3In
                                                           : layer->ia3Out;
    if (vectors.empty())
      return failWith(where + " has no IA3 slot on its " +
                      (module.feedforward ? "input" : "output") +
                      " in this artifact (slots for IA3 are where a compiled-in IA3 adapter "
                      "scales, and on every slotted layer with peftc --slot-methods ia3)");
    int64_t index = weightIndex(vectors);
    if (index < 0 || module.scale.numElements() != manifest.weights[index].shape[1])
      return failWith(where + ": ia3_l " + peft::formatShape(module.scale.shape) +
                      " does not fit the layer's IA3 slots");
    ia3ByModule[module.modulePath] = &module;
  }
  // Each module's slot layer, its shapes and rank within the slots'.
  std::map<std::string, const peft::LoraModule *> byModule;
  for (const peft::LoraModule &module : adapter->modules) {
    auto layer = layerOf(module.modulePath);
    std::string where = directory + ": module '" + module.modulePath + "'";
    if (layer == slots.layers.end())
      return failWith(where + " has no adapter slot in this artifact (slots are on the modules "
                              "its compiled-in adapters adapt and those peftc --slot-modules "
                              "named)");
    if (module.embedding || module.isConvolution())
      return failWith(where + ": only linear layers have slots");
    int64_t rank = module.a.shape[0];
    int64_t a = weightIndex(layer->loraA), b = weightIndex(layer->loraB);
    if (a < 0 || b < 0)
      return failWith("the artifact's slot weights of module '" + layer->module + "' are missing");
    int64_t in = manifest.weights[a].shape[1], out = manifest.weights[b].shape[2];
    if (rank > slots.capacity)
      return failWith(where + " has rank " + std::to_string(rank) +
                      ", above the slots' capacity " + std::to_string(slots.capacity) +
                      " (--max-rank)");
    if (module.a.shape != std::vector<int64_t>{rank, in} ||
        module.b.shape != std::vector<int64_t>{out, rank})
      return failWith(where + ": lora_A " + peft::formatShape(module.a.shape) + " and lora_B " +
                      peft::formatShape(module.b.shape) + " do not fit the layer's slots (in " +
                      std::to_string(in) + ", out " + std::to_string(out) + ")");
    if (!module.tensorBias.empty() && layer->loraBias.empty())
      return failWith(where + " has lora_bias, which this artifact's slots do not hold (peftc "
                              "--slot-methods lora_bias adds them)");
    if (!module.tensorMagnitude.empty() && layer->doraScales.empty())
      return failWith(where + " is DoRA, and this artifact has no DoRA slot there (slots for "
                              "DoRA are where a compiled-in DoRA adapter adapts, and on every "
                              "slotted layer with peftc --slot-methods dora)");
    if (!module.tensorMagnitude.empty() && layer->weight.empty())
      return failWith(where + " is DoRA, and the layer's weight is not F32, from which the "
                              "runtime computes DoRA's factors");
    byModule[module.modulePath] = &module;
  }
  // Every layer's slot: zeros (IA3: ones), then the adapter's factors
  // zero-padded, or its IA3 vectors, where it adapts the layer.
  return changeWeights([&](WeightSet &set) {
    if (clearSlot(set, slot))
      return 1;
    // This change's copies of the tables (the manifest checked them F32).
    auto data = [&](const std::string &name) { return rewritableWeight(set, name); };
    for (const auto &[path, module] : ia3ByModule) {
      const peft::ManifestSlots::Layer &layer = *layerOf(path);
      std::vector<float> values = module->scale.toFloat32();
      float *vectors = data(module->feedforward ? layer.ia3In : layer.ia3Out);
      std::copy(values.begin(), values.end(), vectors + slot * int64_t(values.size()));
    }
    for (const peft::ManifestSlots::Layer &layer : slots.layers) {
      auto found = byModule.find(layer.module);
      if (found == byModule.end())
        continue;
      const peft::LoraModule &module = *found->second;
      int64_t in = module.a.shape[1], out = module.b.shape[0], rank = module.a.shape[0];
      int64_t capacity = slots.capacity;
      std::vector<float> aValues = module.a.toFloat32(), bValues = module.b.toFloat32();
      peft::writeSlotFactors(aValues, bValues, rank, in, out, capacity,
                             data(layer.loraA) + slot * in * capacity,
                             data(layer.loraB) + slot * capacity * out);
      data(layer.scales)[slot] = static_cast<float>(module.scale);
      if (!layer.ranks.empty())
        data(layer.ranks)[slot] = static_cast<float>(rank);
      if (!layer.loraBias.empty() && !module.tensorBias.empty()) {
        std::vector<float> biasValues = module.bias.toFloat32();
        std::copy(biasValues.begin(), biasValues.end(), data(layer.loraBias) + slot * out);
      }
      if (!module.tensorMagnitude.empty()) {
        // DoRA: m / ‖W + s·B·A‖ per output, W as this set binds it.
        std::vector<float> weight = denseWeight(set, layer, in, out);
        peft::addLowRankProduct(weight.data(), /*inOut=*/false, aValues, bValues, rank, in, out,
                                static_cast<float>(module.scale));
        std::vector<float> n = peft::magnitudeOverNorm(weight.data(), /*inOut=*/false,
                                                       module.magnitude.toFloat32(), in, out);
        std::copy(n.begin(), n.end(), data(layer.doraScales) + slot * out);
      }
    }
    set.slotAdapters[slot] = directory;
    return 0;
  }, slot);
}

/// Whether a descriptor's strides are row-major over its sizes.
static bool isContiguous(const int64_t *sizes, const int64_t *strides, size_t rank) {
  int64_t expected = 1;
  for (size_t d = rank; d-- > 0;) {
    if (sizes[d] != 1 && strides[d] != expected)
      return false;
    expected *= sizes[d];
  }
  return true;
}

/// Points each output at the buffer the model returned when it is a
/// contiguous allocation of the model's own (freed at the next run), and
/// copies it otherwise: a strided view, a weight, an input, a constant.
int PeftSession::collectOutputs(const std::vector<int64_t> &results, const WeightSet &weights) {
  // On a device, each output is a dense buffer of its own (RunPlacement).
  bool onDevice = outputsOnDevice && model->executable->memory() == peft::Memory::Device;
  std::set<int64_t> borrowed = {0xdeadbeef}; // MLIR's marker for global memrefs.
  for (const Binding &input : inputs)
    borrowed.insert(input.descriptor.words[0]);
  for (const Descriptor &weight : weights.descriptors)
    borrowed.insert(weight.words[0]);
  std::set<int64_t> released; // Adopted or freed: the model's buffers, once each.
  std::vector<int64_t> toFree;
  size_t cursor = 0;
  for (Output &output : outputs) {
    size_t rank = output.info.shape.size();
    const int64_t *words = &results[cursor];
    cursor += Descriptor::wordsFor(rank);
    output.shape.assign(words + 3, words + 3 + rank);
    if (onDevice) {
      output.bytes.clear();
      adoptedBuffers.push_back({reinterpret_cast<void *>(words[0]), true});
      output.view = {output.dtype, static_cast<int64_t>(rank), output.shape.data(),
                     reinterpret_cast<const void *>(words[1])};
      continue;
    }
    const int64_t *strides = words + 3 + rank;
    size_t count = 1;
    for (int64_t size : output.shape)
      count *= size;
    size_t elementSize = peft_dtype_size(output.dtype);
    const auto *base = reinterpret_cast<const uint8_t *>(words[1]) + words[2] * elementSize;
    bool owned = !borrowed.count(words[0]);
    const void *data = nullptr;
    if (owned && isContiguous(output.shape.data(), strides, rank) &&
        released.insert(words[0]).second) {
      adoptedBuffers.push_back({reinterpret_cast<void *>(words[0]), false});
      output.bytes.clear();
      data = base;
    } else {
      output.bytes.resize(count * elementSize);
      // Walk the strides in runs of the innermost dimension.
      size_t run = rank && strides[rank - 1] == 1 ? size_t(output.shape[rank - 1]) : 1;
      std::vector<int64_t> index(rank, 0);
      for (size_t element = 0; element < count; element += run) {
        int64_t offset = 0;
        for (size_t d = 0; d < rank; ++d)
          offset += index[d] * strides[d];
        std::memcpy(&output.bytes[element * elementSize], base + offset * elementSize,
                    run * elementSize);
        for (size_t d = run > 1 ? rank - 1 : rank; d-- > 0;) {
          if (++index[d] < output.shape[d])
            break;
          index[d] = 0;
        }
      }
      data = output.bytes.data();
      if (owned && released.insert(words[0]).second)
        toFree.push_back(words[0]);
    }
    output.view = {output.dtype, static_cast<int64_t>(rank), output.shape.data(), data};
  }
  for (int64_t buffer : toFree)
    context->freeBuffer(reinterpret_cast<void *>(buffer), false);
  return 0;
}

/// An id outside the rows it indexes, or an adapter slot the artifact does
/// not have, is refused here, naming where it is: the compiled code clamps it
/// (and reads the wrong row) rather than fault.
static int checkIndices(const Binding &slot, const void *data, const int64_t *shape,
                        int64_t rank) {
  size_t count = 1;
  for (int64_t d = 0; d < rank; ++d)
    count *= static_cast<size_t>(shape[d]);
  int64_t bound = slot.info.indexBound;
  for (size_t i = 0; i < count; ++i) {
    int64_t value;
    bool unsignedTooLarge = false;
    switch (slot.dtype) {
    case PEFT_I64: value = static_cast<const int64_t *>(data)[i]; break;
    case PEFT_I32: value = static_cast<const int32_t *>(data)[i]; break;
    case PEFT_I16: value = static_cast<const int16_t *>(data)[i]; break;
    case PEFT_I8: value = static_cast<const int8_t *>(data)[i]; break;
    case PEFT_U8: value = static_cast<const uint8_t *>(data)[i]; break;
    case PEFT_U16: value = static_cast<const uint16_t *>(data)[i]; break;
    case PEFT_U32: value = static_cast<const uint32_t *>(data)[i]; break;
    case PEFT_U64: {
      uint64_t raw = static_cast<const uint64_t *>(data)[i];
      unsignedTooLarge = raw > static_cast<uint64_t>(INT64_MAX);
      value = static_cast<int64_t>(raw);
      break;
    }
    default: return 0; // Not integers: nothing indexes with them.
    }
    if (int64_t slots = slot.info.adapterSlots) {
      if (unsignedTooLarge || value < -1 || value >= slots)
        return failWith("input '" + slot.info.name + "' holds " + std::to_string(value) +
                        " at row " + std::to_string(i) + "; the artifact has " +
                        std::to_string(slots) + " adapter slots (valid: -1 for none, 0 to " +
                        std::to_string(slots - 1) + ")");
      continue;
    }
    if (unsignedTooLarge || value < -bound || value >= bound)
      return failWith("input '" + slot.info.name + "' holds " +
                      (unsignedTooLarge ? std::to_string(static_cast<const uint64_t *>(data)[i])
                                        : std::to_string(value)) +
                      " at flat position " + std::to_string(i) + "; it indexes " +
                      std::to_string(bound) + " rows (valid: " + std::to_string(-bound) +
                      " to " + std::to_string(bound - 1) + ")");
  }
  return 0;
}

/// Binds input `name` to `data`, in device memory when `onDevice`.
int PeftSession::setInput(const char *name, PeftDType dtype, int64_t rank, const int64_t *shape,
                          const void *data, bool onDevice) {
  for (Binding &slot : inputs) {
    if (slot.info.name != name)
      continue;
    const auto &expected = slot.info.shape;
    if (dtype != slot.dtype)
      return failWith(std::string("input '") + name + "' must be " + slot.info.dtype +
                      ", got " + kDTypeNames[dtype]);
    if (rank != static_cast<int64_t>(expected.size()))
      return failWith(std::string("input '") + name + "' must have rank " +
                      std::to_string(expected.size()) + ", got " + std::to_string(rank));
    for (int64_t d = 0; d < rank; ++d)
      if (shape[d] < 0 || (expected[d] >= 0 && expected[d] != shape[d]))
        return failWith(std::string("input '") + name + "' has shape " +
                        peft::formatShape({shape, static_cast<size_t>(rank)}) + ", expected " +
                        peft::formatShape(expected));
    if (slot.info.indexBound || slot.info.adapterSlots) {
      // Ids on a device are checked from a copy (they are few).
      std::vector<uint8_t> copy;
      const void *ids = data;
      if (onDevice && model->executable->memory() == peft::Memory::Device) {
        size_t count = 1;
        for (int64_t d = 0; d < rank; ++d)
          count *= static_cast<size_t>(shape[d]);
        copy.resize(count * peft_dtype_size(dtype));
        std::string error;
        if (!context->copyToHost(copy.data(), data, copy.size(), error))
          return failWith("input '" + slot.info.name + "': " + error);
        ids = copy.data();
      }
      if (checkIndices(slot, ids, shape, rank))
        return 1;
    }
    slot.descriptor.set(data, shape, rank);
    slot.bound = true;
    slot.onDevice = onDevice;
    return 0;
  }
  return failWith(std::string("the model has no input '") + name + "'");
}

/// Inputs whose dimensions share a name ("batch") must have the same size
/// there; compiled code assumes it.
int PeftSession::checkNamedDimensions() const {
  std::map<std::string, std::pair<int64_t, const Binding *>> sizes;
  for (const Binding &slot : inputs) {
    for (size_t d = 0; d < slot.info.dimNames.size(); ++d) {
      const std::string &name = slot.info.dimNames[d];
      if (name.empty())
        continue;
      int64_t size = slot.descriptor.words[3 + d];
      auto [known, inserted] = sizes.try_emplace(name, size, &slot);
      if (!inserted && known->second.first != size)
        return failWith("input '" + slot.info.name + "' has " + name + " = " +
                        std::to_string(size) + " (dimension " + std::to_string(d) +
                        "), but input '" + known->second.second->info.name + "' has " +
                        name + " = " + std::to_string(known->second.first));
    }
  }
  return 0;
}

std::vector<int64_t> PeftSession::slotsThisRunReads() const {
  const peft::Manifest &manifest = model->manifest;
  if (!manifest.slots || model->executable->memory() != peft::Memory::Host)
    return {};
  int64_t slotCount = manifest.slots->count;
  std::vector<bool> read(slotCount, false);
  for (const Binding &input : inputs) {
    if (!input.info.adapterSlots)
      continue;
    if (input.dtype != PEFT_I64) { // (Our compiler's is I64.) All of them, then.
      read.assign(slotCount, true);
      break;
    }
    const int64_t *words = input.descriptor.words.data();
    const int64_t *ids = reinterpret_cast<const int64_t *>(words[1]) + words[2];
    int64_t count = 1;
    for (size_t d = 0; d < input.info.shape.size(); ++d)
      count *= words[3 + d];
    // setInput checked them, but the caller's memory may have changed since.
    for (int64_t i = 0; i < count; ++i)
      if (ids[i] < slotCount)
        read[std::max<int64_t>(ids[i], 0)] = true;
  }
  std::vector<int64_t> slots;
  for (size_t s = 0; s < read.size(); ++s)
    if (read[s])
      slots.push_back(static_cast<int64_t>(s));
  return slots;
}

int PeftSession::run() {
  std::vector<void *> args = {nullptr};
  size_t resultWords = 0;
  for (const Output &output : outputs)
    resultWords += Descriptor::wordsFor(output.info.shape.size());
  std::vector<int64_t> results(resultWords);
  args[0] = results.data();
  for (Binding &slot : inputs) {
    if (!slot.bound)
      return failWith("input '" + slot.info.name + "' is not set");
    args.push_back(slot.descriptor.words.data());
  }
  if (checkNamedDimensions())
    return 1;
  // The slots this run reads, marked so that no change writes them in
  // place meanwhile; then the weights current now, kept alive until the run
  // ends.
  std::vector<int64_t> slotsRead = slotsThisRunReads();
  model->beginReading(slotsRead);
  struct EndReading {
    peft::LoadedModel &model;
    const std::vector<int64_t> &slots;
    ~EndReading() { model.endReading(slots); }
  } endReading{*model, slotsRead};
  std::shared_ptr<const WeightSet> weights = model->currentWeights();
  for (const Descriptor &weight : weights->descriptors)
    args.push_back(const_cast<int64_t *>(weight.words.data()));
  freeAdoptedBuffers(); // The last run's outputs.
  peft::RunPlacement placement;
  for (const Binding &slot : inputs)
    placement.inputsOnDevice.push_back(slot.onDevice);
  placement.outputsOnDevice = outputsOnDevice;
  placement.weightVersions = weights->versions;
  std::string error;
  if (!context->run(args.data(), placement, error))
    return failWith(error);
  return collectOutputs(results, *weights);
}

static int setOutputLocation(PeftSession *session, PeftLocation location) {
  if (location != PEFT_HOST && location != PEFT_DEVICE)
    return failWith("output location must be PEFT_HOST or PEFT_DEVICE, got " +
                    std::to_string(static_cast<int>(location)));
  if (location == PEFT_DEVICE && !session->model->hasDevice())
    return failWith("the model runs on the host (target '" + session->model->manifest.target +
                    "'); its outputs cannot be left on a device");
  session->outputsOnDevice = location == PEFT_DEVICE;
  return 0;
}

static int setInputDevice(PeftSession *session, const char *name, PeftDType dtype, int64_t rank,
                          const int64_t *shape, const void *data) {
  if (!session->model->hasDevice())
    return failWith(std::string("input '") + name + "': the model runs on the host (target '" +
                    session->model->manifest.target +
                    "'); bind host memory with peft_model_set_input");
  return session->setInput(name, dtype, rank, shape, data, /*onDevice=*/true);
}

static const PeftTensor *outputOf(const PeftSession *session, const char *name) {
  for (const Output &output : session->outputs)
    if (output.info.name == name)
      return &output.view;
  failWith(std::string("the model has no output '") + name + "'");
  return nullptr;
}

extern "C" {

PeftModel *peft_model_load(const char *directory) {
  auto loaded = std::make_shared<LoadedModel>();
  if (loaded->load(directory))
    return nullptr;
  auto model = std::make_unique<PeftModel>();
  model->own = newSession(loaded);
  if (!model->own)
    return nullptr;
  model->loaded = std::move(loaded);
  return model.release();
}

void peft_model_free(PeftModel *model) { delete model; }

int peft_model_bind_weights(PeftModel *model, const char *path) {
  return model->loaded->bindFile(path, [](const std::string &name) { return name; });
}

int peft_model_bind_adapter_weights(PeftModel *model, const char *path, const char *adapter) {
  std::string name = adapter;
  return model->loaded->bindFile(path, [&](const std::string &key) {
    return peft::adapterWeightName(key, name);
  });
}

int peft_model_load_adapter(PeftModel *model, int64_t slot, const char *directory) {
  return model->loaded->loadAdapter(slot, directory);
}

int peft_model_unload_adapter(PeftModel *model, int64_t slot) {
  return model->loaded->unloadAdapter(slot);
}

int64_t peft_model_free_adapter_slot(const PeftModel *model) {
  std::shared_ptr<const WeightSet> weights = model->loaded->currentWeights();
  for (size_t slot = 0; slot < weights->slotAdapters.size(); ++slot)
    if (weights->slotAdapters[slot].empty())
      return static_cast<int64_t>(slot);
  return -1;
}

size_t peft_model_num_inputs(const PeftModel *model) {
  return model->loaded->manifest.inputs.size();
}
const char *peft_model_input_name(const PeftModel *model, size_t index) {
  const auto &inputs = model->loaded->manifest.inputs;
  return index < inputs.size() ? inputs[index].name.c_str() : nullptr;
}
PeftDType peft_model_input_dtype(const PeftModel *model, size_t index) {
  const auto &dtypes = model->loaded->inputDTypes;
  return index < dtypes.size() ? dtypes[index] : PEFT_F32;
}
size_t peft_model_num_outputs(const PeftModel *model) {
  return model->loaded->manifest.outputs.size();
}
const char *peft_model_output_name(const PeftModel *model, size_t index) {
  const auto &outputs = model->loaded->manifest.outputs;
  return index < outputs.size() ? outputs[index].name.c_str() : nullptr;
}

PeftLocation peft_model_location(const PeftModel *model) {
  return model->loaded->hasDevice() ? PEFT_DEVICE : PEFT_HOST;
}

int peft_model_set_input(PeftModel *model, const char *name, PeftDType dtype, int64_t rank,
                         const int64_t *shape, const void *data) {
  return model->own->setInput(name, dtype, rank, shape, data, /*onDevice=*/false);
}

int peft_model_set_input_device(PeftModel *model, const char *name, PeftDType dtype,
                                int64_t rank, const int64_t *shape, const void *data) {
  return setInputDevice(model->own.get(), name, dtype, rank, shape, data);
}

int peft_model_set_output_location(PeftModel *model, PeftLocation location) {
  return setOutputLocation(model->own.get(), location);
}

int peft_model_run(PeftModel *model) { return model->own->run(); }

const PeftTensor *peft_model_output(const PeftModel *model, const char *name) {
  return outputOf(model->own.get(), name);
}

PeftSession *peft_session_create(PeftModel *model) {
  return newSession(model->loaded).release();
}

void peft_session_free(PeftSession *session) { delete session; }

int peft_session_set_input(PeftSession *session, const char *name, PeftDType dtype, int64_t rank,
                           const int64_t *shape, const void *data) {
  return session->setInput(name, dtype, rank, shape, data, /*onDevice=*/false);
}

int peft_session_set_input_device(PeftSession *session, const char *name, PeftDType dtype,
                                  int64_t rank, const int64_t *shape, const void *data) {
  return setInputDevice(session, name, dtype, rank, shape, data);
}

int peft_session_set_output_location(PeftSession *session, PeftLocation location) {
  return setOutputLocation(session, location);
}

int peft_session_run(PeftSession *session) { return session->run(); }

const PeftTensor *peft_session_output(const PeftSession *session, const char *name) {
  return outputOf(session, name);
}

const char *peft_last_error(void) { return lastError.c_str(); }

size_t peft_dtype_size(PeftDType dtype) {
  switch (dtype) {
  case PEFT_F64:
  case PEFT_I64:
  case PEFT_U64:
    return 8;
  case PEFT_F32:
  case PEFT_I32:
  case PEFT_U32:
    return 4;
  case PEFT_F16:
  case PEFT_BF16:
  case PEFT_I16:
  case PEFT_U16:
    return 2;
  default:
    return 1;
  }
}

int peft_set_num_threads(int threads) { return peft::setThreadCount(threads); }

int peft_get_num_threads(void) { return peft::threadCount(); }

} // extern "C"
