//===- OnnxExporter.cpp - Merged models back to ONNX ------------------------===//
#include "frontends/onnx/OnnxExporter.h"

#include "frontends/onnx/OnnxWeights.h"

#include "dialects/peft/PeftDialect.h"

#include "onnx/checker.h"

#include <cstring>
#include <limits>

using namespace mlir;

namespace peft {

static llvm::Error exportError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// The tensor that holds `name` in `graph`: an initializer, or the value of
/// a Constant node.
static onnx::TensorProto *findTensor(onnx::GraphProto &graph, llvm::StringRef name) {
  for (onnx::TensorProto &initializer : *graph.mutable_initializer())
    if (initializer.name() == name)
      return &initializer;
  for (onnx::NodeProto &node : *graph.mutable_node())
    if (node.op_type() == "Constant" && node.output_size() == 1 && node.output(0) == name)
      for (onnx::AttributeProto &attribute : *node.mutable_attribute())
        if (attribute.name() == "value" && attribute.has_t())
          return attribute.mutable_t();
  return nullptr;
}

/// A tensor of its own for `name` when the graph computes it as an Identity
/// of an initializer (how torch's exporter shares equal parameters): the
/// Identity node gives way to a copy of the initializer under `name`. Sets
/// `sourceName` to the initializer's name.
static onnx::TensorProto *unshareIdentity(onnx::GraphProto &graph, llvm::StringRef name,
                                          std::string &sourceName) {
  auto *nodes = graph.mutable_node();
  for (int i = 0; i < nodes->size(); ++i) {
    const onnx::NodeProto &node = nodes->Get(i);
    if (node.op_type() != "Identity" || node.output(0) != name)
      continue;
    sourceName = node.input(0);
    onnx::TensorProto *shared = findTensor(graph, sourceName);
    if (!shared)
      return nullptr;
    onnx::TensorProto copy = *shared;
    copy.set_name(name.str());
    nodes->DeleteSubrange(i, 1);
    *graph.add_initializer() = std::move(copy);
    return &graph.mutable_initializer()->at(graph.initializer_size() - 1);
  }
  return nullptr;
}

/// Stores `bytes` in `tensor` as raw little-endian data, in place of its
/// typed fields or external file.
static void setRawData(onnx::TensorProto &tensor, llvm::ArrayRef<uint8_t> bytes) {
  tensor.clear_float_data();
  tensor.clear_double_data();
  tensor.clear_int32_data();
  tensor.clear_int64_data();
  tensor.clear_uint64_data();
  tensor.clear_external_data();
  tensor.set_data_location(onnx::TensorProto::DEFAULT);
  tensor.set_raw_data(bytes.data(), bytes.size());
}

/// The weights adapter ops read as their own tensors.
static llvm::DenseSet<Operation *> adapterTensors(ModuleOp module) {
  llvm::DenseSet<Operation *> tensors;
  module.walk([&](Operation *op) {
    if (isa<AdapterOp>(op))
      for (OpOperand *use : adapterTensorUses(op))
        tensors.insert(use->get().getDefiningOp());
  });
  return tensors;
}

/// Copies the value of every weight that differs from the source model into
/// `model`; other weights read from other files are an error.
static llvm::Error replaceWeights(ModuleOp module, llvm::StringRef sourcePath,
                                  const OnnxWeightSource &source, onnx::ModelProto &model) {
  llvm::Error error = llvm::Error::success();
  llvm::DenseSet<Operation *> skipped = adapterTensors(module); // Written by exportAdapters.
  llvm::StringMap<std::vector<uint8_t>> written; // Two values for one name is an error.
  module.walk([&](WeightOp weight) {
    if (error)
      return WalkResult::interrupt();
    if (skipped.contains(weight))
      return WalkResult::advance();
    if (weight.getFile() && *weight.getFile() != sourcePath) {
      error = exportError("weight '" + weight.getName() + "' comes from '" + *weight.getFile() +
                          "', not from the source model");
      return WalkResult::interrupt();
    }
    if (!weight.getValue() || weight.getType().getElementType().isInteger(1))
      return WalkResult::advance();
    std::vector<uint8_t> storage;
    llvm::Expected<TensorView> merged = weight.read(storage);
    std::string sourceName = weight.getName().str();
    onnx::TensorProto *target = findTensor(*model.mutable_graph(), weight.getName());
    bool unshared = !target; // A copy of a tensor whose value may have changed already.
    if (unshared)
      target = unshareIdentity(*model.mutable_graph(), weight.getName(), sourceName);
    const TensorView *original = source.find(sourceName);
    auto bytes = merged ? llvm::ArrayRef(merged->data, merged->byteSize) : llvm::ArrayRef<uint8_t>();
    auto [previous, first] = written.try_emplace(weight.getName(), bytes.begin(), bytes.end());
    if (!merged) {
      error = merged.takeError();
    } else if (!first && llvm::ArrayRef(previous->second) != bytes) {
      error = exportError("weight '" + weight.getName() +
                          "' has two different values: the source model shares one tensor "
                          "between modules that the adapters change differently");
    } else if (!target || !original) {
      error = exportError("weight '" + weight.getName() + "' is not a tensor of the source model");
    } else if (original->dtype != merged->dtype || original->shape != merged->shape) {
      error = exportError("weight '" + weight.getName() + "' is " + formatShape(merged->shape) +
                          " " + dtypeName(merged->dtype) + " but the source model has " +
                          formatShape(original->shape) + " " + dtypeName(original->dtype));
    } else if (unshared || std::memcmp(original->data, merged->data, merged->byteSize) != 0) {
      setRawData(*target, llvm::ArrayRef(merged->data, merged->byteSize));
    }
    return error ? WalkResult::interrupt() : WalkResult::advance();
  });
  return error;
}

/// Brings initializers kept in external files into the model, so that it is
/// one self-contained file wherever it is written, and puts back the bytes
/// that loading left in the mapped source file (unless a merged value took
/// their place).
static llvm::Error inlineExternalData(const OnnxWeightSource &source, onnx::ModelProto &model) {
  for (onnx::TensorProto &initializer : *model.mutable_graph()->mutable_initializer()) {
    bool external = initializer.data_location() == onnx::TensorProto::EXTERNAL;
    bool inFile = !initializer.has_raw_data() && source.keepsInFile(initializer.name());
    if (!external && !inFile)
      continue;
    const TensorView *view = source.find(initializer.name());
    if (!view)
      return exportError("initializer '" + initializer.name() + "' cannot be read");
    setRawData(initializer, llvm::ArrayRef(view->data, view->byteSize));
  }
  return llvm::Error::success();
}

llvm::Error exportOnnx(ModuleOp module, llvm::raw_ostream &os) {
  auto sourceAttr = module->getAttrOfType<StringAttr>(kSourceModelAttr);
  if (!sourceAttr)
    return exportError("the module has no '" + kSourceModelAttr +
                       "' attribute: only models imported from ONNX can be exported");
  auto source = OnnxWeightSource::open(sourceAttr.getValue());
  if (!source)
    return source.takeError();
  onnx::ModelProto model = *(*source)->getModel();
  if (llvm::Error error = exportAdapters(module, model))
    return error;
  if (llvm::Error error = replaceWeights(module, sourceAttr.getValue(), **source, model))
    return error;
  if (llvm::Error error = inlineExternalData(**source, model))
    return error;
  if (model.ByteSizeLong() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return exportError("the model is larger than 2 GB, the limit of a single ONNX file");
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception &failure) {
    return exportError(llvm::Twine("the exported model fails ONNX's checker: ") + failure.what());
  }
  std::string bytes = model.SerializeAsString();
  os.write(bytes.data(), bytes.size());
  return llvm::Error::success();
}

} // namespace peft
