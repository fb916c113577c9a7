//===- BatchAdapters.cpp - LoRAs in slots a batch's rows pick from ----------===//
//
// --mode multi: each linear layer's chain of LoRAs becomes one
// peft.multi_lora over slot-stacked factors, and the entry function takes
// `adapter_index`, each row's slot (Passes.td).
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "frontends/adapters/HfPeftAdapter.h"

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
  std::vector<float> a, b, scales, bias; ///< [N, R, in], [N, out, R], [N], [N, out].
  bool anyBias = false;
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
    // The layers and their chains; the capacity, unless given, their largest rank.
    SmallVector<std::pair<AdaptableLayer, SmallVector<LoraOp>>> layers;
    int64_t capacity = maxRank;
    WalkResult walked = entry.walk([&](AdaptableLayer layer) {
      SmallVector<LoraOp> chain;
      for (Operation *op : outputAdapters(layer)) {
        auto adapter = cast<AdapterOp>(op);
        auto lora = dyn_cast<LoraOp>(op);
        std::string where = ("adapter '" + adapter.getAdapterName() + "' on module '" +
                             layer.getModulePath() + "': ")
                                .str();
        if (!lora) {
          op->emitError(where) << adapter.getMethod()
                               << " cannot share a batch with other adapters; --mode multi "
                                  "takes LoRA adapters";
          return WalkResult::interrupt();
        }
        if (!isa<LinearOp>(layer) || lora.getInput() != layer.getInput()) {
          op->emitError(where) << "--mode multi takes LoRAs on linear layers only";
          return WalkResult::interrupt();
        }
        if (!llvm::is_contained(adapters, lora.getAdapter())) {
          op->emitError(where) << "not among the adapters filling the slots";
          return WalkResult::interrupt();
        }
        if (maxRank && lora.getRank() > maxRank) {
          op->emitError(where) << "rank " << lora.getRank() << " is above --max-rank "
                               << static_cast<int64_t>(maxRank);
          return WalkResult::interrupt();
        }
        capacity = std::max<int64_t>(capacity, lora.getRank());
        chain.push_back(lora);
      }
      bool named = !modules.empty() && slotModules.targets(layer.getModulePath().str());
      if (named && !isa<LinearOp>(layer)) {
        layer->emitError("module '")
            << layer.getModulePath()
            << "' is named by --slot-modules, but only linear layers have slots";
        return WalkResult::interrupt();
      }
      anySlotModule |= named;
      if (!chain.empty() || named)
        layers.push_back({layer, std::move(chain)});
      return WalkResult::advance();
    });
    if (walked.wasInterrupted())
      return signalPassFailure();
    if (!modules.empty() && !anySlotModule) {
      module.emitError("peft-batch-adapters: --slot-modules ")
          << llvm::join(modules, ",") << " names no linear layer of the model";
      return signalPassFailure();
    }
    Value index = addIndexArgument(entry, slotCount);
    for (auto &[layer, chain] : layers)
      if (failed(batch(layer, chain, index, slotCount, std::max<int64_t>(capacity, 1))))
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

  /// `chain` on `layer` as one peft.multi_lora over the slots (all empty
  /// when `chain` is).
  LogicalResult batch(AdaptableLayer layer, ArrayRef<LoraOp> chain, Value index,
                      int64_t slotCount, int64_t capacity) {
    int64_t in = layer.getInFeatures(), out = layer.getOutFeatures();
    SlotFactors factors;
    factors.a.assign(slotCount * capacity * in, 0.0f);
    factors.b.assign(slotCount * out * capacity, 0.0f);
    factors.scales.assign(slotCount, 0.0f);
    factors.bias.assign(slotCount * out, 0.0f);
    for (LoraOp lora : chain) {
      int64_t slot = llvm::find(adapters, lora.getAdapter()) - adapters.begin();
      auto a = lora.getLoraA().getDefiningOp<WeightOp>();
      auto b = lora.getLoraB().getDefiningOp<WeightOp>();
      auto bias = lora.getLoraBias() ? lora.getLoraBias().getDefiningOp<WeightOp>() : WeightOp();
      if (!a || !b || (lora.getLoraBias() && !bias))
        return lora.emitError("adapter '")
               << lora.getAdapter() << "' on module '" << layer.getModulePath()
               << "': its weights are not constant";
      auto aValues = a.readFloat32(), bValues = b.readFloat32();
      if (!aValues || !bValues)
        return lora.emitError(
            llvm::toString(!aValues ? aValues.takeError() : bValues.takeError()));
      int64_t rank = lora.getRank();
      for (int64_t r = 0; r < rank; ++r)
        std::copy_n(aValues->begin() + r * in, in,
                    factors.a.begin() + (slot * capacity + r) * in);
      for (int64_t o = 0; o < out; ++o)
        std::copy_n(bValues->begin() + o * rank, rank,
                    factors.b.begin() + (slot * out + o) * capacity);
      factors.scales[slot] = lora.getScale().convertToFloat();
      if (bias) {
        auto biasValues = bias.readFloat32();
        if (!biasValues)
          return lora.emitError(llvm::toString(biasValues.takeError()));
        std::copy(biasValues->begin(), biasValues->end(), factors.bias.begin() + slot * out);
        factors.anyBias = true;
      }
    }
    // After the last LoRA, which it replaces, or after the layer.
    Operation *last = chain.empty() ? layer.getOperation() : LoraOp(chain.back()).getOperation();
    OpBuilder builder(last->getContext());
    builder.setInsertionPointAfter(last);
    Location loc = last->getLoc();
    std::string prefix = "slots." + layer.getModulePath().str();
    Value a = createComputedWeight(builder, loc, prefix + ".lora_A", {slotCount, capacity, in},
                                   factors.a);
    Value b = createComputedWeight(builder, loc, prefix + ".lora_B", {slotCount, out, capacity},
                                   factors.b);
    Value scales =
        createComputedWeight(builder, loc, prefix + ".scales", {slotCount}, factors.scales);
    Value bias = factors.anyBias ? createComputedWeight(builder, loc, prefix + ".lora_bias",
                                                        {slotCount, out}, factors.bias)
                                 : Value();
    SmallVector<StringRef> names(adapters.begin(), adapters.end());
    names.resize(slotCount, "");
    Value base = layer->getResult(0);
    auto batched = MultiLoraOp::create(builder, loc, base.getType(),
                                       builder.getStrArrayAttr(names), layer.getInput(), base,
                                       index, a, b, scales, bias);
    last->getResult(0).replaceAllUsesExcept(batched.getResult(), batched);
    for (LoraOp lora : llvm::reverse(chain)) {
      SmallVector<Operation *> weights;
      for (OpOperand &operand : cast<AdapterOp>(lora.getOperation()).getOwnOperands())
        weights.push_back(operand.get().getDefiningOp());
      lora.erase();
      for (Operation *weight : weights)
        if (weight && weight->use_empty())
          weight->erase();
    }
    return success();
  }
};

} // namespace
