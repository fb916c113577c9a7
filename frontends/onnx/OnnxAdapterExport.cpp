//===- OnnxAdapterExport.cpp - Unmerged adapters as ONNX nodes --------------===//
//
// An adapter left unmerged (a fresh one from peft-insert-adapters, to be
// trained elsewhere) is written beside the node of the layer it adapts:
// standard ONNX ops that compute it, and its tensors as initializers named as
// Hugging Face PEFT names them in memory (`...lora_A.<adapter>.weight`). The
// model's metadata keeps each adapter's config and the map from initializers
// to the names of its adapter_model.safetensors, so that
// `peft-translate --extract-adapters` can write the trained adapter back.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/OnnxExporter.h"
#include "frontends/onnx/OnnxWeights.h"
#include "support/OutputFile.h"

#include "dialects/peft/PeftDialect.h"
#include "runtime/Manifest.h"
#include "support/Safetensors.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include "onnx/onnx_pb.h"

#include <nlohmann/json.hpp>

#include <algorithm>

using namespace mlir;

namespace peft {

static llvm::Error adapterError(Operation *op, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "adapter '" + cast<AdapterOp>(op).getAdapterName() +
                                     "' on module '" + adaptedModulePath(op) + "': " + message);
}

namespace {
/// Rewrites one graph: finds layers' nodes and inserts adapter nodes.
class AdapterWriter {
public:
  AdapterWriter(onnx::ModelProto &model) : graph(*model.mutable_graph()), model(model) {}

  llvm::Error write(Operation *adapter);
  void writeMetadata(ModuleOp module);

private:
  int findNode(llvm::function_ref<bool(const onnx::NodeProto &)> matches) const;
  int layerNode(Operation *layer) const;
  std::string layerOutput(Operation *layer, int node) const;
  std::string addTensor(Operation *adapter, Value weight, llvm::Error &error);
  std::string addConstant(llvm::ArrayRef<int64_t> values);
  std::string addScalar(float value);
  std::string fresh(llvm::StringRef hint);
  onnx::NodeProto makeNode(llvm::StringRef type, llvm::ArrayRef<std::string> inputs,
                           llvm::StringRef output);
  void insertAt(int position, std::vector<onnx::NodeProto> nodes);

  onnx::GraphProto &graph;
  onnx::ModelProto &model;
  int counter = 0;
  /// Per adapter: initializer name -> tensor name in adapter_model.safetensors.
  std::map<std::string, std::map<std::string, std::string>> tensorsByAdapter;
};
} // namespace

int AdapterWriter::findNode(llvm::function_ref<bool(const onnx::NodeProto &)> matches) const {
  for (int i = 0; i < graph.node_size(); ++i)
    if (matches(graph.node(i)))
      return i;
  return -1;
}

/// The node computing `layer`: the one reading its weight's initializer.
int AdapterWriter::layerNode(Operation *layer) const {
  Value weight = isa<LayerNormOp>(layer) ? cast<LayerNormOp>(layer).getWeight()
                                         : cast<AdaptableLayer>(layer).getWeight();
  auto weightOp = weight.getDefiningOp<WeightOp>();
  if (!weightOp)
    return -1;
  std::string name = weightOp.getName().str();
  return findNode([&](const onnx::NodeProto &node) {
    return node.input_size() > 1 && node.input(1) == name &&
           llvm::is_contained({"MatMul", "Gemm", "Conv", "LayerNormalization"}, node.op_type());
  });
}

/// The tensor holding `layer`'s output: its node's, or that of the Add of the
/// bias after a MatMul.
std::string AdapterWriter::layerOutput(Operation *layer, int node) const {
  std::string output = graph.node(node).output(0);
  auto linear = dyn_cast<LinearOp>(layer);
  auto bias = linear && linear.getBias() ? linear.getBias().getDefiningOp<WeightOp>() : WeightOp();
  if (!bias || graph.node(node).op_type() != "MatMul")
    return output;
  std::string biasName = bias.getName().str();
  int add = findNode([&](const onnx::NodeProto &candidate) {
    return candidate.op_type() == "Add" && llvm::is_contained(candidate.input(), output) &&
           llvm::is_contained(candidate.input(), biasName);
  });
  return add < 0 ? output : graph.node(add).output(0);
}

std::string AdapterWriter::fresh(llvm::StringRef hint) {
  return ("peft_mlir/" + hint + "_" + llvm::Twine(counter++)).str();
}

/// An adapter tensor as an initializer named as PEFT names it in memory.
std::string AdapterWriter::addTensor(Operation *adapter, Value weight, llvm::Error &error) {
  auto weightOp = weight.getDefiningOp<WeightOp>();
  StringRef adapterName = cast<AdapterOp>(adapter).getAdapterName();
  std::vector<uint8_t> storage;
  auto view = weightOp ? weightOp.read(storage)
                       : llvm::Expected<TensorView>(llvm::createStringError(
                             llvm::inconvertibleErrorCode(), "a tensor is computed"));
  if (!view) {
    error = adapterError(adapter, llvm::toString(view.takeError()));
    return "";
  }
  std::string name = adapterWeightName(weightOp.getName().str(), adapterName.str());
  tensorsByAdapter[adapterName.str()][name] = weightOp.getName().str();
  if (llvm::any_of(graph.initializer(), [&](const onnx::TensorProto &t) { return t.name() == name; }))
    return name; // Read twice.
  onnx::TensorProto &tensor = *graph.add_initializer();
  tensor.set_name(name);
  tensor.set_data_type(view->dtype == DType::F16    ? onnx::TensorProto::FLOAT16
                       : view->dtype == DType::BF16 ? onnx::TensorProto::BFLOAT16
                                                    : onnx::TensorProto::FLOAT);
  for (int64_t size : view->shape)
    tensor.add_dims(size);
  std::vector<float> wide;
  if (view->dtype != DType::F16 && view->dtype != DType::BF16 && view->dtype != DType::F32) {
    wide = view->toFloat32();
    tensor.set_raw_data(wide.data(), wide.size() * sizeof(float));
  } else {
    tensor.set_raw_data(view->data, view->byteSize);
  }
  return name;
}

std::string AdapterWriter::addConstant(llvm::ArrayRef<int64_t> values) {
  onnx::TensorProto &tensor = *graph.add_initializer();
  tensor.set_name(fresh("shape"));
  tensor.set_data_type(onnx::TensorProto::INT64);
  tensor.add_dims(values.size());
  tensor.set_raw_data(values.data(), values.size() * sizeof(int64_t));
  return tensor.name();
}

std::string AdapterWriter::addScalar(float value) {
  onnx::TensorProto &tensor = *graph.add_initializer();
  tensor.set_name(fresh("scale"));
  tensor.set_data_type(onnx::TensorProto::FLOAT);
  tensor.set_raw_data(&value, sizeof(value));
  return tensor.name();
}

onnx::NodeProto AdapterWriter::makeNode(llvm::StringRef type, llvm::ArrayRef<std::string> inputs,
                                        llvm::StringRef output) {
  onnx::NodeProto node;
  node.set_op_type(type.str());
  node.set_name(fresh(type));
  for (const std::string &input : inputs)
    node.add_input(input);
  node.add_output(output.str());
  return node;
}

/// Inserts `nodes` before the node at `position`, keeping the graph sorted.
void AdapterWriter::insertAt(int position, std::vector<onnx::NodeProto> nodes) {
  auto *all = graph.mutable_node();
  for (onnx::NodeProto &node : nodes)
    *all->Add() = std::move(node);
  std::rotate(all->begin() + position, all->end() - nodes.size(), all->end());
}

static void setInts(onnx::NodeProto &node, llvm::StringRef name, llvm::ArrayRef<int64_t> values) {
  onnx::AttributeProto &attribute = *node.add_attribute();
  attribute.set_name(name.str());
  attribute.set_type(onnx::AttributeProto::INTS);
  for (int64_t value : values)
    attribute.add_ints(value);
}

llvm::Error AdapterWriter::write(Operation *adapter) {
  auto lora = dyn_cast<LoraOp>(adapter);
  auto ia3 = dyn_cast<Ia3Op>(adapter);
  auto ssf = dyn_cast<SsfOp>(adapter);
  if ((!lora && !ia3 && !ssf) || (lora && lora.isEmbedding()))
    return adapterError(adapter, adapter->getName().getStringRef() +
                                     (lora ? " on an embedding" : "") +
                                     " has no ONNX form; only LoRA (linear, convolution), IA3 and "
                                     "SSF export unmerged");
  // The layer: at the start of the chain on whose output the adapter stands,
  // or the one reading its result (IA3 on a feed-forward layer's input).
  // A linear layer's input scale is [1, in]; its output scale [out, 1].
  auto scaleShape = ia3 ? ia3.getScale().getType().getShape() : ArrayRef<int64_t>();
  bool inputScale = scaleShape.size() == 2 && scaleShape[0] == 1 && scaleShape[1] > 1;
  Operation *layer = nullptr;
  for (Operation *op = adapter; op && !layer && !inputScale;) {
    auto adapterOp = dyn_cast<AdapterOp>(op);
    if (isa<AdaptableLayer, LayerNormOp>(op))
      layer = op;
    else if (!adapterOp)
      break;
    else
      op = adapterOp.getAdapted().getDefiningOp();
  }
  bool onInput = !layer;
  for (Operation *user : adapter->getUsers())
    if (onInput && isa<AdaptableLayer>(user))
      layer = user;
  int node = layer ? layerNode(layer) : -1;
  if (node < 0)
    return adapterError(adapter, "its layer has no node in the source model that reads the "
                                 "layer's weight by name");
  llvm::Error error = llvm::Error::success();
  std::vector<onnx::NodeProto> nodes;
  bool conv = isa<ConvOp>(layer);
  StringRef adapterName = cast<AdapterOp>(adapter).getAdapterName();
  if (onInput) { // x' = x ⊙ l for this layer alone.
    std::string scaled = fresh(adapterName.str() + "/ia3");
    nodes.push_back(makeNode("Mul", {graph.node(node).input(0), addTensor(adapter, ia3.getScale(), error)},
                             scaled));
    graph.mutable_node(node)->set_input(0, scaled);
    insertAt(node, std::move(nodes));
    return error;
  }
  // The layer's output is renamed; the adapter's last node takes its name, so
  // every reader (and a graph output) sees the adapted value.
  std::string output = layerOutput(layer, node);
  std::string base = fresh(adapterName.str() + "/base");
  int producer = findNode([&](const onnx::NodeProto &candidate) {
    return llvm::is_contained(candidate.output(), output);
  });
  for (std::string &name : *graph.mutable_node(producer)->mutable_output())
    if (name == output)
      name = base;
  if (ia3) {
    std::string scale = addTensor(adapter, ia3.getScale(), error);
    if (!conv) { // [out, 1] runs along the last dimension.
      std::string flat = fresh("ia3_l");
      nodes.push_back(makeNode("Reshape", {scale, addConstant({-1})}, flat));
      scale = flat;
    }
    nodes.push_back(makeNode("Mul", {base, scale}, output));
  } else if (ssf) {
    std::string scale = addTensor(adapter, ssf.getScale(), error);
    std::string shift = addTensor(adapter, ssf.getShift(), error);
    if (conv) { // [C] runs along dimension 1 of [N, C, H, W].
      std::string shape = addConstant({-1, 1, 1});
      std::string scale3 = fresh("ssf_scale"), shift3 = fresh("ssf_shift");
      nodes.push_back(makeNode("Reshape", {scale, shape}, scale3));
      nodes.push_back(makeNode("Reshape", {shift, shape}, shift3));
      scale = scale3, shift = shift3;
    }
    std::string scaled = fresh("ssf");
    nodes.push_back(makeNode("Mul", {base, scale}, scaled));
    nodes.push_back(makeNode("Add", {scaled, shift}, output));
  } else {
    std::string input = graph.node(node).input(0);
    std::string a = addTensor(adapter, lora.getLoraA(), error);
    std::string b = addTensor(adapter, lora.getLoraB(), error);
    std::string down = fresh("lora_down"), up = fresh("lora_up"), scaled = fresh("lora_scaled");
    if (conv) { // A with the layer's window, B as a 1×1 convolution.
      auto layerConv = cast<ConvOp>(layer);
      onnx::NodeProto downNode = makeNode("Conv", {input, a}, down);
      setInts(downNode, "strides", layerConv.getStrides());
      setInts(downNode, "pads", layerConv.getPads());
      nodes.push_back(std::move(downNode));
      std::vector<std::string> upInputs = {down, b};
      if (lora.getLoraBias())
        upInputs.push_back(addTensor(adapter, lora.getLoraBias(), error));
      nodes.push_back(makeNode("Conv", upInputs, up));
    } else { // (x·Aᵀ)·Bᵀ (+ lora_bias)
      std::string aT = fresh("lora_A_t"), bT = fresh("lora_B_t");
      for (auto [weight, transposed] : {std::pair(a, aT), std::pair(b, bT)})
        nodes.push_back(makeNode("Transpose", {weight}, transposed));
      nodes.push_back(makeNode("MatMul", {input, aT}, down));
      std::string product = lora.getLoraBias() ? fresh("lora_product") : up;
      nodes.push_back(makeNode("MatMul", {down, bT}, product));
      if (lora.getLoraBias())
        nodes.push_back(makeNode("Add", {product, addTensor(adapter, lora.getLoraBias(), error)}, up));
    }
    nodes.push_back(makeNode("Mul", {up, addScalar(lora.getScale().convertToFloat())}, scaled));
    nodes.push_back(makeNode("Add", {base, scaled}, output));
  }
  insertAt(producer + 1, std::move(nodes));
  return error;
}

void AdapterWriter::writeMetadata(ModuleOp module) {
  auto configs = module->getAttrOfType<DictionaryAttr>(kAdapterConfigsAttr);
  for (const auto &[adapter, tensors] : tensorsByAdapter) {
    auto config = configs ? configs.getAs<StringAttr>(adapter) : StringAttr();
    onnx::StringStringEntryProto &configEntry = *model.add_metadata_props();
    configEntry.set_key("peft_mlir.adapter." + adapter + ".config");
    configEntry.set_value(config ? config.str() : std::string("{}"));
    onnx::StringStringEntryProto &tensorEntry = *model.add_metadata_props();
    tensorEntry.set_key("peft_mlir.adapter." + adapter + ".tensors");
    tensorEntry.set_value(nlohmann::ordered_json(tensors).dump());
  }
}

llvm::Error exportAdapters(ModuleOp module, onnx::ModelProto &model) {
  AdapterWriter writer(model);
  llvm::Error error = llvm::Error::success();
  module.walk([&](Operation *op) {
    if (!isa<AdapterOp>(op))
      return WalkResult::advance();
    error = writer.write(op);
    return error ? WalkResult::interrupt() : WalkResult::advance();
  });
  if (!error)
    writer.writeMetadata(module);
  return error;
}

/// Writes one adapter directory: into a staging directory beside it, then
/// renamed, so that it appears complete or not at all.
static llvm::Error writeAdapterDirectory(llvm::StringRef directory, llvm::StringRef config,
                                         const std::map<std::string, TensorView> &tensors) {
  auto fail = [&](const llvm::Twine &what, std::error_code error) {
    return llvm::createStringError(error, directory + ": " + what + ": " + error.message());
  };
  llvm::sys::fs::file_status status;
  if (!llvm::sys::fs::status(directory, status, /*follow=*/false))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   directory + ": exists; not replacing it");
  llvm::SmallString<256> staging;
  if (std::error_code error =
          llvm::sys::fs::createUniqueDirectory((directory + ".tmp").str(), staging))
    return fail("cannot create a staging directory", error);
  llvm::SmallString<256> configPath(staging), weightsPath(staging);
  llvm::sys::path::append(configPath, "adapter_config.json");
  llvm::sys::path::append(weightsPath, "adapter_model.safetensors");
  llvm::Error error = writeFileAtomically(configPath, [&](llvm::raw_ostream &os) {
    os << config;
    return llvm::Error::success();
  });
  if (!error)
    error = writeSafetensors(weightsPath, tensors);
  if (!error)
    if (std::error_code renamed = llvm::sys::fs::rename(staging, directory))
      error = fail("cannot move the adapter into place", renamed);
  if (error)
    llvm::sys::fs::remove_directories(staging);
  return error;
}

llvm::Error extractAdapters(llvm::StringRef modelPath, llvm::StringRef outputDir) {
  auto source = OnnxWeightSource::open(modelPath);
  if (!source)
    return source.takeError();
  const onnx::ModelProto &model = *(*source)->getModel();
  auto error = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), modelPath + ": " + message);
  };
  std::map<std::string, std::pair<std::string, std::string>> adapters; // name -> config, tensors
  for (const onnx::StringStringEntryProto &entry : model.metadata_props()) {
    llvm::StringRef key(entry.key());
    if (!key.consume_front("peft_mlir.adapter."))
      continue;
    if (key.consume_back(".config"))
      adapters[key.str()].first = entry.value();
    else if (key.consume_back(".tensors"))
      adapters[key.str()].second = entry.value();
  }
  if (adapters.empty())
    return error("holds no adapters exported by peft-mlir (no peft_mlir.adapter.* metadata)");
  if (std::error_code created = llvm::sys::fs::create_directories(outputDir))
    return error(outputDir + ": cannot create: " + created.message());
  for (const auto &[name, entry] : adapters) {
    // The name becomes a directory under outputDir: never a path out of it.
    if (name.empty() || name == "." || name == ".." ||
        name.find_first_of("/\\") != std::string::npos || name.find('\0') != std::string::npos)
      return error("adapter name '" + llvm::StringRef(name).take_front(60) +
                   "' (peft_mlir.adapter.* metadata) is not a plain directory name");
    auto tensorNames = nlohmann::json::parse(entry.second, nullptr, /*allow_exceptions=*/false);
    if (!tensorNames.is_object())
      return error("adapter '" + name + "': its tensor map is not a JSON object");
    std::map<std::string, TensorView> tensors;
    for (const auto &[initializer, fileName] : tensorNames.items()) {
      const TensorView *view = (*source)->find(initializer);
      if (!view || !fileName.is_string())
        return error("adapter '" + name + "': initializer '" + initializer + "' is missing");
      tensors[fileName.get<std::string>()] = *view;
    }
    llvm::SmallString<256> directory(outputDir);
    llvm::sys::path::append(directory, name);
    if (llvm::Error written = writeAdapterDirectory(directory, entry.first, tensors))
      return written;
  }
  return llvm::Error::success();
}

} // namespace peft
