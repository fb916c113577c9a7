//===- Manifest.cpp - What a compiled artifact holds ------------------------===//
#include "runtime/Manifest.h"

#include <nlohmann/json.hpp>

namespace peft {

using Json = nlohmann::ordered_json;

std::string adapterWeightName(const std::string &fileKey, const std::string &adapter) {
  for (const std::string suffix : {".weight", ".bias"})
    if (fileKey.size() > suffix.size() &&
        fileKey.compare(fileKey.size() - suffix.size(), suffix.size(), suffix) == 0)
      return fileKey.substr(0, fileKey.size() - suffix.size()) + "." + adapter + suffix;
  return fileKey + "." + adapter;
}

static Json tensorsToJson(const std::vector<ManifestTensor> &tensors) {
  Json list = Json::array();
  for (const ManifestTensor &tensor : tensors) {
    Json item = {{"name", tensor.name}, {"dtype", tensor.dtype}, {"shape", tensor.shape}};
    if (!tensor.dimNames.empty())
      item["dim_names"] = tensor.dimNames;
    list.push_back(std::move(item));
  }
  return list;
}

static std::vector<ManifestTensor> tensorsFromJson(const Json &list) {
  std::vector<ManifestTensor> tensors;
  for (const Json &item : list)
    tensors.push_back({item.at("name").get<std::string>(),
                       item.at("dtype").get<std::string>(),
                       item.at("shape").get<std::vector<int64_t>>(),
                       item.value("dim_names", std::vector<std::string>())});
  return tensors;
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

static std::vector<ManifestAdapter> adaptersFromJson(const Json &list) {
  std::vector<ManifestAdapter> adapters;
  for (const Json &item : list)
    adapters.push_back({item.at("name").get<std::string>(), item.at("method").get<std::string>(),
                        item.at("module").get<std::string>(), item.at("scale").get<double>(),
                        item.at("weights").get<std::vector<std::string>>()});
  return adapters;
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
  return json.dump(2) + "\n";
}

bool Manifest::fromJson(const std::string &text, std::string &error) {
  try {
    Json json = Json::parse(text);
    if (json.at("format") != "peft-mlir-artifact")
      return error = "not a peft-mlir artifact manifest", false;
    if (json.at("version") != kVersion)
      return error = "manifest version " + json.at("version").dump() +
                     " is not the supported version " + std::to_string(kVersion),
             false;
    target = json.at("target").get<std::string>();
    library = json.at("library").get<std::string>();
    entry = json.at("entry").get<std::string>();
    weightsFile = json.at("weights_file").get<std::string>();
    inputs = tensorsFromJson(json.at("inputs"));
    outputs = tensorsFromJson(json.at("outputs"));
    weights = tensorsFromJson(json.at("weights"));
    adapters = adaptersFromJson(json.value("adapters", Json::array()));
    return true;
  } catch (const Json::exception &exception) {
    error = std::string("malformed manifest: ") + exception.what();
    return false;
  }
}

} // namespace peft
