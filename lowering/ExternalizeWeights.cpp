//===- ExternalizeWeights.cpp - Weights become entry arguments --------------===//
#include "lowering/Passes.h"

#include "runtime/Manifest.h"

namespace peft {
#define GEN_PASS_DEF_EXTERNALIZEWEIGHTS
#include "lowering/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

struct ExternalizeWeightsPass
    : peft::impl::ExternalizeWeightsBase<ExternalizeWeightsPass> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (func.isPublic() && !func.isExternal())
        if (failed(externalize(func)))
          return signalPassFailure();
  }

  /// The artifact names of the adapters' own tensors (adapterWeightName):
  /// PEFT's keys carry no adapter name, so two adapters on the same modules
  /// would otherwise share names. A weight op read by two adapters is copied,
  /// one per adapter.
  static llvm::DenseMap<Operation *, StringAttr> adapterTensorNames(func::FuncOp func) {
    llvm::DenseMap<Operation *, StringAttr> names;
    func.walk([&](Operation *op) {
      auto adapterOp = dyn_cast<AdapterOp>(op);
      if (!adapterOp)
        return;
      std::string adapter = adapterOp.getAdapterName().str();
      for (OpOperand *use : adapterTensorUses(op)) {
        auto weight = use->get().getDefiningOp<WeightOp>();
        auto name = StringAttr::get(op->getContext(),
                                    adapterWeightName(weight.getName().str(), adapter));
        auto [named, inserted] = names.try_emplace(weight, name);
        if (inserted || named->second == name)
          continue;
        OpBuilder builder(weight);
        Operation *copy = builder.clone(*weight);
        use->set(copy->getResult(0));
        names[copy] = name;
      }
    });
    return names;
  }

  LogicalResult externalize(func::FuncOp func) {
    func->setAttr("llvm.emit_c_interface", UnitAttr::get(func.getContext()));
    llvm::DenseMap<Operation *, StringAttr> adapterNames = adapterTensorNames(func);
    // One argument per distinct weight, even if CSE left duplicates.
    llvm::MapVector<Attribute, SmallVector<WeightOp>> weightsByKey;
    func.walk([&](WeightOp weight) {
      Builder builder(weight);
      Attribute source = weight.getFileAttr() ? Attribute(weight.getFileAttr())
                                              : Attribute(*weight.getValue());
      StringAttr name = adapterNames.lookup(weight);
      weightsByKey[builder.getArrayAttr({name ? name : weight.getNameAttr(), source})].push_back(
          weight);
    });
    for (auto &[key, weights] : weightsByKey) {
      WeightOp first = weights.front();
      Builder builder(first);
      NamedAttrList attrs;
      auto name = cast<StringAttr>(cast<ArrayAttr>(key)[0]);
      attrs.set(kWeightNameAttr, name);
      if (name != first.getNameAttr())
        attrs.set(kWeightKeyAttr, first.getNameAttr());
      if (first.getFileAttr())
        attrs.set(kWeightFileAttr, first.getFileAttr());
      else
        attrs.set(kWeightValueAttr, *first.getValue());
      unsigned index = func.getNumArguments();
      if (failed(func.insertArgument(index, first.getType(),
                                     attrs.getDictionary(builder.getContext()),
                                     first.getLoc())))
        return func.emitError("cannot add an argument for weight '")
               << first.getName() << "'";
      for (WeightOp weight : weights) {
        weight.getResult().replaceAllUsesWith(func.getArgument(index));
        weight.erase();
      }
    }
    return success();
  }
};

} // namespace
