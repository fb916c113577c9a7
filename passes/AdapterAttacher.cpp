//===- AdapterAttacher.cpp - Put adapter ops on the layers they target ------===//
#include "passes/AdapterAttacher.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cstring>

using namespace mlir;
using namespace peft;

namespace {

/// Finds the layer a module path names: the exact path, else the one layer
/// whose path and the adapter's differ only by a leading prefix (the model may
/// have been exported from `model.bert` while PEFT wrapped `model`).
template <typename Layer>
FailureOr<Layer> findLayer(const llvm::StringMap<Layer> &layers, StringRef path) {
  if (auto found = layers.find(path); found != layers.end())
    return found->second;
  Layer match;
  for (const auto &[layerPath, layer] : layers) {
    StringRef longer = path.size() > layerPath.size() ? path : StringRef(layerPath);
    StringRef shorter = path.size() > layerPath.size() ? StringRef(layerPath) : path;
    if (!longer.ends_with(("." + shorter).str()))
      continue;
    if (match)
      return failure(); // Ambiguous.
    match = layer;
  }
  if (!match)
    return failure();
  return match;
}

/// An adapter tensor as a weight: one that references the adapter's file, or,
/// for an adapter made in memory, one holding a copy of the values.
Value adapterWeight(OpBuilder &builder, Location loc, const LoraAdapter &adapter,
                    const std::string &tensor, const TensorView &view) {
  auto type = RankedTensorType::get(view.shape, elementTypeOf(view.dtype, builder.getContext()));
  if (!adapter.weightsFile.empty())
    return WeightOp::create(builder, loc, type, builder.getStringAttr(tensor),
                            builder.getStringAttr(adapter.weightsFile), ElementsAttr());
  ArrayRef<char> bytes(reinterpret_cast<const char *>(view.data), view.byteSize);
  auto blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(bytes, alignof(double));
  return WeightOp::create(builder, loc, type, builder.getStringAttr(tensor), StringAttr(),
                          makeWeightValue(type, std::move(blob), tensor));
}

/// The output of `layer` after the adapters already attached to it: new
/// adapters go there, so that LoRA outputs add up.
Value lastOutput(Operation *layer) {
  SmallVector<Operation *> chain = outputAdapters(layer);
  return chain.empty() ? layer->getResult(0) : chain.back()->getResult(0);
}

/// Why the module's tensors cannot go on this kind of layer; empty when they
/// can.
std::string checkLayerKind(AdaptableLayer layer, const LoraModule &module) {
  return TypeSwitch<Operation *, std::string>(layer)
      .Case([&](LinearOp) -> std::string {
        if (module.embedding || module.isConvolution())
          return std::string("a linear layer takes lora_A.weight [r, in]");
        return std::string();
      })
      .Case([&](EmbeddingOp) -> std::string {
        if (!module.embedding)
          return std::string("an embedding takes lora_embedding_A / lora_embedding_B");
        if (!module.tensorBias.empty() || !module.tensorMagnitude.empty())
          return std::string("lora_bias and DoRA on an embedding are not supported");
        return std::string();
      })
      .Case([&](ConvOp conv) -> std::string {
        if (!module.isConvolution())
          return std::string("a convolution takes lora_A.weight [r, C, kernel...]");
        if (conv.getGroups() != 1 || llvm::any_of(conv.getDilations(), [](int64_t d) { return d != 1; }))
          return std::string("LoRA on a grouped or dilated convolution is not supported");
        auto weight = conv.getWeight().getDefiningOp<WeightOp>();
        if (weight && !weight.getName().ends_with("weight"))
          return ("its weight in the model is '" + weight.getName() +
                  "', not the module's own: the exporter folded another op (BatchNorm?) into "
                  "it; export with do_constant_folding=False")
              .str();
        return std::string();
      })
      .Default([](Operation *) { return std::string("the layer cannot take LoRA"); });
}

/// The matrix a LoHa or LoKr factor (`hada_w1`, `lokr_w2`, ...) stands for:
/// given whole (read as [rows, the rest]), as the product of `_a` and `_b`,
/// or in the CP form ([out, in·kernel] from `_a` [r, out], `_b` [r, in] and
/// the core's kernel).
std::pair<int64_t, int64_t> factorMatrix(const FactoredModule &module, const std::string &name) {
  if (const FactoredModule::Factor *whole = module.find(name))
    return {whole->view.shape[0], whole->view.numElements() / whole->view.shape[0]};
  const std::vector<int64_t> &a = module.find(name + "_a")->view.shape;
  const std::vector<int64_t> &b = module.find(name + "_b")->view.shape;
  if (const FactoredModule::Factor *core = module.core(name))
    return {a[1], b[1] * core->view.numElements() / (core->view.shape[0] * core->view.shape[1])};
  return {a[0], b[1]};
}

/// The weight op behind a layer's weight ("weight") or bias ("bias").
WeightOp layerParameter(AdaptableLayer layer, StringRef parameter) {
  Value value = parameter == "weight" ? layer.getWeight()
                : parameter == "bias"   ? layer.getBias()
                                        : Value();
  return value ? value.getDefiningOp<WeightOp>() : WeightOp();
}

/// `bytes` of a [rows, columns] matrix of `elementSize`-byte elements, as
/// [columns, rows].
std::vector<char> transposeBytes(ArrayRef<char> bytes, int64_t rows, int64_t columns,
                                 size_t elementSize) {
  std::vector<char> transposed(bytes.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c)
      std::memcpy(&transposed[(c * rows + r) * elementSize], &bytes[(r * columns + c) * elementSize],
                  elementSize);
  return transposed;
}

} // namespace

AdapterAttacher::AdapterAttacher(ModuleOp module) : module(module) {
  module.walk([&](AdaptableLayer layer) { layers[layer.getModulePath()] = layer; });
  module.walk([&](LayerNormOp norm) { norms[norm.getModulePath()] = norm; });
}

LogicalResult AdapterAttacher::attach(LoraAdapter &adapter, double weight) {
  bool mapsActivations = !adapter.ia3Modules.empty() || !adapter.ssfModules.empty() ||
                         !adapter.residualModules.empty();
  if (mapsActivations && weight != 1)
    return module.emitError("adapter '")
           << adapter.name << "': " << adapter.config.peftType
           << " adapters map activations; only weight deltas can be weighted";
  for (LoraModule &lora : adapter.modules) {
    lora.scale *= weight; // The exact weighted sum of the deltas.
    if (failed(attach(adapter, lora)))
      return failure();
  }
  for (FactoredModule &factored : adapter.factoredModules) {
    factored.scale *= weight;
    if (failed(attachFactored(adapter, factored)))
      return failure();
  }
  for (const Ia3Module &ia3 : adapter.ia3Modules)
    if (failed(attachIa3(adapter, ia3)))
      return failure();
  for (const SsfModule &ssf : adapter.ssfModules)
    if (failed(attachSsf(adapter, ssf)))
      return failure();
  for (const ResidualAdapterModule &residual : adapter.residualModules)
    if (failed(attachResidual(adapter, residual)))
      return failure();
  for (const ReplacedParameter &parameter : adapter.replacedParameters)
    if (failed(replaceParameter(adapter, parameter)))
      return failure();
  if (adapter.config.peftType == "STDHA" && failed(attachHeadShifts(adapter)))
    return failure();
  NamedAttrList configs(module->getAttrOfType<DictionaryAttr>(kAdapterConfigsAttr));
  configs.set(adapter.name, StringAttr::get(module.getContext(), adapter.config.text));
  module->setAttr(kAdapterConfigsAttr, configs.getDictionary(module.getContext()));
  return success();
}

/// The layer an adapter's tensor targets, or an error naming both.
FailureOr<AdaptableLayer> AdapterAttacher::findTarget(const LoraAdapter &adapter, StringRef tensor,
                                     StringRef path) {
  FailureOr<AdaptableLayer> layer = findLayer(layers, path);
  if (failed(layer))
    module.emitError() << adapter.weightsFile << ": tensor '" << tensor
                               << "' targets module '" << path
                               << "', which is not a layer of the model (or names several)";
  return layer;
}

LogicalResult AdapterAttacher::attach(const LoraAdapter &adapter, const LoraModule &module) {
  FailureOr<AdaptableLayer> found = findTarget(adapter, module.tensorA, module.modulePath);
  if (failed(found))
    return failure();
  AdaptableLayer layer = *found;
  std::string unfit = checkLayerKind(layer, module);
  if (!unfit.empty())
    return layer->emitError() << adapter.weightsFile << ": tensor '" << module.tensorA
                              << "' targets module '" << module.modulePath << "', a "
                              << layer->getName() << " layer: " << unfit;
  int64_t weightIn = module.embedding ? module.a.shape[1] : module.a.numElements() / module.a.shape[0];
  if (weightIn != layer.getInFeatures() || module.b.shape[0] != layer.getOutFeatures())
    return layer->emitError()
           << adapter.weightsFile << ": tensors '" << module.tensorA << "' "
           << formatShape(module.a.shape) << " and '" << module.tensorB << "' "
           << formatShape(module.b.shape) << " do not fit module '" << layer.getModulePath()
           << "' with weight " << formatShape(layer.getWeight().getType().getShape());

  Value base = lastOutput(layer);
  OpBuilder builder(base.getContext());
  builder.setInsertionPointAfterValue(base);
  Location loc = layer.getLoc();
  auto fileWeight = [&](const std::string &tensor, const TensorView &view) {
    return tensor.empty() ? Value()
                          : adapterWeight(builder, loc, adapter, tensor, view);
  };
  Value a = fileWeight(module.tensorA, module.a), b = fileWeight(module.tensorB, module.b);
  auto conv = dyn_cast<ConvOp>(layer.getOperation());
  DenseI64ArrayAttr strides = conv ? conv.getStridesAttr() : DenseI64ArrayAttr();
  DenseI64ArrayAttr pads = conv ? conv.getPadsAttr() : DenseI64ArrayAttr();
  StringAttr name = builder.getStringAttr(adapter.name);
  FloatAttr scale = builder.getF32FloatAttr(module.scale);
  Operation *adapterOp;
  if (module.tensorMagnitude.empty()) {
    adapterOp = LoraOp::create(builder, loc, base.getType(), name, layer.getInput(), base, a, b,
                               fileWeight(module.tensorBias, module.bias), scale, strides, pads);
  } else {
    adapterOp = DoraOp::create(builder, loc, base.getType(), name, layer.getInput(), base,
                               layer.getWeight(), a, b,
                               fileWeight(module.tensorMagnitude, module.magnitude),
                               layer.getBias(), scale,
                               layer.getWeightInOut() ? builder.getUnitAttr() : UnitAttr(),
                               strides, pads);
  }
  base.replaceAllUsesExcept(adapterOp->getResult(0), adapterOp);
  return success();
}

/// LoHa and LoKr: the weight delta built from the factors in PyTorch's
/// layout, added through the layer's op by a peft.add_delta.
LogicalResult AdapterAttacher::attachFactored(const LoraAdapter &adapter, const FactoredModule &module) {
  const std::string &someTensor = module.factors.begin()->second.tensor;
  FailureOr<AdaptableLayer> found = findTarget(adapter, someTensor, module.modulePath);
  if (failed(found))
    return failure();
  AdaptableLayer layer = *found;
  auto conv = dyn_cast<ConvOp>(layer.getOperation());
  if (!conv && !isa<LinearOp>(layer.getOperation()))
    return layer->emitError() << adapter.weightsFile << ": tensor '" << someTensor
                              << "' targets module '" << module.modulePath << "', a "
                              << layer->getName() << " layer; " << adapter.config.peftType
                              << " adapts linear and convolution layers";
  SmallVector<int64_t> torchShape(layer.getWeight().getType().getShape());
  if (!conv)
    torchShape = {layer.getOutFeatures(), layer.getInFeatures()};

  bool loha = adapter.config.peftType == "LOHA";
  // PEFT writes the CP form only for a convolution's kernel other than 1×1,
  // and the core carries that kernel's shape.
  if (const FactoredModule::Factor *core = module.core(loha ? "hada_w1" : "lokr_w2")) {
    ArrayRef<int64_t> kernel = ArrayRef<int64_t>(core->view.shape).drop_front(2);
    if (!conv || ArrayRef<int64_t>(torchShape).drop_front(2) != kernel)
      return layer->emitError() << adapter.weightsFile << ": tensor '" << core->tensor
                                << "' is a CP core for a " << formatShape(kernel)
                                << " kernel (use_effective_conv2d), but module '"
                                << module.modulePath << "' is a " << layer->getName()
                                << " layer with weight " << formatShape(torchShape);
  }
  auto [rows1, columns1] = factorMatrix(module, loha ? "hada_w1" : "lokr_w1");
  auto [rows2, columns2] = factorMatrix(module, loha ? "hada_w2" : "lokr_w2");
  int64_t out = torchShape[0], in = layer.getWeight().getType().getNumElements() / out;
  bool fits = loha ? rows1 == out && columns1 == in
                   : rows1 * rows2 == out && columns1 * columns2 == in;
  if (!fits)
    return layer->emitError() << adapter.weightsFile << ": the " << adapter.config.peftType
                              << " factors of module '" << module.modulePath << "' make a ["
                              << (loha ? rows1 : rows1 * rows2) << ", "
                              << (loha ? columns1 : columns1 * columns2)
                              << "] delta, but its weight is " << formatShape(torchShape);

  Value base = lastOutput(layer);
  OpBuilder builder(base.getContext());
  builder.setInsertionPointAfterValue(base);
  Location loc = layer.getLoc();
  auto weightOf = [&](const FactoredModule::Factor *found) -> Value {
    return found ? adapterWeight(builder, loc, adapter, found->tensor, found->view) : Value();
  };
  auto factor = [&](StringRef name) { return weightOf(module.find(name)); };
  // The products and the delta are of the layer's compute type (f32 for a
  // half-precision layer) whatever the factors' types.
  Type computeType = computeTypeOf(layer.getWeight().getType().getElementType());
  // A side given as `_a` and `_b`: their product, or in the CP form the
  // core contracted with both, as the matrix [out, in·kernel].
  auto product = [&](const std::string &side) -> Value {
    auto [rows, columns] = factorMatrix(module, side);
    auto type = RankedTensorType::get({rows, columns}, computeType);
    // Separate statements fix the order in which the weights are created.
    Value core = weightOf(module.core(side));
    Value a = factor(side + "_a");
    Value b = factor(side + "_b");
    if (core)
      return CpProductOp::create(builder, loc, type, core, a, b);
    return FactorProductOp::create(builder, loc, type, a, b);
  };
  FloatAttr scale = builder.getF32FloatAttr(module.scale);
  auto deltaType = RankedTensorType::get(torchShape, computeType);
  Value first, second;
  if (loha) {
    first = product("hada_w1");
    second = product("hada_w2");
  } else {
    first = module.find("lokr_w1") ? factor("lokr_w1") : product("lokr_w1");
    second = module.find("lokr_w2") ? factor("lokr_w2") : product("lokr_w2");
  }
  Value delta = loha ? LohaDeltaOp::create(builder, loc, deltaType, first, second, scale).getResult()
                    : LokrDeltaOp::create(builder, loc, deltaType, first, second, scale).getResult();
  auto addDelta = AddDeltaOp::create(
      builder, loc, base.getType(), builder.getStringAttr(adapter.name), layer.getInput(), base,
      delta, conv ? conv.getStridesAttr() : DenseI64ArrayAttr(),
      conv ? conv.getDilationsAttr() : DenseI64ArrayAttr(),
      conv ? conv.getPadsAttr() : DenseI64ArrayAttr(), conv ? conv.getGroupsAttr() : IntegerAttr());
  base.replaceAllUsesExcept(addDelta.getResult(), addDelta);
  return success();
}

/// The weight op a replaced parameter names: a layer's weight or bias, else
/// a weight of the model called `<module>.<parameter>`.
WeightOp AdapterAttacher::findParameter(const ReplacedParameter &parameter) {
  if (FailureOr<AdaptableLayer> layer = findLayer(layers, parameter.modulePath); succeeded(layer))
    return layerParameter(*layer, parameter.parameter);
  std::string name = parameter.modulePath + "." + parameter.parameter;
  WeightOp found;
  module.walk([&](WeightOp weight) {
    StringRef weightName = weight.getName();
    if (weightName == name || weightName.ends_with("." + name) ||
        StringRef(name).ends_with(("." + weightName).str()))
      found = weight;
  });
  return found;
}

/// Gives the model the adapter's copy of a whole parameter (modules_to_save,
/// or a bias saved with bias = "all" / "lora_only"), under the model's name
/// for it so that an ONNX export writes it there.
LogicalResult AdapterAttacher::replaceParameter(const LoraAdapter &adapter, const ReplacedParameter &parameter) {
  WeightOp old = findParameter(parameter);
  auto error = [&]() {
    return module.emitError()
           << adapter.weightsFile << ": tensor '" << parameter.tensor << "' replaces ";
  };
  if (!old)
    return error() << "parameter '" << parameter.parameter << "' of module '"
                   << parameter.modulePath
                   << "', which is not a named weight of the model (the exporter may have "
                      "folded, renamed or shared it)";
  RankedTensorType type = old.getType();
  const TensorView &view = parameter.value;
  auto layer = findLayer(layers, parameter.modulePath);
  bool transpose = succeeded(layer) && isa<LinearOp>(layer->getOperation()) &&
                   layer->getWeightInOut() && parameter.parameter == "weight" &&
                   !adapter.config.fanInFanOut && view.shape.size() == 2;
  SmallVector<int64_t> shape(view.shape.begin(), view.shape.end());
  if (transpose)
    std::swap(shape[0], shape[1]);
  if (elementTypeOf(view.dtype, module.getContext()) != type.getElementType() ||
      ArrayRef<int64_t>(shape) != type.getShape())
    return error() << "'" << old.getName() << "' of module '" << parameter.modulePath
                   << "' but is " << dtypeName(view.dtype) << " " << formatShape(view.shape)
                   << " where the model has "
                   << dtypeName(dtypeOf(type.getElementType()).value_or(view.dtype)) << " "
                   << formatShape(type.getShape());
  ArrayRef<char> bytes(reinterpret_cast<const char *>(view.data), view.byteSize);
  std::vector<char> transposed;
  if (transpose) {
    transposed = transposeBytes(bytes, view.shape[0], view.shape[1],
                                dtypeBits(view.dtype) / 8);
    bytes = transposed;
  }
  OpBuilder builder(old);
  auto blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(bytes, alignof(double));
  auto replacement = WeightOp::create(builder, old.getLoc(), type, old.getNameAttr(), StringAttr(),
                                      makeWeightValue(type, std::move(blob), old.getName()));
  old.getResult().replaceAllUsesWith(replacement.getResult());
  old.erase();
  return success();
}

/// IA3: a peft.ia3 on the layer's output, or, for a feed-forward module, on
/// the layer's own input (other layers reading the same value keep it).
LogicalResult AdapterAttacher::attachIa3(const LoraAdapter &adapter, const Ia3Module &module) {
  FailureOr<AdaptableLayer> layer = findTarget(adapter, module.tensor, module.modulePath);
  if (failed(layer))
    return failure();
  auto conv = dyn_cast<ConvOp>(layer->getOperation());
  if (!conv && !isa<LinearOp>(layer->getOperation()))
    return layer->emitError() << adapter.weightsFile << ": tensor '" << module.tensor
                              << "' targets module '" << module.modulePath << "', a "
                              << layer->getOperation()->getName()
                              << " layer; IA3 adapts linear and convolution layers";
  int64_t channels = !module.feedforward ? layer->getOutFeatures()
                     : conv ? conv.getWeight().getType().getDimSize(1) * conv.getGroups()
                            : layer->getInFeatures();
  bool convolutionShape = module.scale.shape.size() > 2;
  if (module.scale.numElements() != channels || bool(conv) != convolutionShape)
    return layer->emitError() << adapter.weightsFile << ": tensor '" << module.tensor << "' "
                              << formatShape(module.scale.shape) << " does not fit module '"
                              << module.modulePath << "' with " << channels
                              << (module.feedforward ? " inputs" : " outputs")
                              << (conv ? " (a convolution takes [1, C, 1...])" : "");
  OpBuilder builder(*layer);
  Location loc = layer->getLoc();
  Value scale = adapterWeight(builder, loc, adapter, module.tensor, module.scale);
  StringAttr name = builder.getStringAttr(adapter.name);
  if (module.feedforward) {
    Value input = layer->getInput();
    auto ia3 = Ia3Op::create(builder, loc, input.getType(), name, input, scale);
    layer->getOperation()->setOperand(0, ia3); // Every layer's input comes first.
    return success();
  }
  Value base = lastOutput(*layer);
  builder.setInsertionPointAfterValue(base);
  auto ia3 = Ia3Op::create(builder, loc, base.getType(), name, base, scale);
  base.replaceAllUsesExcept(ia3.getResult(), ia3);
  return success();
}

/// SSF: a peft.ssf on the output of a linear layer, a convolution or a
/// layer norm (normalizing one dimension), along its channels.
LogicalResult AdapterAttacher::attachSsf(const LoraAdapter &adapter, const SsfModule &module) {
  Operation *target = nullptr;
  int64_t channels = 0;
  if (FailureOr<LayerNormOp> norm = findLayer(norms, module.modulePath); succeeded(norm)) {
    target = *norm;
    channels = norm->getWeight().getType().getRank() == 1 ? norm->getNormalizedSize() : 0;
  } else {
    FailureOr<AdaptableLayer> layer = findTarget(adapter, module.tensorScale, module.modulePath);
    if (failed(layer))
      return failure();
    target = *layer;
    if (isa<EmbeddingOp>(target))
      return target->emitError() << adapter.weightsFile << ": tensor '" << module.tensorScale
                                 << "' targets module '" << module.modulePath
                                 << "', an embedding; SSF follows linear layers, convolutions "
                                    "and layer norms";
    channels = layer->getOutFeatures();
  }
  auto type = cast<RankedTensorType>(target->getResult(0).getType());
  if (module.scale.shape[0] != channels)
    return target->emitError() << adapter.weightsFile << ": tensor '" << module.tensorScale
                               << "' " << formatShape(module.scale.shape)
                               << " does not fit the output channels of module '"
                               << module.modulePath << "' " << formatShape(type.getShape());
  Value base = lastOutput(target);
  OpBuilder builder(base.getContext());
  builder.setInsertionPointAfterValue(base);
  Location loc = target->getLoc();
  int64_t channelDim = isa<ConvOp>(target) ? 1 : type.getRank() - 1;
  auto ssf = SsfOp::create(
      builder, loc, base.getType(), builder.getStringAttr(adapter.name), base,
      adapterWeight(builder, loc, adapter, module.tensorScale, module.scale),
      adapterWeight(builder, loc, adapter, module.tensorShift, module.shift),
      builder.getI64IntegerAttr(channelDim));
  base.replaceAllUsesExcept(ssf.getResult(), ssf);
  return success();
}

/// A residual adapter (linear, RepAdapter, bottleneck) as a peft.bottleneck
/// on a linear layer's output, or on its own input ("before").
LogicalResult AdapterAttacher::attachResidual(const LoraAdapter &adapter, const ResidualAdapterModule &module) {
  FailureOr<AdaptableLayer> found = findTarget(adapter, module.tensorDown, module.modulePath);
  if (failed(found))
    return failure();
  auto layer = dyn_cast<LinearOp>(found->getOperation());
  const LoraConfig &config = adapter.config;
  bool before = config.position == "before";
  if (!layer)
    return (*found)->emitError() << adapter.weightsFile << ": tensor '" << module.tensorDown
                                 << "' targets module '" << module.modulePath << "', a "
                                 << (*found)->getName() << " layer; " << config.peftType
                                 << " adapters stand on linear layers";
  int64_t features = before ? layer.getInFeatures() : layer.getOutFeatures();
  if (module.down.shape[1] != features)
    return layer->emitError() << adapter.weightsFile << ": tensor '" << module.tensorDown
                              << "' " << formatShape(module.down.shape) << " does not fit the "
                              << features << (before ? " inputs" : " outputs") << " of module '"
                              << module.modulePath << "'";
  Value value = before ? layer.getInput() : lastOutput(layer);
  OpBuilder builder(layer);
  if (!before)
    builder.setInsertionPointAfterValue(value);
  Location loc = layer.getLoc();
  auto fileWeight = [&](const std::string &tensor, const TensorView &view) {
    return tensor.empty() ? Value()
                          : adapterWeight(builder, loc, adapter, tensor, view);
  };
  auto bottleneck = BottleneckOp::create(
      builder, loc, value.getType(), builder.getStringAttr(adapter.name), value,
      fileWeight(module.tensorDown, module.down), fileWeight(module.tensorUp, module.up),
      fileWeight(module.tensorDownBias, module.downBias),
      fileWeight(module.tensorUpBias, module.upBias), builder.getF32FloatAttr(config.scaling),
      builder.getStringAttr(config.nonLinearity), builder.getI64IntegerAttr(config.groups),
      before ? builder.getUnitAttr() : UnitAttr());
  if (before)
    layer.getInputMutable().assign(bottleneck); // This layer's input alone.
  else
    value.replaceAllUsesExcept(bottleneck.getResult(), bottleneck);
  return success();
}

/// STDHA: a peft.head_shift after each targeted key or value projection.
LogicalResult AdapterAttacher::attachHeadShifts(const LoraAdapter &adapter) {
  const LoraConfig &config = adapter.config;
  std::map<std::string, AdaptableLayer> targeted; // In module-path order.
  for (const auto &entry : layers)
    if (config.targets(entry.getKey().str()))
      targeted[entry.getKey().str()] = entry.getValue();
  if (targeted.empty())
    return module.emitError() << adapter.name << ": the STDHA config targets no layer of the model";
  for (auto [path, layer] : targeted) {
    if (!isa<LinearOp>(layer.getOperation()) || layer.getOutFeatures() % config.numHeads)
      return layer->emitError() << adapter.name << ": STDHA targets module '" << path
                                << "', which is not a key or value projection whose "
                                << layer.getOutFeatures() << " outputs split into "
                                << config.numHeads << " heads";
    Value base = lastOutput(layer);
    OpBuilder builder(base.getContext());
    builder.setInsertionPointAfterValue(base);
    auto shift = HeadShiftOp::create(builder, layer.getLoc(), base.getType(),
                                     builder.getStringAttr(adapter.name), base,
                                     builder.getI64IntegerAttr(config.numFrames),
                                     builder.getI64IntegerAttr(config.numHeads),
                                     builder.getI64IntegerAttr(config.shiftHeads));
    base.replaceAllUsesExcept(shift.getResult(), shift);
  }
  return success();
}
