//===- AdapterAttacher.h - Put adapter ops on the layers they target -*- C++ -*-===//
//
// Shared by peft-attach-adapters (adapters read from disk) and
// peft-insert-adapters (fresh adapters made in memory): finds the layer each
// adapted module names and inserts the adapter's ops there.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_PASSES_ADAPTERATTACHER_H
#define PEFT_PASSES_ADAPTERATTACHER_H

#include "dialects/peft/PeftDialect.h"
#include "frontends/adapters/HfPeftAdapter.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"

namespace peft {

class AdapterAttacher {
public:
  explicit AdapterAttacher(mlir::ModuleOp module);

  /// Attaches every module of `adapter`, its weight deltas scaled by
  /// `weight` (DIR:WEIGHT). An adapter whose `weightsFile` is empty holds its
  /// tensors in memory; they become weights with values. Errors name the
  /// file, tensor and module.
  mlir::LogicalResult attach(LoraAdapter &adapter, double weight);

  /// The layers and layer norms of the module by module path.
  const llvm::StringMap<AdaptableLayer> &getLayers() const { return layers; }
  const llvm::StringMap<LayerNormOp> &getNorms() const { return norms; }

private:
  mlir::FailureOr<AdaptableLayer> findTarget(const LoraAdapter &adapter, llvm::StringRef tensor,
                                             llvm::StringRef path);
  mlir::LogicalResult attach(const LoraAdapter &adapter, const LoraModule &module);
  mlir::LogicalResult attachFactored(const LoraAdapter &adapter, const FactoredModule &module);
  WeightOp findParameter(const ReplacedParameter &parameter);
  mlir::LogicalResult replaceParameter(const LoraAdapter &adapter,
                                       const ReplacedParameter &parameter);
  mlir::LogicalResult attachIa3(const LoraAdapter &adapter, const Ia3Module &module);
  mlir::LogicalResult attachSsf(const LoraAdapter &adapter, const SsfModule &module);
  mlir::LogicalResult attachResidual(const LoraAdapter &adapter,
                                     const ResidualAdapterModule &module);
  mlir::LogicalResult attachHeadShifts(const LoraAdapter &adapter);

  mlir::ModuleOp module;
  llvm::StringMap<AdaptableLayer> layers;
  llvm::StringMap<LayerNormOp> norms;
};

} // namespace peft

#endif // PEFT_PASSES_ADAPTERATTACHER_H
