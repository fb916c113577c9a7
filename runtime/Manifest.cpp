//===- Manifest.cpp - What a compiled artifact holds ------------------------===//
#include "runtime/Manifest.h"

#include "support/Tensor.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace peft {

using Json = nlohmann::ordered_json;

std::string adapterWeightName(const std::string &fileKey, const std::string &adapter) {
  for (const std::string suffix : {".weight", ".bias"})
    if (fileKey.size() > suffix.size() &&
        fileKey.compare(fileKey.size() - suffix.size(), suffix.size(), suffix) == 0)
      return fileKey.substr(0, fileKey.size() - suffix.size()) + "." + adapter + suffix;
  return fileKey + "." + adapter;
}

std::vector<int64_t> PanelLayout::packedShape() const {
  return {(n() + tile - 1) / tile, k(), tile};
}

void packPanels(const float *source, const PanelLayout &layout, float *packed) {
  int64_t n = layout.n(), k = layout.k(), tile = layout.tile;
  int64_t panels = (n + tile - 1) / tile;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t row = 0; row < k; ++row) {
      float *out = packed + (p * k + row) * tile;
      for (int64_t j = 0; j < tile; ++j) {
        int64_t channel = p * tile + j;
        out[j] = channel >= n ? 0.0f
                 : layout.transposed ? source[channel * k + row]
                                     : source[row * n + channel];
      }
    }
}

static Json tensorsToJson(const std::vector<ManifestTensor> &tensors) {
  Json list = Json::array();
  for (const ManifestTensor &tensor : tensors) {
    Json item = {{"name", tensor.name}, {"dtype", tensor.dtype}, {"shape", tensor.shape}};
    if (!tensor.dimNames.empty())
      item["dim_names"] = tensor.dimNames;
    if (tensor.indexBound)
      item["index_bound"] = tensor.indexBound;
    if (tensor.adapterSlots)
      item["adapter_slots"] = tensor.adapterSlots;
    if (const auto &panels = tensor.panels)
      item["panels"] = {{"of", panels->of},
                        {"tile", panels->tile},
                        {"transposed", panels->transposed},
                        {"shape", panels->sourceShape}};
    list.push_back(std::move(item));
  }
  return list;
}

static Json adaptersToJson(const std::vector<ManifestAdapter> &adapters) {
  Json list = Json::array();
  for (const ManifestAdapter &adapter : adapters)
    list.push_back({{"name", adapter.name},
                    {"method", adapter.method},
                    {"module", adapter.module},
                    {"scale", adapter.scale},
                    {"weights", adapter.weights}});
  return list;
}

static Json slotsToJson(const ManifestSlots &slots) {
  Json layers = Json::array();
  for (const ManifestSlots::Layer &layer : slots.layers) {
    Json item = {{"module", layer.module},
                 {"lora_A", layer.loraA},
                 {"lora_B", layer.loraB},
                 {"scales", layer.scales}};
    if (!layer.loraBias.empty())
      item["lora_bias"] = layer.loraBias;
    if (!layer.ranks.empty())
      item["ranks"] = layer.ranks;
    if (!layer.ia3In.empty())
      item["ia3_in"] = layer.ia3In;
    if (!layer.ia3Out.empty())
      item["ia3_out"] = layer.ia3Out;
    if (!layer.doraScales.empty())
      item["dora_scales"] = layer.doraScales;
    if (!layer.weight.empty()) {
      item["weight"] = layer.weight;
      item["weight_in_out"] = layer.weightInOut;
    }
    layers.push_back(item);
  }
  return {{"count", slots.count},
          {"capacity", slots.capacity},
          {"filled", slots.filled},
          {"layers", layers}};
}

std::string Manifest::toJson() const {
  Json json = {{"format", "peft-mlir-artifact"},
               {"version", kVersion},
               {"target", target},
               {"library", library},
               {"entry", entry},
               {"weights_file", weightsFile},
               {"inputs", tensorsToJson(inputs)},
               {"outputs", tensorsToJson(outputs)},
               {"weights", tensorsToJson(weights)},
               {"adapters", adaptersToJson(adapters)}};
  if (!sources.empty())
    json["sources"] = sources;
  if (slots)
    json["adapter_slots"] = slotsToJson(*slots);
  return json.dump(2) + "\n";
}

namespace {
/// Reads the manifest's fields strictly: every value of the type and range the
/// runtime relies on, or an error naming the field ("inputs[1].shape").
class ManifestReader {
public:
  explicit ManifestReader(std::string &error) : error(error) {}

  bool failed() const { return !error.empty(); }

  void fail(const std::string &field, const std::string &what) {
    if (error.empty())
      error = "'" + field + "' " + what;
  }

  const Json *at(const Json &object, const std::string &key, const std::string &field,
                 bool optional = false) {
    if (!object.is_object())
      return fail(field, "is not an object"), nullptr;
    auto found = object.find(key);
    if (found == object.end()) {
      if (!optional)
        fail(field.empty() ? key : field + "." + key, "is missing");
      return nullptr;
    }
    return &*found;
  }

  std::string string(const Json &object, const std::string &key, const std::string &field) {
    const Json *value = at(object, key, field);
    if (value && !value->is_string())
      fail(join(field, key), "is not a string");
    return value && value->is_string() ? value->get<std::string>() : std::string();
  }

  /// A file name inside the artifact directory: never a path out of it.
  std::string fileName(const Json &object, const std::string &key) {
    std::string name = string(object, key, "");
    if (!failed() && !isPlainFileName(name))
      fail(key, "is not a plain file name");
    return name;
  }

  /// An optional list of file names inside the artifact directory.
  std::vector<std::string> fileNames(const Json &object, const std::string &key) {
    std::vector<std::string> names;
    const Json *list = at(object, key, "", /*optional=*/true);
    if (!list || failed())
      return names;
    if (!list->is_array())
      return fail(key, "is not an array"), names;
    for (size_t i = 0; i < list->size(); ++i) {
      const Json &name = (*list)[i];
      std::string field = key + "[" + std::to_string(i) + "]";
      if (!name.is_string() || !isPlainFileName(name.get<std::string>()))
        return fail(field, "is not a plain file name"), names;
      names.push_back(name.get<std::string>());
    }
    return names;
  }

  static bool isPlainFileName(const std::string &name) {
    return !name.empty() && name != "." && name != ".." &&
           name.find_first_of("/\\") == std::string::npos && name.find('\0') == std::string::npos;
  }

  std::vector<ManifestTensor> tensors(const Json &json, const std::string &key,
                                      bool staticShapes) {
    std::vector<ManifestTensor> tensors;
    const Json *list = at(json, key, "");
    if (!list || failed())
      return tensors;
    if (!list->is_array())
      return fail(key, "is not a list"), tensors;
    std::set<std::string> names;
    for (size_t i = 0; i < list->size() && !failed(); ++i) {
      std::string field = key + "[" + std::to_string(i) + "]";
      const Json &item = (*list)[i];
      ManifestTensor tensor;
      tensor.name = string(item, "name", field);
      tensor.dtype = string(item, "dtype", field);
      if (failed())
        break;
      if (tensor.name.empty() || !names.insert(tensor.name).second)
        fail(field + ".name", "is empty or given twice");
      if (!parseDType(tensor.dtype) || tensor.dtype == "C64" ||
          llvm::StringRef(tensor.dtype).starts_with("F8"))
        fail(field + ".dtype", "is not a dtype the runtime passes");
      const Json *shape = at(item, "shape", field);
      if (shape && (!shape->is_array() || shape->size() > Manifest::kMaxRank))
        fail(field + ".shape", "is not a list of at most " + std::to_string(Manifest::kMaxRank) + " sizes");
      for (size_t d = 0; shape && !failed() && d < shape->size(); ++d) {
        const Json &size = (*shape)[d];
        int64_t lowest = staticShapes ? 0 : -1;
        if (!size.is_number_integer() || size.get<int64_t>() < lowest ||
            (size.is_number_unsigned() && size.get<uint64_t>() > kMaxTensorBytes))
          fail(field + ".shape", staticShapes ? "holds a size that is not a non-negative integer"
                                              : "holds a size that is not an integer >= -1");
        else
          tensor.shape.push_back(size.get<int64_t>());
      }
      if (!failed() && staticShapes && tensor.dtype.size() &&
          !checkedByteSize(tensor.shape, *parseDType(tensor.dtype)))
        fail(field + ".shape", "is too large");
      if (const Json *dims = at(item, "dim_names", field, /*optional=*/true)) {
        bool valid = dims->is_array() && dims->size() == tensor.shape.size();
        for (size_t d = 0; valid && d < dims->size(); ++d)
          valid = (*dims)[d].is_string();
        if (!valid)
          fail(field + ".dim_names", "is not a list of names, one per dimension");
        else
          tensor.dimNames = dims->get<std::vector<std::string>>();
      }
      if (const Json *bound = at(item, "index_bound", field, /*optional=*/true)) {
        if (!bound->is_number_integer() || bound->get<int64_t>() <= 0)
          fail(field + ".index_bound", "is not a positive integer");
        else
          tensor.indexBound = bound->get<int64_t>();
      }
      if (const Json *slots = at(item, "adapter_slots", field, /*optional=*/true)) {
        if (!slots->is_number_integer() || slots->get<int64_t>() <= 0)
          fail(field + ".adapter_slots", "is not a positive integer");
        else
          tensor.adapterSlots = slots->get<int64_t>();
      }
      if (const Json *panels = at(item, "panels", field, /*optional=*/true))
        tensor.panels = panelLayout(*panels, tensor, field + ".panels");
      tensors.push_back(std::move(tensor));
    }
    return tensors;
  }

  std::vector<ManifestAdapter> adapters(const Json &json) {
    std::vector<ManifestAdapter> adapters;
    const Json *list = at(json, "adapters", "", /*optional=*/true);
    if (!list)
      return adapters;
    if (!list->is_array())
      return fail("adapters", "is not a list"), adapters;
    for (size_t i = 0; i < list->size() && !failed(); ++i) {
      std::string field = "adapters[" + std::to_string(i) + "]";
      const Json &item = (*list)[i];
      ManifestAdapter adapter;
      adapter.name = string(item, "name", field);
      adapter.method = string(item, "method", field);
      adapter.module = string(item, "module", field);
      const Json *scale = at(item, "scale", field);
      if (scale && !scale->is_number())
        fail(field + ".scale", "is not a number");
      else if (scale)
        adapter.scale = scale->get<double>();
      const Json *weights = at(item, "weights", field);
      bool valid = weights && weights->is_array();
      for (size_t w = 0; valid && w < weights->size(); ++w)
        valid = (*weights)[w].is_string();
      if (weights && !valid)
        fail(field + ".weights", "is not a list of names");
      if (failed())
        break;
      adapter.weights = weights->get<std::vector<std::string>>();
      adapters.push_back(std::move(adapter));
    }
    return adapters;
  }

  /// The adapter slots of --mode multi, if any: each layer's slot weights
  /// must be weights of the artifact, of the shapes the slots imply.
  std::optional<ManifestSlots> slots(const Json &json, const std::vector<ManifestTensor> &weights) {
    const Json *item = at(json, "adapter_slots", "", /*optional=*/true);
    if (!item)
      return std::nullopt;
    const std::string field = "adapter_slots";
    ManifestSlots slots;
    const Json *count = at(*item, "count", field), *capacity = at(*item, "capacity", field);
    const Json *filled = at(*item, "filled", field), *layers = at(*item, "layers", field);
    if (failed())
      return std::nullopt;
    if (!count->is_number_integer() || count->get<int64_t>() < 1 ||
        !capacity->is_number_integer() || capacity->get<int64_t>() < 1)
      return fail(field, "needs a positive count and capacity"), std::nullopt;
    slots.count = count->get<int64_t>();
    slots.capacity = capacity->get<int64_t>();
    bool names = filled->is_array() && filled->size() == static_cast<size_t>(slots.count);
    for (size_t i = 0; names && i < filled->size(); ++i)
      names = (*filled)[i].is_string();
    if (!names)
      return fail(field + ".filled", "is not a name (or \"\") per slot"), std::nullopt;
    slots.filled = filled->get<std::vector<std::string>>();
    if (!layers->is_array())
      return fail(field + ".layers", "is not a list"), std::nullopt;
    auto shapeOf = [&](const std::string &name) -> const std::vector<int64_t> * {
      for (const ManifestTensor &weight : weights)
        if (weight.name == name && weight.dtype == "F32")
          return &weight.shape;
      return nullptr;
    };
    for (size_t i = 0; i < layers->size() && !failed(); ++i) {
      std::string where = field + ".layers[" + std::to_string(i) + "]";
      const Json &entry = (*layers)[i];
      ManifestSlots::Layer layer;
      layer.module = string(entry, "module", where);
      layer.loraA = string(entry, "lora_A", where);
      layer.loraB = string(entry, "lora_B", where);
      layer.scales = string(entry, "scales", where);
      if (entry.contains("lora_bias"))
        layer.loraBias = string(entry, "lora_bias", where);
      if (entry.contains("ranks"))
        layer.ranks = string(entry, "ranks", where);
      if (entry.contains("ia3_in"))
        layer.ia3In = string(entry, "ia3_in", where);
      if (entry.contains("ia3_out"))
        layer.ia3Out = string(entry, "ia3_out", where);
      if (entry.contains("dora_scales"))
        layer.doraScales = string(entry, "dora_scales", where);
      if (entry.contains("weight")) {
        layer.weight = string(entry, "weight", where);
        const Json *inOut = at(entry, "weight_in_out", where);
        if (inOut && !inOut->is_boolean())
          fail(where + ".weight_in_out", "is not true or false");
        else if (inOut)
          layer.weightInOut = inOut->get<bool>();
      }
      if (failed())
        break;
      const std::vector<int64_t> *a = shapeOf(layer.loraA), *b = shapeOf(layer.loraB),
                                 *scales = shapeOf(layer.scales);
      const std::vector<int64_t> *bias = layer.loraBias.empty() ? nullptr : shapeOf(layer.loraBias);
      // Aᵀ [count, in, capacity], Bᵀ [count, capacity, out].
      bool fits = a && b && scales && a->size() == 3 && b->size() == 3 &&
                  (*a)[0] == slots.count && (*a)[2] == slots.capacity &&
                  (*b)[0] == slots.count && (*b)[1] == slots.capacity &&
                  *scales == std::vector<int64_t>{slots.count} &&
                  (layer.loraBias.empty() ||
                   (bias && *bias == std::vector<int64_t>{slots.count, (*b)[2]}));
      // IA3 vectors over the layer's inputs or outputs.
      auto vectorsFit = [&](const std::string &name, int64_t features) {
        const std::vector<int64_t> *shape = name.empty() ? nullptr : shapeOf(name);
        return name.empty() || (shape && *shape == std::vector<int64_t>{slots.count, features});
      };
      // Each slot's rank, [count].
      const std::vector<int64_t> *ranks = layer.ranks.empty() ? nullptr : shapeOf(layer.ranks);
      fits = fits && (layer.ranks.empty() || (ranks && *ranks == std::vector<int64_t>{slots.count}));
      fits = fits && vectorsFit(layer.ia3In, (*a)[1]) && vectorsFit(layer.ia3Out, (*b)[2]) &&
             vectorsFit(layer.doraScales, (*b)[2]);
      // The layer's weight: [out, in] or [in, out], or packed from one (the
      // runtime reads either).
      if (fits && !layer.weight.empty()) {
        int64_t in = (*a)[1], out = (*b)[2];
        std::vector<int64_t> expected = layer.weightInOut ? std::vector<int64_t>{in, out}
                                                          : std::vector<int64_t>{out, in};
        auto weight = std::find_if(weights.begin(), weights.end(), [&](const ManifestTensor &w) {
          return w.sourceName() == layer.weight && w.dtype == "F32";
        });
        fits = weight != weights.end() &&
               (weight->panels ? weight->panels->sourceShape == expected &&
                                     weight->panels->transposed != layer.weightInOut
                               : weight->shape == expected);
      }
      if (!fits)
        fail(where, "does not name F32 weights shaped as the slots");
      slots.layers.push_back(std::move(layer));
    }
    return slots;
  }

  /// A packed weight's layout: a matrix whose packing has the weight's shape.
  PanelLayout panelLayout(const Json &json, const ManifestTensor &tensor,
                          const std::string &field) {
    PanelLayout layout;
    layout.of = string(json, "of", field);
    const Json *tile = at(json, "tile", field);
    const Json *transposed = at(json, "transposed", field);
    const Json *shape = at(json, "shape", field);
    if (failed())
      return layout;
    if (!tile->is_number_integer() || tile->get<int64_t>() < 1 || tile->get<int64_t>() > 1024)
      return fail(field + ".tile", "is not an integer in [1, 1024]"), layout;
    if (!transposed->is_boolean())
      return fail(field + ".transposed", "is not a boolean"), layout;
    // Two sizes; or, transposed, a convolution's [out, in, kernel...].
    size_t rank = shape->is_array() ? shape->size() : 0;
    bool valid = rank == 2 || (rank >= 2 && rank <= 6 && transposed->get<bool>());
    int64_t product = 1;
    for (size_t d = 0; valid && d < rank; ++d) {
      valid = (*shape)[d].is_number_integer() && (*shape)[d].get<int64_t>() >= 1 &&
              (*shape)[d].get<int64_t>() <= int64_t(1) << 32;
      product = valid ? product * (*shape)[d].get<int64_t>() : product;
      valid = valid && product <= int64_t(1) << 40;
    }
    if (!valid)
      return fail(field + ".shape", "is not two sizes in [1, 2^32] (or, transposed, up to "
                                    "six, 2^40 elements in all)"),
             layout;
    layout.tile = tile->get<int64_t>();
    layout.transposed = transposed->get<bool>();
    layout.sourceShape = shape->get<std::vector<int64_t>>();
    if (layout.of.empty() || tensor.dtype != "F32" || tensor.shape != layout.packedShape())
      fail(field, "does not describe this F32 weight's shape");
    return layout;
  }

private:
  static std::string join(const std::string &field, const std::string &key) {
    return field.empty() ? key : field + "." + key;
  }

  std::string &error;
};
} // namespace

bool Manifest::fromJson(const std::string &text, std::string &error) {
  error.clear();
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded())
    return error = "not JSON", false;
  if (!json.is_object() || !json.contains("format") || json["format"] != "peft-mlir-artifact")
    return error = "not a peft-mlir artifact manifest (no \"format\": \"peft-mlir-artifact\")",
           false;
  if (!json.contains("version") || json["version"] != kVersion)
    return error = "manifest version " +
                   (json.contains("version") ? json["version"].dump().substr(0, 20) : "(none)") +
                   " is not the supported version " + std::to_string(kVersion),
           false;
  ManifestReader reader(error);
  target = reader.string(json, "target", "");
  library = reader.fileName(json, "library");
  entry = reader.string(json, "entry", "");
  if (!reader.failed() && (entry.empty() || entry.find_first_not_of(
                                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                "0123456789_") != std::string::npos))
    reader.fail("entry", "is not a symbol name");
  weightsFile = reader.fileName(json, "weights_file");
  sources = reader.fileNames(json, "sources");
  inputs = reader.tensors(json, "inputs", /*staticShapes=*/false);
  outputs = reader.tensors(json, "outputs", /*staticShapes=*/false);
  weights = reader.tensors(json, "weights", /*staticShapes=*/true);
  adapters = reader.adapters(json);
  slots = reader.slots(json, weights);
  return !reader.failed();
}

std::string Manifest::signature() const {
  auto describe = [](const std::vector<ManifestTensor> &tensors) {
    Json list = Json::array();
    for (const ManifestTensor &tensor : tensors)
      list.push_back({tensor.name, tensor.dtype, tensor.shape});
    return list;
  };
  return Json{{"inputs", describe(inputs)},
              {"outputs", describe(outputs)},
              {"weights", describe(weights)}}
      .dump();
}

} // namespace peft
