//===- PeftDialect.h - The peft dialect and its ops -------------*- C++ -*-===//
#ifndef PEFT_DIALECTS_PEFT_PEFTDIALECT_H
#define PEFT_DIALECTS_PEFT_PEFTDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributeInterfaces.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "support/WeightStore.h"

#include "dialects/peft/PeftDialect.h.inc"
#include "dialects/peft/PeftInterfaces.h.inc"

namespace peft {
/// The safetensors element type of an MLIR element type, if it has one.
std::optional<DType> dtypeOf(mlir::Type elementType);
/// The MLIR element type of a safetensors element type, if it has one.
mlir::Type elementTypeOf(DType dtype, mlir::MLIRContext *context);
/// The type a layer of float type `elementType` accumulates in, and its
/// unmerged adapters compute in: f32 for the half-precision floats (as torch
/// accumulates them and PEFT's autocast_adapter_dtype widens adapters), else
/// the type itself.
mlir::Type computeTypeOf(mlir::Type elementType);

/// The bytes of a weight of `type` kept in `file` or held in `value`: a view
/// into the mapped file or the attribute, or into `storage` when they had to
/// be expanded (a splat value).
llvm::Expected<TensorView> readWeightBytes(mlir::MLIRContext *context,
                                           mlir::RankedTensorType type,
                                           llvm::StringRef name, mlir::StringAttr file,
                                           mlir::ElementsAttr value,
                                           std::vector<uint8_t> &storage);

/// The `value` of a weight computed at compile time: a `dense` attribute when
/// small (it prints inline), a `dense_resource` blob named `name` otherwise.
mlir::ElementsAttr makeWeightValue(mlir::RankedTensorType type, mlir::AsmResourceBlob blob,
                                   llvm::StringRef name);

/// A weight computed at compile time holding `values` as f32 of `shape`.
mlir::Value createComputedWeight(mlir::OpBuilder &builder, mlir::Location loc,
                                 llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                                 llvm::ArrayRef<float> values);

/// Names a function argument or result after the source model's tensor.
constexpr llvm::StringLiteral kTensorNameAttr = "peft.name";
/// On an index argument choosing each row's adapter: the number of slots
/// (valid values -1, for none, to slots - 1).
constexpr llvm::StringLiteral kAdapterSlotsAttr = "peft.adapter_slots";
/// Names an argument's dimensions after the model's symbolic sizes ("batch");
/// "" for a dimension without a name.
constexpr llvm::StringLiteral kDimNamesAttr = "peft.dim_names";
/// On an integer entry argument that indexes rows directly (a Gather's ids):
/// how many rows the smallest table it indexes has. The runtime refuses ids
/// outside [-bound, bound) before running.
constexpr llvm::StringLiteral kIndexBoundAttr = "peft.index_bound";
/// The element type of an argument or result whose integers are unsigned
/// ("U8"): the IR's integer types are signless.
constexpr llvm::StringLiteral kDTypeAttr = "peft.dtype";
/// Names, on the module, the ONNX file the module was imported from.
constexpr llvm::StringLiteral kSourceModelAttr = "peft.source_model";
/// On the module: each attached adapter's config (adapter name -> the JSON
/// text of its adapter_config.json), which an ONNX export carries along.
constexpr llvm::StringLiteral kAdapterConfigsAttr = "peft.adapter_configs";
/// Why peft-merge-adapters left an adapter op unmerged, for tools to report.
constexpr llvm::StringLiteral kNotMergedAttr = "peft.not_merged";
} // namespace peft

#define GET_OP_CLASSES
#include "dialects/peft/PeftOps.h.inc"

namespace peft {
/// The module path of the layer an adapter adapts: the layer (or layer norm)
/// at the start of the chain of adapters on its output, or the layer reading
/// an adapted input; "" when there is none.
llvm::StringRef adaptedModulePath(mlir::Operation *adapter);
/// The adapters stacked on `producer`'s result (a layer or a layer norm),
/// innermost first: each the sole user of the value before it.
llvm::SmallVector<mlir::Operation *> outputAdapters(mlir::Operation *producer);
/// The uses through which `adapter` reads its own tensors: its operands past
/// the input and base (DoRA's: A, B and the magnitude, not the layer's
/// weight and bias), followed back through the weight-space ops (factor
/// products, LoHa and LoKr deltas) that compute a delta from them, ending
/// at `peft.weight`s. A use per distinct weight-space op, in operand order.
llvm::SmallVector<mlir::OpOperand *> adapterTensorUses(mlir::Operation *adapter);
} // namespace peft

#endif // PEFT_DIALECTS_PEFT_PEFTDIALECT_H
