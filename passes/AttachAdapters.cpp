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

    // Insert after the last adapter already on this layer, so outputs add up.
    Value base = linear.getResult();
    while (base.hasOneUse() && isa<LoraOp>(*base.getUsers().begin()) &&
           cast<LoraOp>(*base.getUsers().begin()).getBase() == base)
      base = (*base.getUsers().begin())->getResult(0);
    OpBuilder builder(base.getContext());
    builder.setInsertionPointAfterValue(base);
    Location loc = linear.getLoc();
    Value a = createFileWeight(builder, loc, adapter.weightsFile, module.tensorA, module.a);
    Value b = createFileWeight(builder, loc, adapter.weightsFile, module.tensorB, module.b);
    auto lora = LoraOp::create(builder, loc, base.getType(),
                               builder.getStringAttr(adapter.name), linear.getInput(),
                               base, a, b,
                               builder.getF32FloatAttr(module.scale));
    base.replaceAllUsesExcept(lora.getResult(), lora);
    return success();
  }
};

} // namespace
