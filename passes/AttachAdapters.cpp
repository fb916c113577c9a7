//===- AttachAdapters.cpp - Attach PEFT adapters to their layers ------------===//
#include "passes/Passes.h"

#include "frontends/adapters/HfPeftAdapter.h"

#include "mlir/IR/Builders.h"

namespace peft {
#define GEN_PASS_DEF_ATTACHADAPTERS
#include "passes/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// Splits "DIR=NAME" into its parts; the name defaults to "default", as in PEFT.
/// DIR[=NAME][:WEIGHT]: where the adapter is, what the IR calls it, and the
/// weight of its delta in the combination of all adapters (1 by default).
struct AdapterSpec {
  std::string directory, name;
  double weight = 1;
};

FailureOr<AdapterSpec> parseAdapterSpec(StringRef spec) {
  AdapterSpec parsed;
  auto [location, weight] = spec.rsplit(':'); // No ':': location is the spec.
  bool hasWeight = location.size() != spec.size();
  if (hasWeight && (location.empty() || weight.getAsDouble(parsed.weight)))
    return failure();
  auto [directory, name] = location.split('=');
  parsed.directory = directory.str();
  parsed.name = name.empty() ? "default" : name.str();
  return parsed;
}

/// The layers of the model by module path.
using LayerIndex = llvm::StringMap<AdaptableLayer>;

/// Finds the layer a module path names: the exact path, else the one layer
/// whose path and the adapter's differ only by a leading prefix (the model may
/// have been exported from `model.bert` while PEFT wrapped `model`).
FailureOr<AdaptableLayer> findLayer(const LayerIndex &layers, StringRef path) {
  if (auto found = layers.find(path); found != layers.end())
    return found->second;
  AdaptableLayer match;
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

Value createFileWeight(OpBuilder &builder, Location loc, const std::string &file,
                       const std::string &tensor, const TensorView &view) {
  auto type = RankedTensorType::get(view.shape,
                                    elementTypeOf(view.dtype, builder.getContext()));
  return WeightOp::create(builder, loc, type, builder.getStringAttr(tensor),
                          builder.getStringAttr(file), ElementsAttr());
}

/// The output of `linear` after the adapters already attached to it: new
/// adapters go there, so that LoRA outputs add up.
Value lastOutput(LinearOp linear) {
  Value base = linear.getResult();
  while (base.hasOneUse()) {
    Operation *user = *base.getUsers().begin();
    auto lora = dyn_cast<LoraOp>(user);
    auto ia3 = dyn_cast<Ia3Op>(user);
    if (!(lora && lora.getBase() == base) && !(ia3 && ia3.getInput() == base))
      break;
    base = user->getResult(0);
  }
  return base;
}

struct AttachAdaptersPass : peft::impl::AttachAdaptersBase<AttachAdaptersPass> {
  using AttachAdaptersBase::AttachAdaptersBase;

  void runOnOperation() override {
    LayerIndex layers;
    getOperation().walk([&](AdaptableLayer layer) {
      layers[layer.getModulePath()] = layer;
    });
    for (const std::string &spec : adapters) {
      FailureOr<AdapterSpec> parsed = parseAdapterSpec(spec);
      if (failed(parsed)) {
        getOperation().emitError("adapter '")
            << spec << "': expected DIR[=NAME][:WEIGHT], WEIGHT a number";
        return signalPassFailure();
      }
      auto adapter = readHfPeftAdapter(parsed->directory, parsed->name);
      if (!adapter) {
        getOperation().emitError(llvm::toString(adapter.takeError()));
        return signalPassFailure();
      }
      for (LoraModule &module : adapter->modules) {
        module.scale *= parsed->weight; // The exact weighted sum of the deltas.
        if (failed(attach(*adapter, module, layers)))
          return signalPassFailure();
      }
      if (!adapter->ia3Modules.empty() && parsed->weight != 1) {
        getOperation().emitError("adapter '")
            << spec << "': IA3 adapters scale activations and cannot be weighted";
        return signalPassFailure();
      }
      for (const Ia3Module &module : adapter->ia3Modules)
        if (failed(attachIa3(*adapter, module, layers)))
          return signalPassFailure();
    }
  }

  LogicalResult attach(const LoraAdapter &adapter, const LoraModule &module,
                       const LayerIndex &layers) {
    FailureOr<AdaptableLayer> layer = findLayer(layers, module.modulePath);
    if (failed(layer))
      return getOperation().emitError()
             << adapter.weightsFile << ": tensor '" << module.tensorA
             << "' targets module '" << module.modulePath
             << "', which is not a layer of the model (or names several)";
    auto linear = dyn_cast<LinearOp>(layer->getOperation());
    if (!linear)
      return layer->emitError()
             << adapter.weightsFile << ": tensor '" << module.tensorA << "' targets module '"
             << module.modulePath << "', a " << layer->getOperation()->getName()
             << " layer; LoRA on it is not supported yet";
    if (module.a.shape[1] != linear.getInFeatures() ||
        module.b.shape[0] != linear.getOutFeatures())
      return linear.emitError()
             << adapter.weightsFile << ": tensors '" << module.tensorA << "' "
             << formatShape(module.a.shape) << " and '" << module.tensorB << "' "
             << formatShape(module.b.shape) << " do not fit module '"
             << linear.getModulePath() << "' with " << linear.getInFeatures()
             << " inputs and " << linear.getOutFeatures() << " outputs";

    Value base = lastOutput(linear);
    OpBuilder builder(base.getContext());
    builder.setInsertionPointAfterValue(base);
    Location loc = linear.getLoc();
    Value a = createFileWeight(builder, loc, adapter.weightsFile, module.tensorA, module.a);
    Value b = createFileWeight(builder, loc, adapter.weightsFile, module.tensorB, module.b);
    Value bias = module.tensorBias.empty()
                     ? Value()
                     : createFileWeight(builder, loc, adapter.weightsFile, module.tensorBias,
                                        module.bias);
    auto lora = LoraOp::create(builder, loc, base.getType(),
                               builder.getStringAttr(adapter.name), linear.getInput(),
                               base, a, b, bias,
                               builder.getF32FloatAttr(module.scale));
    base.replaceAllUsesExcept(lora.getResult(), lora);
    return success();
  }

  /// IA3: a peft.ia3 on the layer's output, or, for a feed-forward module, on
  /// the layer's own input (other layers reading the same value keep it).
  LogicalResult attachIa3(const LoraAdapter &adapter, const Ia3Module &module,
                          const LayerIndex &layers) {
    FailureOr<AdaptableLayer> layer = findLayer(layers, module.modulePath);
    if (failed(layer))
      return getOperation().emitError()
             << adapter.weightsFile << ": tensor '" << module.tensor << "' targets module '"
             << module.modulePath << "', which is not a layer of the model (or names several)";
    auto linear = dyn_cast<LinearOp>(layer->getOperation());
    if (!linear)
      return layer->emitError() << adapter.weightsFile << ": tensor '" << module.tensor
                                << "' targets module '" << module.modulePath << "', a "
                                << layer->getOperation()->getName()
                                << " layer; IA3 on it is not supported yet";
    int64_t channels = module.feedforward ? linear.getInFeatures() : linear.getOutFeatures();
    if (module.scale.numElements() != channels)
      return linear.emitError() << adapter.weightsFile << ": tensor '" << module.tensor << "' "
                                << formatShape(module.scale.shape) << " does not fit module '"
                                << linear.getModulePath() << "' with " << channels
                                << (module.feedforward ? " inputs" : " outputs");
    OpBuilder builder(linear);
    Location loc = linear.getLoc();
    Value scale = createFileWeight(builder, loc, adapter.weightsFile, module.tensor, module.scale);
    StringAttr name = builder.getStringAttr(adapter.name);
    if (module.feedforward) {
      Value input = linear.getInput();
      auto ia3 = Ia3Op::create(builder, loc, input.getType(), name, input, scale);
      linear.getInputMutable().assign(ia3);
      return success();
    }
    Value base = lastOutput(linear);
    builder.setInsertionPointAfterValue(base);
    auto ia3 = Ia3Op::create(builder, loc, base.getType(), name, base, scale);
    base.replaceAllUsesExcept(ia3.getResult(), ia3);
    return success();
  }
};

} // namespace
