//===- BatchAdapters.cpp - LoRAs in slots a batch's rows pick from ----------===//
//
// --mode multi: each linear layer's chain of LoRAs becomes one
// peft.multi_lora over slot-stacked factors, and the entry function takes
// `adapter_index`, each row's slot (Passes.td).
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "frontends/adapters/HfPeftAdapter.h"
#include "support/LowRank.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>

namespace peft {
#define GEN_PASS_DEF_BATCHADAPTERS
#include "passes/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// The slots' factors of one layer, zero-padded to the rank capacity.
struct SlotFactors {
  /// Aᵀ [N, in, R] and Bᵀ [N, R, out] (as GEMMs read them), [N], [N, out].
  /// Each slot's rank on the layer (0: it holds nothing there), [N].
  std::vector<float> a, b, scales, bias, ranks;
  bool anyBias = false;
};

/// What adapts one linear layer: IA3s on its input (nearest first), and the
/// chain on its output (LoRA and IA3, in order).
struct LayerAdapters {
  AdaptableLayer layer;
  SmallVector<Ia3Op> inputIa3;
  SmallVector<Operation *> output;
};

struct BatchAdaptersPass : peft::impl::BatchAdaptersBase<BatchAdaptersPass> {
  using BatchAdaptersBase::BatchAdaptersBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto entries = llvm::to_vector(module.getOps<func::FuncOp>());
    if (entries.size() != 1) {
      module.emitError("peft-batch-adapters: expected one function, the model's entry");
      return signalPassFailure();
    }
    func::FuncOp entry = entries.front();
    int64_t named = static_cast<int64_t>(adapters.size());
    int64_t slotCount = slots ? static_cast<int64_t>(slots) : named;
    if (named == 0 && (modules.empty() || slotCount == 0 || maxRank == 0)) {
      module.emitError("peft-batch-adapters: no adapters named: empty slots need the modules "
                       "to put them on, a slot count and a rank capacity (--slot-modules, "
                       "--max-adapters, --max-rank)");
      return signalPassFailure();
    }
    for (const std::string &method : methods)
      if (!isSlotMethod(method)) {
        module.emitError("peft-batch-adapters: methods takes ")
            << llvm::join(llvm::ArrayRef(kSlotMethods), ", ") << ", not '" << method << "'";
        return signalPassFailure();
      }
    if (slotCount < named) {
      module.emitError("peft-batch-adapters: ")
          << named << " adapters named for " << slotCount
          << " slots: the slots (--max-adapters) must hold them all";
      return signalPassFailure();
    }
    // PEFT's rule for target_modules lists.
    LoraConfig slotModules;
    slotModules.targetModules.assign(modules.begin(), modules.end());
    bool anySlotModule = false;
    // The layers and their adapters; the capacity, unless given, their largest rank.
    SmallVector<LayerAdapters> layers;
    int64_t capacity = maxRank;
    WalkResult walked = entry.walk([&](AdaptableLayer layer) {
      LayerAdapters found{layer};
      // IA3 on the layer's own input (PEFT's feed-forward modules).
      Value input = layer.getInput();
      while (auto ia3 = input.getDefiningOp<Ia3Op>()) {
        if (!ia3->hasOneUse())
          break;
        found.inputIa3.push_back(ia3);
        input = ia3.getInput();
      }
      Value rawInput = found.inputIa3.empty() ? layer.getInput()
                                              : found.inputIa3.back().getInput();
      found.output = outputAdapters(layer);
      SmallVector<Operation *> all(llvm::map_range(found.inputIa3, [](Ia3Op op) {
        return op.getOperation();
      }));
      all.append(found.output.begin(), found.output.end());
      for (Operation *op : all) {
        auto adapter = cast<AdapterOp>(op);
        std::string where = ("adapter '" + adapter.getAdapterName() + "' on module '" +
                             layer.getModulePath() + "': ")
                                .str();
        auto lora = dyn_cast<LoraOp>(op);
        auto dora = dyn_cast<DoraOp>(op);
        if (!lora && !dora && !isa<Ia3Op>(op)) {
          op->emitError(where) << adapter.getMethod()
                               << " cannot share a batch with other adapters; --mode multi "
                                  "takes LoRA, DoRA and IA3 adapters";
          return WalkResult::interrupt();
        }
        Value loraInput = lora ? lora.getInput() : dora ? dora.getInput() : Value();
        if (!isa<LinearOp>(layer) ||
            (loraInput && loraInput != layer.getInput() && loraInput != rawInput)) {
          op->emitError(where) << "--mode multi takes adapters on linear layers only";
          return WalkResult::interrupt();
        }
        if (!llvm::is_contained(adapters, adapter.getAdapterName())) {
          op->emitError(where) << "not among the adapters filling the slots";
          return WalkResult::interrupt();
        }
        int64_t rank = adapter.getAdapterRank();
        if (loraInput && maxRank && rank > maxRank) {
          op->emitError(where) << "rank " << rank << " is above --max-rank "
                               << static_cast<int64_t>(maxRank);
          return WalkResult::interrupt();
        }
        if (loraInput)
          capacity = std::max<int64_t>(capacity, rank);
      }
      bool named = !modules.empty() && slotModules.targets(layer.getModulePath().str());
      if (named && !isa<LinearOp>(layer)) {
        layer->emitError("module '")
            << layer.getModulePath()
            << "' is named by --slot-modules, but only linear layers have slots";
        return WalkResult::interrupt();
      }
      anySlotModule |= named;
      if (!found.output.empty() || !found.inputIa3.empty() || named)
        layers.push_back(std::move(found));
      return WalkResult::advance();
    });
    if (walked.wasInterrupted())
      return signalPassFailure();
    // Adapters on anything else (a layer norm's SSF, a bottleneck) would
    // apply to every row.
    llvm::DenseSet<Operation *> batched;
    for (const LayerAdapters &layer : layers) {
      batched.insert(layer.output.begin(), layer.output.end());
      for (Ia3Op ia3 : layer.inputIa3)
        batched.insert(ia3);
    }
    WalkResult stray = entry.walk([&](AdapterOp adapter) {
      if (batched.contains(adapter))
        return WalkResult::advance();
      adapter->emitError("adapter '")
          << adapter.getAdapterName() << "' on module '" << adaptedModulePath(adapter)
          << "': " << adapter.getMethod()
          << " cannot share a batch with other adapters; --mode multi takes LoRA, DoRA and IA3 "
             "adapters on linear layers";
      return WalkResult::interrupt();
    });
    if (stray.wasInterrupted())
      return signalPassFailure();
    if (!modules.empty() && !anySlotModule) {
      module.emitError("peft-batch-adapters: --slot-modules ")
          << llvm::join(modules, ",") << " names no linear layer of the model";
      return signalPassFailure();
    }
    Value index = addIndexArgument(entry, slotCount);
    for (LayerAdapters &layer : layers)
      if (failed(batch(layer, index, slotCount, std::max<int64_t>(capacity, 1))))
        return signalPassFailure();
  }

  /// The entry's `adapter_index` argument, its batch dimension named as the
  /// first input's.
  static Value addIndexArgument(func::FuncOp entry, int64_t slotCount) {
    Builder builder(entry.getContext());
    SmallVector<NamedAttribute> attrs = {
        builder.getNamedAttr(kTensorNameAttr, builder.getStringAttr(kAdapterIndexInput)),
        builder.getNamedAttr(kAdapterSlotsAttr, builder.getI64IntegerAttr(slotCount))};
    if (entry.getNumArguments() > 0)
      if (auto names = entry.getArgAttrOfType<ArrayAttr>(0, kDimNamesAttr); names && names.size())
        attrs.push_back(
            builder.getNamedAttr(kDimNamesAttr, builder.getArrayAttr({names[0]})));
    unsigned position = entry.getNumArguments();
    auto type = RankedTensorType::get({ShapedType::kDynamic}, builder.getI64Type());
    if (failed(entry.insertArgument(position, type, builder.getDictionaryAttr(attrs),
                                    entry.getLoc())))
      return Value();
    return entry.getArgument(position);
  }

  /// The slot of `op`'s adapter.
  int64_t slotOf(Operation *op) {
    return llvm::find(adapters, cast<AdapterOp>(op).getAdapterName()) - adapters.begin();
  }

  /// The IA3s in `ops` as one [slots, features] tensor of their vectors, ones
  /// where a slot has none.
  FailureOr<std::vector<float>> ia3Vectors(ArrayRef<Operation *> ops, int64_t slotCount,
                                           int64_t features, StringRef module) {
    std::vector<float> vectors(slotCount * features, 1.0f);
    for (Operation *op : ops) {
      auto ia3 = cast<Ia3Op>(op);
      auto weight = ia3.getScale().getDefiningOp<WeightOp>();
      if (!weight)
        return ia3.emitError("adapter '")
               << ia3.getAdapter() << "' on module '" << module << "': its weights are not constant";
      auto values = weight.readFloat32();
      if (!values)
        return ia3.emitError(llvm::toString(values.takeError()));
      std::copy(values->begin(), values->end(), vectors.begin() + slotOf(op) * features);
    }
    return vectors;
  }

  /// The adapters on `found.layer` as one peft.multi_lora over the slots (all
  /// empty when it has no LoRA), with peft.multi_ia3 on its input and output
  /// where IA3s adapt them.
  LogicalResult batch(LayerAdapters &found, Value index, int64_t slotCount, int64_t capacity) {
    AdaptableLayer layer = found.layer;
    int64_t in = layer.getInFeatures(), out = layer.getOutFeatures();
    std::string prefix = "slots." + layer.getModulePath().str();
    SmallVector<StringRef> names(adapters.begin(), adapters.end());
    names.resize(slotCount, "");
    SmallVector<Operation *> lowRank, outputIa3; // LoRA and DoRA; IA3.
    for (Operation *op : found.output)
      (isa<Ia3Op>(op) ? outputIa3 : lowRank).push_back(op);

    bool ia3Slots = llvm::is_contained(methods, "ia3");
    // The input's IA3s, for this layer alone.
    if (!found.inputIa3.empty() || ia3Slots) {
      SmallVector<Operation *> ops(llvm::map_range(found.inputIa3, [](Ia3Op op) {
        return op.getOperation();
      }));
      FailureOr<std::vector<float>> vectors =
          ia3Vectors(ops, slotCount, in, layer.getModulePath());
      if (failed(vectors))
        return failure();
      Value raw = found.inputIa3.empty() ? layer.getInput() : found.inputIa3.back().getInput();
      OpBuilder builder(layer);
      Location loc = layer.getLoc();
      Value scales = createComputedWeight(builder, loc, prefix + ".ia3_in", {slotCount, in},
                                          *vectors);
      auto scaled = MultiIa3Op::create(builder, loc, raw.getType(),
                                       builder.getStrArrayAttr(names), raw, index, scales);
      layer->setOperand(0, scaled); // Every layer's input comes first.
      for (Ia3Op ia3 : found.inputIa3) {
        Value scale = ia3.getScale();
        ia3.erase();
        if (Operation *weight = scale.getDefiningOp(); weight && weight->use_empty())
          weight->erase();
      }
      found.inputIa3.clear();
    }

    SlotFactors factors;
    factors.a.assign(slotCount * in * capacity, 0.0f);
    factors.b.assign(slotCount * capacity * out, 0.0f);
    factors.scales.assign(slotCount, 0.0f);
    factors.ranks.assign(slotCount, 0.0f);
    factors.bias.assign(slotCount * out, 0.0f);
    factors.anyBias = llvm::is_contained(methods, "lora_bias");
    // DoRA: each slot's m / ‖W + s·B·A‖ per output, ones elsewhere.
    std::vector<float> doraScales;
    Value layerBias;
    for (Operation *op : lowRank) {
      auto lora = dyn_cast<LoraOp>(op);
      auto dora = dyn_cast<DoraOp>(op);
      int64_t slot = slotOf(op);
      std::string where = ("adapter '" + cast<AdapterOp>(op).getAdapterName() + "' on module '" +
                           layer.getModulePath() + "': ")
                              .str();
      Value aValue = lora ? lora.getLoraA() : dora.getLoraA();
      Value bValue = lora ? lora.getLoraB() : dora.getLoraB();
      auto a = aValue.getDefiningOp<WeightOp>();
      auto b = bValue.getDefiningOp<WeightOp>();
      auto bias = lora && lora.getLoraBias() ? lora.getLoraBias().getDefiningOp<WeightOp>()
                                             : WeightOp();
      if (!a || !b || (lora && lora.getLoraBias() && !bias))
        return op->emitError(where) << "its weights are not constant";
      auto aValues = a.readFloat32(), bValues = b.readFloat32();
      if (!aValues || !bValues)
        return op->emitError(
            llvm::toString(!aValues ? aValues.takeError() : bValues.takeError()));
      int64_t rank = cast<AdapterOp>(op).getAdapterRank();
      float scale = (lora ? lora.getScale() : dora.getScale()).convertToFloat();
      peft::writeSlotFactors(*aValues, *bValues, rank, in, out, capacity,
                             factors.a.data() + slot * in * capacity,
                             factors.b.data() + slot * capacity * out);
      factors.scales[slot] = scale;
      factors.ranks[slot] = static_cast<float>(rank);
      if (bias) {
        auto biasValues = bias.readFloat32();
        if (!biasValues)
          return op->emitError(llvm::toString(biasValues.takeError()));
        std::copy(biasValues->begin(), biasValues->end(), factors.bias.begin() + slot * out);
        factors.anyBias = true;
      }
      if (!dora)
        continue;
      auto weight = dora.getWeight().getDefiningOp<WeightOp>();
      auto magnitude = dora.getMagnitude().getDefiningOp<WeightOp>();
      if (!weight || !magnitude)
        return op->emitError(where) << "its weights are not constant";
      auto wValues = weight.readFloat32();
      auto mValues = magnitude.readFloat32();
      if (!wValues || !mValues)
        return op->emitError(llvm::toString(!wValues ? wValues.takeError() : mValues.takeError()));
      bool inOut = dora.getWeightInOut();
      addLowRankProduct(wValues->data(), inOut, *aValues, *bValues, rank, in, out, scale);
      std::vector<float> n = magnitudeOverNorm(wValues->data(), inOut, *mValues, in, out);
      if (doraScales.empty())
        doraScales.assign(slotCount * out, 1.0f);
      std::copy(n.begin(), n.end(), doraScales.begin() + slot * out);
      layerBias = dora.getBias();
    }
    if (llvm::is_contained(methods, "dora") && doraScales.empty()) {
      doraScales.assign(slotCount * out, 1.0f);
      if (auto linear = dyn_cast<LinearOp>(layer.getOperation()))
        layerBias = linear.getBias();
    }
    FailureOr<std::vector<float>> outputVectors =
        outputIa3.empty() && !ia3Slots
            ? FailureOr<std::vector<float>>(std::vector<float>())
            : ia3Vectors(outputIa3, slotCount, out, layer.getModulePath());
    if (failed(outputVectors))
      return failure();

    // After the output chain, which it replaces, or after the layer.
    Operation *last = found.output.empty() ? layer.getOperation() : found.output.back();
    OpBuilder builder(last->getContext());
    builder.setInsertionPointAfter(last);
    Location loc = last->getLoc();
    Value a = createComputedWeight(builder, loc, prefix + ".lora_A", {slotCount, in, capacity},
                                   factors.a);
    Value b = createComputedWeight(builder, loc, prefix + ".lora_B", {slotCount, capacity, out},
                                   factors.b);
    Value scales =
        createComputedWeight(builder, loc, prefix + ".scales", {slotCount}, factors.scales);
    Value ranks =
        createComputedWeight(builder, loc, prefix + ".ranks", {slotCount}, factors.ranks);
    Value bias = factors.anyBias ? createComputedWeight(builder, loc, prefix + ".lora_bias",
                                                        {slotCount, out}, factors.bias)
                                 : Value();
    Value dora = doraScales.empty() ? Value()
                                    : createComputedWeight(builder, loc, prefix + ".dora_scales",
                                                           {slotCount, out}, doraScales);
    // A row uses one slot, so LoRA rows have IA3 vectors of ones and IA3
    // rows LoRA scales of 0: the order of the two does not matter.
    Value base = layer->getResult(0);
    Value result = MultiLoraOp::create(builder, loc, base.getType(),
                                       builder.getStrArrayAttr(names), layer.getInput(), base,
                                       index, a, b, scales, bias, dora,
                                       dora ? layerBias : Value(), ranks);
    if (!outputIa3.empty() || ia3Slots) {
      Value vectors = createComputedWeight(builder, loc, prefix + ".ia3_out", {slotCount, out},
                                           *outputVectors);
      result = MultiIa3Op::create(builder, loc, base.getType(), builder.getStrArrayAttr(names),
                                  result, index, vectors);
    }
    Operation *lora = result.getDefiningOp<MultiIa3Op>()
                          ? result.getDefiningOp()->getOperand(0).getDefiningOp()
                          : result.getDefiningOp();
    last->getResult(0).replaceUsesWithIf(result, [&](OpOperand &use) {
      return use.getOwner() != lora && use.getOwner() != result.getDefiningOp();
    });
    for (Operation *op : llvm::reverse(found.output)) {
      SmallVector<Operation *> weights;
      for (OpOperand &operand : cast<AdapterOp>(op).getOwnOperands())
        weights.push_back(operand.get().getDefiningOp());
      op->erase();
      for (Operation *weight : weights)
        if (weight && weight->use_empty())
          weight->erase();
    }
    return success();
  }
};

} // namespace
