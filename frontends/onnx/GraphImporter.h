//===- GraphImporter.h - The state of one ONNX graph import -----*- C++ -*-===//
//
// Shared by the files that import the op families (OnnxImporter.cpp for the
// graph, OnnxShapeOps.cpp, OnnxMathOps.cpp); not part of the public API.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_FRONTENDS_ONNX_GRAPHIMPORTER_H
#define PEFT_FRONTENDS_ONNX_GRAPHIMPORTER_H

#include "frontends/onnx/OnnxWeights.h"
#include "frontends/onnx/TensorBuilder.h"
#include "support/Tensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"

#include "onnx/onnx_pb.h"

#include <functional>

namespace peft {

using mlir::Location;
using mlir::Type;
using mlir::UnknownLoc;
using llvm::SmallVector;
using mlir::LogicalResult;
using mlir::MLIRContext;
using mlir::ModuleOp;
using mlir::OpBuilder;
using mlir::OwningOpRef;
using mlir::RankedTensorType;
using mlir::Value;
template <typename T> using FailureOr = mlir::FailureOr<T>;
/// Initializers up to this many elements become inline constants; larger ones
/// stay in the ONNX file behind a `peft.weight`.
inline constexpr int64_t kMaxInlineElements = 64;
/// Integer vectors computed at run time up to this many elements can serve
/// as Slice bounds (read element by element).
inline constexpr int64_t kMaxRuntimeInts = 8;

struct ImportedValue {
  Value tensor;
  /// Elements of a 0-D or 1-D integer tensor, when known at import.
  std::optional<Ints> ints;
  bool scalar = false;
  /// Set for an initializer: its name and type; `constant` holds the values
  /// of a small one, the others stay in the file.
  std::string weightName;
  RankedTensorType weightType;
  mlir::DenseElementsAttr constant;
  /// Element type of `ints` while no tensor holds them.
  Type intsElementType;
  /// The (signless) integers are unsigned: uint8, ..., uint64.
  bool isUnsigned = false;

  /// The type this value has (or will have once materialized).
  RankedTensorType type() const;
};

/// Kernel, strides, dilations and pads [begin..., end...] of a window op
/// (Conv, pooling) with auto_pad resolved, and the output's spatial sizes.
struct WindowShape {
  SmallVector<int64_t> kernel, strides, dilations, pads, outSizes;

  int64_t span(size_t d) const { return dilations[d] * (kernel[d] - 1) + 1; }
};

class GraphImporter {
public:
  GraphImporter(MLIRContext *context, std::string path, const onnx::ModelProto &model)
      : context(context), path(std::move(path)), model(model), builder(context),
        loc(UnknownLoc::get(context)), b(builder, loc) {}

  llvm::Expected<OwningOpRef<ModuleOp>> run();

private:
  using Handler = std::function<LogicalResult(const onnx::NodeProto &)>;
  void registerHandlers();
  LogicalResult importNode(const onnx::NodeProto &node);
  /// `node` against ONNX's schema of its op: input and output counts,
  /// required inputs and attributes, attribute kinds and element types
  /// (OnnxNodeChecks.cpp).
  LogicalResult checkNode(const onnx::NodeProto &node);
  /// Graph inputs and outputs: unique names, sane shapes.
  LogicalResult checkGraph();
  /// Every static shape the import built fits kMaxTensorBytes: a shape
  /// arithmetic on hostile sizes must not wrap around.
  LogicalResult checkShapes(ModuleOp module);
  LogicalResult addInitializer(const onnx::TensorProto &tensor);
  FailureOr<RankedTensorType> inputType(const onnx::ValueInfoProto &info);

  // Operand access.
  FailureOr<ImportedValue *> entry(const onnx::NodeProto &node, int index);
  FailureOr<Value> tensor(const onnx::NodeProto &node, int index);
  FailureOr<Ints> ints(const onnx::NodeProto &node, int index);
  /// Like ints(), but a small integer vector computed at run time (a graph
  /// input such as LLaMA's num_logits_to_keep) is read element by element
  /// into dynamic values. Only for uses that stay in bounds whatever the
  /// values are (Slice clamps its bounds).
  FailureOr<Ints> runtimeInts(const onnx::NodeProto &node, int index);
  /// The constant integers of input `index` (axes, k, starts, ...) or, in
  /// older opsets, of `attribute`; nothing when the node gives neither.
  FailureOr<std::optional<SmallVector<int64_t>>>
  constantList(const onnx::NodeProto &node, int index, llvm::StringRef attribute = "");
  /// The values of a constant floating-point input; nothing when absent or empty.
  FailureOr<std::optional<SmallVector<double>>> constantFloats(const onnx::NodeProto &node,
                                                               int index);
  bool hasInput(const onnx::NodeProto &node, int index) const {
    return index < node.input_size() && !node.input(index).empty();
  }
  bool knowsInts(const onnx::NodeProto &node, int index);
  /// Whether input `index` holds unsigned integers.
  bool isUnsigned(const onnx::NodeProto &node, int index);
  /// Marks the integer outputs of `node` unsigned when an integer input is
  /// (the ops that change types say so themselves).
  void propagateUnsigned(const onnx::NodeProto &node);
  Value materialize(ImportedValue &e);
  void setTensor(const onnx::NodeProto &node, int index, Value value);
  void setInts(const onnx::NodeProto &node, int index, Ints values, bool scalar,
               Type elementType);

  LogicalResult fail(const onnx::NodeProto &node, const llvm::Twine &message);
  /// Records on a graph input used as `indices` into `size` rows the bound
  /// the runtime checks its values against (kIndexBoundAttr).
  void boundIndices(Value indices, mlir::OpFoldResult size);

  // Handlers, grouped by kind.
  LogicalResult importConstant(const onnx::NodeProto &node);
  LogicalResult importElementwise(const onnx::NodeProto &node);
  LogicalResult importIntArithmetic(const onnx::NodeProto &node);
  void importMixedPow(const onnx::NodeProto &node, Value base, Value exponent);
  LogicalResult importMatMul(const onnx::NodeProto &node);
  LogicalResult importGemm(const onnx::NodeProto &node);
  LogicalResult importAdd(const onnx::NodeProto &node);
  LogicalResult importShape(const onnx::NodeProto &node);
  LogicalResult importSize(const onnx::NodeProto &node);
  LogicalResult importGather(const onnx::NodeProto &node);
  LogicalResult importEmbedding(const onnx::NodeProto &node);
  LogicalResult importGatherElements(const onnx::NodeProto &node);
  LogicalResult importScatterND(const onnx::NodeProto &node);
  LogicalResult importUnsqueeze(const onnx::NodeProto &node);
  LogicalResult importSqueeze(const onnx::NodeProto &node);
  LogicalResult importConcat(const onnx::NodeProto &node);
  LogicalResult importReshape(const onnx::NodeProto &node);
  LogicalResult importTranspose(const onnx::NodeProto &node);
  LogicalResult importSplit(const onnx::NodeProto &node);
  LogicalResult importSlice(const onnx::NodeProto &node);
  LogicalResult importCast(const onnx::NodeProto &node);
  LogicalResult importCastLike(const onnx::NodeProto &node);
  LogicalResult importConstantOfShape(const onnx::NodeProto &node);
  LogicalResult importRange(const onnx::NodeProto &node);
  LogicalResult importFloatRange(const onnx::NodeProto &node, Type elementType);
  LogicalResult importWhere(const onnx::NodeProto &node);
  LogicalResult importTrilu(const onnx::NodeProto &node);
  LogicalResult importClip(const onnx::NodeProto &node);
  LogicalResult importFlatten(const onnx::NodeProto &node);
  LogicalResult importExpand(const onnx::NodeProto &node);
  LogicalResult importReduce(const onnx::NodeProto &node);
  LogicalResult importSoftmax(const onnx::NodeProto &node);
  LogicalResult importLayerNorm(const onnx::NodeProto &node);
  LogicalResult importIdentity(const onnx::NodeProto &node);
  LogicalResult importConv(const onnx::NodeProto &node);
  LogicalResult importPool(const onnx::NodeProto &node);
  LogicalResult importBatchNorm(const onnx::NodeProto &node);
  LogicalResult importResize(const onnx::NodeProto &node);
  LogicalResult spreadOverAxes(const onnx::NodeProto &node, int64_t rank,
                               std::optional<SmallVector<double>> &roi,
                               std::optional<SmallVector<double>> &scales,
                               std::optional<SmallVector<int64_t>> &sizes);

  // Linear layers.
  LogicalResult importLinear(const onnx::NodeProto &node, Value input, ImportedValue &weight,
                             Value bias, bool weightInOut);
  /// The weight of a layer: a peft.weight for an initializer, or any tensor.
  Value layerWeight(ImportedValue &weight);
  FailureOr<WindowShape> windowShape(const onnx::NodeProto &node, RankedTensorType inputType,
                                     llvm::ArrayRef<int64_t> kernel);
  std::string modulePathFor(const onnx::NodeProto &node, const std::string &weightName);
  FailureOr<SmallVector<int64_t>> reductionAxes(const onnx::NodeProto &node, int64_t rank);

  MLIRContext *context;
  std::string path;
  const onnx::ModelProto &model;
  OpBuilder builder;
  Location loc;
  TensorBuilder b;
  int64_t opset = 0;
  llvm::StringMap<ImportedValue> values;
  llvm::StringMap<unsigned> useCounts;
  llvm::StringMap<Handler> handlers;
  std::string error;
};


//===----------------------------------------------------------------------===//
// Attribute access
//===----------------------------------------------------------------------===//

const onnx::AttributeProto *findAttr(const onnx::NodeProto &node, llvm::StringRef name);
int64_t intAttr(const onnx::NodeProto &node, llvm::StringRef name, int64_t fallback);
float floatAttr(const onnx::NodeProto &node, llvm::StringRef name, float fallback);
std::string stringAttr(const onnx::NodeProto &node, llvm::StringRef name,
                       const std::string &fallback);
std::optional<llvm::SmallVector<int64_t>> intsAttr(const onnx::NodeProto &node,
                                                   llvm::StringRef name);

inline bool isUnsignedDType(std::optional<DType> dtype) {
  return dtype == DType::U8 || dtype == DType::U16 || dtype == DType::U32 || dtype == DType::U64;
}

/// The scalar function of a binary elementwise ONNX op ("Add", "Max", ...);
/// `isUnsigned` when its integer operands are.
std::function<mlir::Value(mlir::OpBuilder &, mlir::Location, mlir::Value, mlir::Value)>
binaryBody(llvm::StringRef op, bool isUnsigned);

/// The contents of a (small) TensorProto as an attribute of `type`.
FailureOr<mlir::DenseElementsAttr> denseFromTensorProto(const onnx::TensorProto &proto,
                                                        RankedTensorType type);

} // namespace peft

#endif // PEFT_FRONTENDS_ONNX_GRAPHIMPORTER_H
