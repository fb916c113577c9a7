//===- ExternalizeWeights.cpp - Weights become entry arguments --------------===//
#include "lowering/Passes.h"

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

  LogicalResult externalize(func::FuncOp func) {
    func->setAttr("llvm.emit_c_interface", UnitAttr::get(func.getContext()));
    // One argument per distinct weight, even if CSE left duplicates.
    llvm::MapVector<Attribute, SmallVector<WeightOp>> weightsByKey;
    func.walk([&](WeightOp weight) {
      Builder builder(weight);
      Attribute source = weight.getFileAttr() ? Attribute(weight.getFileAttr())
                                              : Attribute(*weight.getValue());
      weightsByKey[builder.getArrayAttr({weight.getNameAttr(), source})].push_back(weight);
    });
    for (auto &[key, weights] : weightsByKey) {
      WeightOp first = weights.front();
      Builder builder(first);
      NamedAttrList attrs;
      attrs.set(kWeightNameAttr, first.getNameAttr());
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
