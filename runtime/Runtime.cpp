//===- Runtime.cpp - Load an artifact and run its entry ---------------------===//
//
// The target-independent core: the manifest, inputs, weights and outputs.
// The target's Executable (runtime/cpu for model.so) runs the entry, called as
// lowering/EmitPackedEntry.cpp lays out: args[0] points to the result
// descriptors, then one pointer per input and per weight, each to an MLIR
// memref descriptor {allocated, aligned, offset, sizes[rank], strides[rank]}.
//
//===----------------------------------------------------------------------===//
#include "runtime/peft_runtime.h"

#include "frontends/adapters/HfPeftAdapter.h"

#include "runtime/Executable.h"
#include "runtime/Manifest.h"
#include "runtime/ThreadPool.h"
#include "support/Safetensors.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <memory>
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

/// One bound input or one weight: its manifest entry and descriptor.
struct Slot {
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

} // namespace

struct PeftModel {
  peft::Manifest manifest;
  std::unique_ptr<peft::Executable> executable;
  std::unique_ptr<peft::SafetensorsFile> weights;
  /// Files bound over the artifact's weights (peft_model_bind_weights).
  std::vector<std::unique_ptr<peft::SafetensorsFile>> boundFiles;
  /// Their tensors copied: F16/BF16 widened for weights the artifact takes as
  /// F32, and weights packed into a kernel's panels.
  std::list<std::vector<float>> copiedTensors;
  std::vector<Slot> inputs, weightSlots;
  /// --mode multi: the adapter in each slot ("" free), and the weights the
  /// loads rewrote, each a copy of the model's own.
  std::vector<std::string> slotAdapters;
  std::map<std::string, std::list<std::vector<float>>::iterator> slotCopies;
  std::vector<Output> outputs;

  /// Buffers the model allocated that outputs of the last run point into,
  /// and whether each is in device memory.
  std::vector<std::pair<void *, bool>> adoptedBuffers;
  /// Outputs left in device memory (peft_model_set_output_location).
  bool outputsOnDevice = false;

  ~PeftModel() { freeAdoptedBuffers(); }

  void freeAdoptedBuffers() {
    for (auto [buffer, onDevice] : adoptedBuffers)
      executable->freeBuffer(buffer, onDevice);
    adoptedBuffers.clear();
  }
  bool hasDevice() const { return executable->memory() != peft::Memory::Host; }

  int load(const std::string &directory);
  int bindWeights(const std::string &directory);
  /// Binds the tensors of the file at `path`, each over the weight named
  /// `weightName(its name)`.
  int bindFile(const std::string &path,
               const std::function<std::string(const std::string &)> &weightName);
  int collectOutputs(const std::vector<int64_t> &results);
  int loadAdapter(int64_t slot, const std::string &directory);
  /// Weight `name`'s values in a copy of the model's own, bound in its place:
  /// a fresh copy each time, so that a device notices the change.
  float *rewritableWeight(const std::string &name);
};

static int readFile(const std::string &path, std::string &text) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream)
    return failWith(path + ": cannot open");
  std::stringstream buffer;
  buffer << stream.rdbuf();
  text = buffer.str();
  return 0;
}

int PeftModel::load(const std::string &directory) {
  std::string manifestPath = directory + "/manifest.json", text, error;
  if (readFile(manifestPath, text))
    return 1;
  if (!manifest.fromJson(text, error))
    return failWith(manifestPath + ": " + error);
  executable = peft::loadExecutable(manifest, directory, error);
  if (!executable)
    return failWith(error);
  for (const auto &info : manifest.inputs) {
    Slot slot;
    slot.info = info;
    if (!dtypeFromName(info.dtype, slot.dtype))
      return failWith(manifestPath + ": input '" + info.name + "' has unknown dtype " + info.dtype);
    inputs.push_back(slot);
  }
  for (const auto &info : manifest.outputs) {
    Output output{info};
    if (!dtypeFromName(info.dtype, output.dtype))
      return failWith(manifestPath + ": output '" + info.name + "' has unknown dtype " + info.dtype);
    outputs.push_back(output);
  }
  if (manifest.slots)
    slotAdapters = manifest.slots->filled;
  return bindWeights(directory);
}

int PeftModel::bindWeights(const std::string &directory) {
  std::string path = directory + "/" + manifest.weightsFile;
  auto file = peft::SafetensorsFile::open(path);
  if (!file)
    return failWith(llvm::toString(file.takeError()));
  weights = std::move(*file);
  for (const auto &info : manifest.weights) {
    const peft::TensorView *view = weights->find(info.name);
    if (!view)
      return failWith(path + ": missing weight '" + info.name + "'");
    if (view->shape != info.shape || peft::dtypeName(view->dtype) != info.dtype)
      return failWith(path + ": weight '" + info.name + "' is " +
                      peft::dtypeName(view->dtype).str() + " " + peft::formatShape(view->shape) +
                      ", the manifest expects " + info.dtype + " " + peft::formatShape(info.shape));
    Slot slot;
    slot.info = info;
    slot.descriptor.set(view->data, view->shape.data(), view->shape.size());
    slot.bound = true;
    weightSlots.push_back(std::move(slot));
  }
  return 0;
}

/// Whether `view` widens exactly to an F32 weight: an F16 or BF16 adapter
/// swapped into an artifact compiled with F32 tensors.
static bool widensToF32(const peft::TensorView &view, const Slot &slot) {
  return slot.info.dtype == "F32" &&
         (view.dtype == peft::DType::F16 || view.dtype == peft::DType::BF16);
}

int PeftModel::bindFile(const std::string &path,
                        const std::function<std::string(const std::string &)> &weightName) {
  auto file = peft::SafetensorsFile::open(path);
  if (!file)
    return failWith(llvm::toString(file.takeError()));
  // Tensor name -> the weights it binds over: the weight of that name, and
  // any weight packed from it.
  std::map<std::string, std::vector<Slot *>> targets;
  for (const auto &[name, view] : (*file)->tensors()) {
    std::string target = weightName(name);
    for (Slot &slot : weightSlots) {
      if (slot.info.sourceName() != target)
        continue;
      const std::vector<int64_t> &shape =
          slot.info.panels ? slot.info.panels->sourceShape : slot.info.shape;
      bool typeFits = peft::dtypeName(view.dtype) == slot.info.dtype || widensToF32(view, slot);
      if (view.shape != shape || !typeFits)
        return failWith(path + ": tensor '" + name + "' is " + peft::dtypeName(view.dtype).str() +
                        " " + peft::formatShape(view.shape) + ", the model's weight is " +
                        slot.info.dtype + " " + peft::formatShape(shape));
      targets[name].push_back(&slot);
    }
    if (targets[name].empty())
      return failWith(path + ": tensor '" + name + "' is not a weight of this model" +
                      (target == name ? std::string() : " (as '" + target + "')"));
  }
  for (const auto &[name, view] : (*file)->tensors()) {
    for (Slot *slot : targets[name]) {
      const void *data = view.data;
      if (const auto &panels = slot->info.panels) {
        std::vector<float> packed(peft::numElements(slot->info.shape));
        peft::packPanels(view.toFloat32().data(), *panels, packed.data());
        data = copiedTensors.emplace_back(std::move(packed)).data();
      } else if (widensToF32(view, *slot)) {
        data = copiedTensors.emplace_back(view.toFloat32()).data();
      }
      slot->descriptor.set(data, slot->info.shape.data(), slot->info.shape.size());
    }
  }
  boundFiles.push_back(std::move(*file));
  return 0;
}

float *PeftModel::rewritableWeight(const std::string &name) {
  for (Slot &slot : weightSlots) {
    if (slot.info.name != name || slot.info.dtype != "F32" || slot.info.panels)
      continue;
    const float *current = reinterpret_cast<const float *>(slot.descriptor.words[1]);
    std::vector<float> copy(current, current + peft::numElements(slot.info.shape));
    auto previous = slotCopies.find(name);
    copiedTensors.push_front(std::move(copy));
    if (previous != slotCopies.end())
      copiedTensors.erase(previous->second);
    slotCopies[name] = copiedTensors.begin();
    float *data = copiedTensors.front().data();
    slot.descriptor.set(data, slot.info.shape.data(), slot.info.shape.size());
    return data;
  }
  return nullptr;
}

int PeftModel::loadAdapter(int64_t slot, const std::string &directory) {
  if (!manifest.slots)
    return failWith("the artifact has no adapter slots (compile it with --mode multi)");
  const peft::ManifestSlots &slots = *manifest.slots;
  if (slot < 0 || slot >= slots.count)
    return failWith("adapter slot " + std::to_string(slot) + " does not exist: the artifact has " +
                    std::to_string(slots.count) + " (0 to " + std::to_string(slots.count - 1) +
                    ")");
  auto adapter = peft::readHfPeftAdapter(directory, "default");
  if (!adapter)
    return failWith(llvm::toString(adapter.takeError()));
  const peft::LoraConfig &config = adapter->config;
  if (config.peftType != "LORA" || config.useDora || !adapter->replacedParameters.empty())
    return failWith(directory + ": a " + (config.useDora ? std::string("DoRA") : config.peftType) +
                    " adapter" +
                    (adapter->replacedParameters.empty() ? "" : " that saves whole parameters") +
                    " cannot fill a LoRA slot");
  // Each module's slot layer, its shapes and rank within the slots'.
  std::map<std::string, const peft::LoraModule *> byModule;
  auto shapeOf = [&](const std::string &name) {
    for (const Slot &weight : weightSlots)
      if (weight.info.name == name)
        return weight.info.shape;
    return std::vector<int64_t>();
  };
  for (const peft::LoraModule &module : adapter->modules) {
    auto layer = std::find_if(slots.layers.begin(), slots.layers.end(),
                              [&](const auto &l) { return l.module == module.modulePath; });
    std::string where = directory + ": module '" + module.modulePath + "'";
    if (layer == slots.layers.end())
      return failWith(where + " has no adapter slot in this artifact (its slots are on the "
                              "modules its compiled-in adapters adapt)");
    if (module.embedding || module.isConvolution())
      return failWith(where + ": only linear layers have slots");
    int64_t rank = module.a.shape[0];
    std::vector<int64_t> a = shapeOf(layer->loraA), b = shapeOf(layer->loraB);
    if (rank > slots.capacity)
      return failWith(where + " has rank " + std::to_string(rank) +
                      ", above the slots' capacity " + std::to_string(slots.capacity) +
                      " (--max-rank)");
    if (module.a.shape != std::vector<int64_t>{rank, a[2]} ||
        module.b.shape != std::vector<int64_t>{b[1], rank})
      return failWith(where + ": lora_A " + peft::formatShape(module.a.shape) + " and lora_B " +
                      peft::formatShape(module.b.shape) + " do not fit the layer's slots (in " +
                      std::to_string(a[2]) + ", out " + std::to_string(b[1]) + ")");
    if (!module.tensorBias.empty() && layer->loraBias.empty())
      return failWith(where + " has lora_bias, which this artifact's slots do not hold");
    byModule[module.modulePath] = &module;
  }
  // Every layer's slot: the adapter's factors zero-padded, or zeros where it
  // does not adapt the layer.
  for (const peft::ManifestSlots::Layer &layer : slots.layers) {
    std::vector<int64_t> aShape = shapeOf(layer.loraA), bShape = shapeOf(layer.loraB);
    int64_t in = aShape[2], out = bShape[1], capacity = slots.capacity;
    float *a = rewritableWeight(layer.loraA), *b = rewritableWeight(layer.loraB);
    float *scales = rewritableWeight(layer.scales);
    float *bias = layer.loraBias.empty() ? nullptr : rewritableWeight(layer.loraBias);
    if (!a || !b || !scales || (!layer.loraBias.empty() && !bias))
      return failWith("the artifact's slot weights of module '" + layer.module +
                      "' are not F32 weights");
    float *slotA = a + slot * capacity * in, *slotB = b + slot * out * capacity;
    std::fill(slotA, slotA + capacity * in, 0.0f);
    std::fill(slotB, slotB + out * capacity, 0.0f);
    scales[slot] = 0.0f;
    if (bias)
      std::fill(bias + slot * out, bias + (slot + 1) * out, 0.0f);
    auto found = byModule.find(layer.module);
    if (found == byModule.end())
      continue;
    const peft::LoraModule &module = *found->second;
    int64_t rank = module.a.shape[0];
    std::vector<float> aValues = module.a.toFloat32(), bValues = module.b.toFloat32();
    std::copy(aValues.begin(), aValues.end(), slotA); // Rows 0 to r - 1.
    for (int64_t o = 0; o < out; ++o)
      std::copy_n(bValues.begin() + o * rank, rank, slotB + o * capacity);
    scales[slot] = static_cast<float>(module.scale);
    if (bias && !module.tensorBias.empty()) {
      std::vector<float> biasValues = module.bias.toFloat32();
      std::copy(biasValues.begin(), biasValues.end(), bias + slot * out);
    }
  }
  slotAdapters[slot] = directory;
  return 0;
}

/// Copies each returned memref out and frees the buffers the model allocated
/// (never an input, a weight, or a constant global).
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
int PeftModel::collectOutputs(const std::vector<int64_t> &results) {
  // On a device, each output is a dense buffer of its own (RunPlacement).
  bool onDevice = outputsOnDevice && executable->memory() == peft::Memory::Device;
  std::set<int64_t> borrowed = {0xdeadbeef}; // MLIR's marker for global memrefs.
  for (const Slot &slot : inputs)
    borrowed.insert(slot.descriptor.words[0]);
  for (const Slot &slot : weightSlots)
    borrowed.insert(slot.descriptor.words[0]);
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
    executable->freeBuffer(reinterpret_cast<void *>(buffer), false);
  return 0;
}

/// An id outside the rows it indexes, or an adapter slot the artifact does
/// not have, is refused here, naming where it is: the compiled code clamps it
/// (and reads the wrong row) rather than fault.
static int checkIndices(const Slot &slot, const void *data, const int64_t *shape,
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

extern "C" {

PeftModel *peft_model_load(const char *directory) {
  auto model = std::make_unique<PeftModel>();
  if (model->load(directory))
    return nullptr;
  return model.release();
}

void peft_model_free(PeftModel *model) { delete model; }

int peft_model_bind_weights(PeftModel *model, const char *path) {
  return model->bindFile(path, [](const std::string &name) { return name; });
}

int peft_model_bind_adapter_weights(PeftModel *model, const char *path, const char *adapter) {
  std::string name = adapter;
  return model->bindFile(path, [&](const std::string &key) {
    return peft::adapterWeightName(key, name);
  });
}

int peft_model_load_adapter(PeftModel *model, int64_t slot, const char *directory) {
  return model->loadAdapter(slot, directory);
}

int64_t peft_model_free_adapter_slot(const PeftModel *model) {
  for (size_t slot = 0; slot < model->slotAdapters.size(); ++slot)
    if (model->slotAdapters[slot].empty())
      return static_cast<int64_t>(slot);
  return -1;
}

size_t peft_model_num_inputs(const PeftModel *model) { return model->inputs.size(); }
const char *peft_model_input_name(const PeftModel *model, size_t index) {
  return index < model->inputs.size() ? model->inputs[index].info.name.c_str() : nullptr;
}
PeftDType peft_model_input_dtype(const PeftModel *model, size_t index) {
  return index < model->inputs.size() ? model->inputs[index].dtype : PEFT_F32;
}
size_t peft_model_num_outputs(const PeftModel *model) { return model->outputs.size(); }
const char *peft_model_output_name(const PeftModel *model, size_t index) {
  return index < model->outputs.size() ? model->outputs[index].info.name.c_str() : nullptr;
}

/// Binds input `name` to `data`, in device memory when `onDevice`.
static int setInput(PeftModel *model, const char *name, PeftDType dtype, int64_t rank,
                    const int64_t *shape, const void *data, bool onDevice) {
  for (Slot &slot : model->inputs) {
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
        if (!model->executable->copyToHost(copy.data(), data, copy.size(), error))
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

int peft_model_set_input(PeftModel *model, const char *name, PeftDType dtype, int64_t rank,
                         const int64_t *shape, const void *data) {
  return setInput(model, name, dtype, rank, shape, data, /*onDevice=*/false);
}

int peft_model_set_input_device(PeftModel *model, const char *name, PeftDType dtype,
                                int64_t rank, const int64_t *shape, const void *data) {
  if (!model->hasDevice())
    return failWith(std::string("input '") + name + "': the model runs on the host (target '" +
                    model->manifest.target + "'); bind host memory with peft_model_set_input");
  return setInput(model, name, dtype, rank, shape, data, /*onDevice=*/true);
}

PeftLocation peft_model_location(const PeftModel *model) {
  return model->hasDevice() ? PEFT_DEVICE : PEFT_HOST;
}

int peft_model_set_output_location(PeftModel *model, PeftLocation location) {
  if (location != PEFT_HOST && location != PEFT_DEVICE)
    return failWith("output location must be PEFT_HOST or PEFT_DEVICE, got " +
                    std::to_string(static_cast<int>(location)));
  if (location == PEFT_DEVICE && !model->hasDevice())
    return failWith("the model runs on the host (target '" + model->manifest.target +
                    "'); its outputs cannot be left on a device");
  model->outputsOnDevice = location == PEFT_DEVICE;
  return 0;
}

/// Inputs whose dimensions share a name ("batch") must have the same size
/// there; compiled code assumes it.
static int checkNamedDimensions(const PeftModel *model) {
  std::map<std::string, std::pair<int64_t, const Slot *>> sizes;
  for (const Slot &slot : model->inputs) {
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

int peft_model_run(PeftModel *model) {
  std::vector<void *> args = {nullptr};
  size_t resultWords = 0;
  for (const Output &output : model->outputs)
    resultWords += Descriptor::wordsFor(output.info.shape.size());
  std::vector<int64_t> results(resultWords);
  args[0] = results.data();
  for (Slot &slot : model->inputs) {
    if (!slot.bound)
      return failWith("input '" + slot.info.name + "' is not set");
    args.push_back(slot.descriptor.words.data());
  }
  if (checkNamedDimensions(model))
    return 1;
  for (Slot &slot : model->weightSlots)
    args.push_back(slot.descriptor.words.data());
  model->freeAdoptedBuffers(); // The last run's outputs.
  peft::RunPlacement placement;
  for (const Slot &slot : model->inputs)
    placement.inputsOnDevice.push_back(slot.onDevice);
  placement.outputsOnDevice = model->outputsOnDevice;
  std::string error;
  if (!model->executable->run(args.data(), placement, error))
    return failWith(error);
  return model->collectOutputs(results);
}

const PeftTensor *peft_model_output(const PeftModel *model, const char *name) {
  for (const Output &output : model->outputs)
    if (output.info.name == name)
      return &output.view;
  failWith(std::string("the model has no output '") + name + "'");
  return nullptr;
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
