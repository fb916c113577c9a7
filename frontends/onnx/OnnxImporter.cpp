//===- OnnxImporter.cpp - ONNX models to the peft dialect -------------------===//
//
// One GraphImporter walks the nodes in order. Each ONNX value maps to an
// ImportedValue: a tensor value, and for small integer tensors also their elements as
// OpFoldResults (constant or index values). Shape arithmetic (Shape, Gather,
// Concat, ... feeding Reshape) folds through those elements, so static shapes
// fold at import while a dynamic batch dimension stays dynamic.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/OnnxImporter.h"

#include "frontends/onnx/GraphImporter.h"
#include "frontends/onnx/OnnxWeights.h"

#include "dialects/peft/PeftDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringSet.h"

#include <cmath>
#include <functional>

using namespace mlir;

namespace peft {

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

const onnx::AttributeProto *findAttr(const onnx::NodeProto &node, llvm::StringRef name) {
  for (const auto &attr : node.attribute())
    if (attr.name() == name)
      return &attr;
  return nullptr;
}

int64_t intAttr(const onnx::NodeProto &node, llvm::StringRef name, int64_t fallback) {
  const auto *attr = findAttr(node, name);
  return attr ? attr->i() : fallback;
}

float floatAttr(const onnx::NodeProto &node, llvm::StringRef name, float fallback) {
  const auto *attr = findAttr(node, name);
  return attr ? attr->f() : fallback;
}

std::string stringAttr(const onnx::NodeProto &node, llvm::StringRef name,
                       const std::string &fallback) {
  const auto *attr = findAttr(node, name);
  return attr ? attr->s() : fallback;
}

std::optional<SmallVector<int64_t>> intsAttr(const onnx::NodeProto &node,
                                             llvm::StringRef name) {
  const auto *attr = findAttr(node, name);
  if (!attr)
    return std::nullopt;
  return SmallVector<int64_t>(attr->ints().begin(), attr->ints().end());
}

static std::string describeNode(const onnx::NodeProto &node) {
  std::string name = node.name().empty()
                         ? (node.output_size() ? node.output(0) : std::string("?"))
                         : node.name();
  return "node '" + name + "' (" + node.op_type() + ")";
}

//===----------------------------------------------------------------------===//
// Entries
//===----------------------------------------------------------------------===//

LogicalResult GraphImporter::fail(const onnx::NodeProto &node, const llvm::Twine &message) {
  if (error.empty())
    error = (path + ": " + describeNode(node) + ": " + message).str();
  return failure();
}

FailureOr<ImportedValue *> GraphImporter::entry(const onnx::NodeProto &node, int index) {
  if (!hasInput(node, index))
    return fail(node, "missing input " + llvm::Twine(index));
  auto found = values.find(node.input(index));
  if (found == values.end())
    return fail(node, "input '" + node.input(index) + "' is not defined before use");
  return &found->second;
}

void GraphImporter::boundIndices(Value indices, OpFoldResult size) {
  auto argument = dyn_cast<BlockArgument>(indices);
  std::optional<int64_t> rows = getConstantIntValue(size);
  auto func = argument ? dyn_cast<func::FuncOp>(argument.getOwner()->getParentOp())
                       : func::FuncOp();
  if (!func || !rows)
    return;
  unsigned index = argument.getArgNumber();
  auto known = func.getArgAttrOfType<IntegerAttr>(index, kIndexBoundAttr);
  if (!known || known.getInt() > *rows)
    func.setArgAttr(index, kIndexBoundAttr, builder.getI64IntegerAttr(*rows));
}

Value GraphImporter::materialize(ImportedValue &e) {
  if (e.tensor)
    return e.tensor;
  if (e.constant) {
    e.tensor = arith::ConstantOp::create(builder, loc, e.constant);
    return e.tensor;
  }
  if (!e.weightName.empty()) {
    e.tensor = WeightOp::create(builder, loc, e.weightType,
                                builder.getStringAttr(e.weightName),
                                builder.getStringAttr(path), ElementsAttr());
    return e.tensor;
  }
  e.tensor = b.fromInts(*e.ints, e.scalar);
  if (!e.intsElementType.isInteger(64)) // Keep the declared element type exact.
    e.tensor = b.castElements(e.tensor, e.intsElementType);
  return e.tensor;
}

Value GraphImporter::layerWeight(ImportedValue &weight) {
  if (weight.weightName.empty())
    return materialize(weight);
  if (weight.constant)
    return WeightOp::create(builder, loc, weight.constant.getType(),
                            builder.getStringAttr(weight.weightName), StringAttr(),
                            weight.constant);
  if (!weight.tensor)
    weight.tensor = WeightOp::create(builder, loc, weight.weightType,
                                     builder.getStringAttr(weight.weightName),
                                     builder.getStringAttr(path), ElementsAttr());
  return weight.tensor;
}

RankedTensorType ImportedValue::type() const {
  if (tensor)
    return cast<RankedTensorType>(tensor.getType());
  if (weightType)
    return weightType;
  SmallVector<int64_t> shape;
  if (!scalar)
    shape.push_back(ints->size());
  return RankedTensorType::get(shape, intsElementType);
}

FailureOr<Value> GraphImporter::tensor(const onnx::NodeProto &node, int index) {
  FailureOr<ImportedValue *> e = entry(node, index);
  if (failed(e))
    return failure();
  return materialize(**e);
}

bool GraphImporter::isUnsigned(const onnx::NodeProto &node, int index) {
  auto found = hasInput(node, index) ? values.find(node.input(index)) : values.end();
  return found != values.end() && found->second.isUnsigned;
}

void GraphImporter::propagateUnsigned(const onnx::NodeProto &node) {
  static const llvm::StringSet<> retyping = {"Cast", "CastLike", "Shape", "Size", "Range",
                                             "ConstantOfShape", "Constant"};
  if (retyping.contains(node.op_type()))
    return;
  bool unsignedInput = false;
  for (int i = 0; i < node.input_size(); ++i)
    unsignedInput |= isUnsigned(node, i);
  if (!unsignedInput)
    return;
  for (const std::string &output : node.output()) {
    auto found = values.find(output);
    if (found == values.end())
      continue;
    Type elementType = found->second.type().getElementType();
    found->second.isUnsigned = isa<IntegerType>(elementType) && !elementType.isInteger(1);
  }
}

bool GraphImporter::knowsInts(const onnx::NodeProto &node, int index) {
  auto found = hasInput(node, index) ? values.find(node.input(index)) : values.end();
  return found != values.end() && found->second.ints.has_value();
}

FailureOr<Ints> GraphImporter::ints(const onnx::NodeProto &node, int index) {
  FailureOr<ImportedValue *> e = entry(node, index);
  if (failed(e))
    return failure();
  if (!(*e)->ints)
    return fail(node, "input '" + node.input(index) +
                          "' must be known at compile time (a constant or shape arithmetic)");
  return *(*e)->ints;
}

FailureOr<Ints> GraphImporter::runtimeInts(const onnx::NodeProto &node, int index) {
  FailureOr<ImportedValue *> e = entry(node, index);
  if (failed(e))
    return failure();
  if ((*e)->ints)
    return *(*e)->ints;
  RankedTensorType type = (*e)->type();
  auto elementType = dyn_cast<IntegerType>(type.getElementType());
  if (!elementType || elementType.getWidth() == 1 || type.getRank() > 1 ||
      !type.hasStaticShape() || type.getNumElements() > kMaxRuntimeInts)
    return ints(node, index); // Names what is missing.
  Value vector = materialize(**e);
  Ints elements;
  for (int64_t i = 0; i < type.getNumElements(); ++i) {
    SmallVector<Value> position;
    if (type.getRank() == 1)
      position.push_back(arith::ConstantIndexOp::create(builder, loc, i));
    Value element = tensor::ExtractOp::create(builder, loc, vector, position);
    Type indexType = builder.getIndexType();
    elements.push_back((*e)->isUnsigned
                           ? Value(arith::IndexCastUIOp::create(builder, loc, indexType, element))
                           : Value(arith::IndexCastOp::create(builder, loc, indexType, element)));
  }
  return elements;
}

FailureOr<std::optional<SmallVector<int64_t>>>
GraphImporter::constantList(const onnx::NodeProto &node, int index, llvm::StringRef attribute) {
  if (!hasInput(node, index)) {
    if (attribute.empty())
      return std::optional<SmallVector<int64_t>>();
    return intsAttr(node, attribute);
  }
  FailureOr<Ints> known = ints(node, index);
  if (failed(known))
    return failure();
  std::optional<SmallVector<int64_t>> constants = constantInts(*known);
  if (!constants)
    return fail(node, "input '" + node.input(index) + "' must be a constant");
  return constants;
}

void GraphImporter::setTensor(const onnx::NodeProto &node, int index, Value value) {
  if (index < node.output_size() && !node.output(index).empty())
    values[node.output(index)] = ImportedValue{value, std::nullopt, false, {}, {}};
}

void GraphImporter::setInts(const onnx::NodeProto &node, int index, Ints elements,
                            bool scalar, Type elementType) {
  ImportedValue e;
  e.ints = std::move(elements);
  e.scalar = scalar;
  e.intsElementType = elementType;
  values[node.output(index)] = std::move(e);
}

//===----------------------------------------------------------------------===//
// Constants
//===----------------------------------------------------------------------===//

/// The elements of `view` as an attribute of `type`.
static FailureOr<DenseElementsAttr> denseFromView(const TensorView &view, RankedTensorType type) {
  if (view.numElements() != type.getNumElements())
    return failure();
  if (type.getElementType().isInteger(1)) {
    SmallVector<bool> bits(view.data, view.data + view.byteSize);
    return DenseElementsAttr::get(type, ArrayRef<bool>(bits));
  }
  ArrayRef<char> bytes(reinterpret_cast<const char *>(view.data), view.byteSize);
  return DenseElementsAttr::getFromRawBuffer(type, bytes);
}

FailureOr<DenseElementsAttr> denseFromTensorProto(const onnx::TensorProto &proto,
                                                  RankedTensorType type) {
  // Reuse the initializer reader for raw and typed fields alike.
  auto model = std::make_shared<onnx::ModelProto>();
  *model->mutable_graph()->add_initializer() = proto;
  model->mutable_graph()->mutable_initializer(0)->set_name("value");
  auto source = OnnxWeightSource::create(model, "<constant>");
  if (!source) {
    llvm::consumeError(source.takeError());
    return failure();
  }
  return denseFromView(*(*source)->find("value"), type);
}

LogicalResult GraphImporter::importConstant(const onnx::NodeProto &node) {
  std::optional<onnx::TensorProto> value = constantNodeValue(node);
  if (!value)
    return fail(node, "only tensor, float and int values are supported (not sparse or string)");
  onnx::TensorProto proto = std::move(*value);
  proto.set_name(node.output(0));
  if (failed(addInitializer(proto)))
    return fail(node, "cannot read its value");
  return success();
}

//===----------------------------------------------------------------------===//
// Graph
//===----------------------------------------------------------------------===//

void GraphImporter::registerHandlers() {
  auto add = [&](std::initializer_list<const char *> ops,
                 LogicalResult (GraphImporter::*handler)(const onnx::NodeProto &)) {
    for (const char *op : ops)
      handlers[op] = [this, handler](const onnx::NodeProto &node) { return (this->*handler)(node); };
  };
  add({"Constant"}, &GraphImporter::importConstant);
  add({"Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Tanh", "Relu", "Gelu", "Exp", "Neg", "Log",
       "Abs", "Sin", "Cos", "Sinh", "Cosh", "Ceil", "Floor", "Reciprocal", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu",
       "Not", "And", "Or", "Xor", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
       "Max", "Min"},
      &GraphImporter::importElementwise);
  add({"Add"}, &GraphImporter::importAdd);
  add({"MatMul"}, &GraphImporter::importMatMul);
  add({"Gemm"}, &GraphImporter::importGemm);
  add({"Where"}, &GraphImporter::importWhere);
  add({"Trilu"}, &GraphImporter::importTrilu);
  add({"Clip"}, &GraphImporter::importClip);
  add({"Flatten"}, &GraphImporter::importFlatten);
  add({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare",
       "GlobalAveragePool", "GlobalMaxPool"},
      &GraphImporter::importReduce);
  add({"Softmax", "LogSoftmax"}, &GraphImporter::importSoftmax);
  add({"LayerNormalization"}, &GraphImporter::importLayerNorm);
  add({"Shape"}, &GraphImporter::importShape);
  add({"Size"}, &GraphImporter::importSize);
  add({"Gather"}, &GraphImporter::importGather);
  add({"GatherElements"}, &GraphImporter::importGatherElements);
  add({"ScatterND"}, &GraphImporter::importScatterND);
  add({"Unsqueeze"}, &GraphImporter::importUnsqueeze);
  add({"Squeeze"}, &GraphImporter::importSqueeze);
  add({"Concat"}, &GraphImporter::importConcat);
  add({"Reshape"}, &GraphImporter::importReshape);
  add({"Transpose"}, &GraphImporter::importTranspose);
  add({"Split"}, &GraphImporter::importSplit);
  add({"Slice"}, &GraphImporter::importSlice);
  add({"Cast"}, &GraphImporter::importCast);
  add({"CastLike"}, &GraphImporter::importCastLike);
  add({"ConstantOfShape"}, &GraphImporter::importConstantOfShape);
  add({"Range"}, &GraphImporter::importRange);
  add({"Expand"}, &GraphImporter::importExpand);
  add({"Identity", "Dropout"}, &GraphImporter::importIdentity);
  add({"Conv"}, &GraphImporter::importConv);
  add({"MaxPool", "AveragePool"}, &GraphImporter::importPool);
  add({"BatchNormalization"}, &GraphImporter::importBatchNorm);
  add({"Resize"}, &GraphImporter::importResize);
}

LogicalResult GraphImporter::addInitializer(const onnx::TensorProto &proto) {
  std::optional<DType> dtype = dtypeOfOnnx(proto.data_type());
  Type elementType = dtype ? elementTypeOf(*dtype, context) : Type();
  if (!elementType) {
    error = path + ": initializer '" + proto.name() + "' has an unsupported element type";
    return failure();
  }
  SmallVector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  auto type = RankedTensorType::get(shape, elementType);
  ImportedValue e;
  e.weightName = proto.name();
  e.weightType = type;
  if (type.getNumElements() <= kMaxInlineElements) {
    // Initializers read through the model's weight source, which resolves
    // external data; Constant nodes' values are always in the node.
    auto *dialect = context->getLoadedDialect<PeftDialect>();
    auto view = dialect->getWeightStore().lookup(path, proto.name());
    FailureOr<DenseElementsAttr> value =
        view ? denseFromView(*view, type) : denseFromTensorProto(proto, type);
    if (!view)
      llvm::consumeError(view.takeError());
    if (failed(value)) {
      error = path + ": initializer '" + proto.name() + "' cannot be read";
      return failure();
    }
    e.constant = *value;
    e.ints = intsOf(*value);
    e.intsElementType = elementType;
    e.scalar = shape.empty();
  }
  e.isUnsigned = isUnsignedDType(dtype);
  values[proto.name()] = std::move(e);
  return success();
}

FailureOr<RankedTensorType> GraphImporter::inputType(const onnx::ValueInfoProto &info) {
  const auto &tensorType = info.type().tensor_type();
  if (!info.type().has_tensor_type()) {
    error = path + ": graph input '" + info.name() + "' is not a tensor";
    return failure();
  }
  std::optional<DType> dtype = dtypeOfOnnx(tensorType.elem_type());
  if (!dtype || !elementTypeOf(*dtype, context)) {
    error = path + ": graph input '" + info.name() + "': element type " +
            onnx::TensorProto::DataType_Name(
                static_cast<onnx::TensorProto::DataType>(tensorType.elem_type())) +
            " is not supported";
    return failure();
  }
  SmallVector<int64_t> shape;
  for (const auto &dim : tensorType.shape().dim())
    shape.push_back(dim.has_dim_value() ? dim.dim_value() : ShapedType::kDynamic);
  return RankedTensorType::get(shape, elementTypeOf(*dtype, context));
}

LogicalResult GraphImporter::importNode(const onnx::NodeProto &node) {
  if (!node.domain().empty() && node.domain() != "ai.onnx")
    return fail(node, "ops of domain '" + node.domain() + "' are not supported");
  auto handler = handlers.find(node.op_type());
  if (handler == handlers.end())
    return fail(node, "unsupported op");
  loc = NameLoc::get(builder.getStringAttr(node.name().empty() ? node.op_type() : node.name()));
  b.setLoc(loc);
  if (failed(checkNode(node)) || failed(handler->second(node)))
    return failure();
  propagateUnsigned(node);
  return success();
}

llvm::Expected<OwningOpRef<ModuleOp>> GraphImporter::run() {
  auto fail = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  };
  opset = defaultOpset(model);
  if (opset == 0)
    return fail(path + ": imports no opset of the default ONNX domain (ai.onnx)");
  if (opset < kMinOpset || opset > kMaxOpset)
    return fail(path + ": opset " + llvm::Twine(opset) + " is not supported (supported: " +
                llvm::Twine(kMinOpset) + " to " + llvm::Twine(kMaxOpset) + ")");
  registerHandlers();
  if (failed(checkGraph()))
    return fail(error);
  const onnx::GraphProto &graph = model.graph();
  for (const auto &node : graph.node())
    for (const auto &input : node.input())
      ++useCounts[input];
  for (const auto &output : graph.output())
    ++useCounts[output.name()];

  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  (*module)->setAttr(kSourceModelAttr, builder.getStringAttr(path));
  builder.setInsertionPointToEnd(module->getBody());
  llvm::StringSet<> initializerNames;
  for (const auto &init : graph.initializer())
    initializerNames.insert(init.name());
  SmallVector<Type> argTypes;
  for (const auto &input : graph.input()) {
    if (initializerNames.contains(input.name()))
      continue;
    FailureOr<RankedTensorType> type = inputType(input);
    if (failed(type))
      return fail(error);
    argTypes.push_back(*type);
  }
  auto func = func::FuncOp::create(builder, loc, "forward",
                                   builder.getFunctionType(argTypes, {}));
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToStart(body);
  // Dynamic sizes with the same dim_param ("batch") are one value.
  llvm::StringMap<Value> symbolicSizes;
  for (auto [i, input] : llvm::enumerate(llvm::make_filter_range(graph.input(), [&](const auto &in) {
         return !initializerNames.contains(in.name());
       }))) {
    Value arg = body->getArgument(i);
    func.setArgAttr(i, kTensorNameAttr, builder.getStringAttr(input.name()));
    values[input.name()] = ImportedValue{arg, std::nullopt, false, {}, {}};
    std::optional<DType> dtype = dtypeOfOnnx(input.type().tensor_type().elem_type());
    if (isUnsignedDType(dtype)) {
      values[input.name()].isUnsigned = true;
      func.setArgAttr(i, kDTypeAttr, builder.getStringAttr(dtypeName(*dtype)));
    }
    Ints sizes;
    SmallVector<Attribute> dimNames;
    for (auto [d, dim] : llvm::enumerate(input.type().tensor_type().shape().dim())) {
      dimNames.push_back(builder.getStringAttr(dim.has_dim_value() ? "" : dim.dim_param()));
      if (dim.has_dim_value()) {
        sizes.push_back(builder.getIndexAttr(dim.dim_value()));
        continue;
      }
      Value &size = symbolicSizes[dim.dim_param()];
      if (!size || dim.dim_param().empty())
        size = tensor::DimOp::create(builder, loc, arg, d);
      sizes.push_back(size);
    }
    b.recordSizes(arg, sizes);
    if (llvm::any_of(dimNames, [](Attribute name) { return !cast<StringAttr>(name).empty(); }))
      func.setArgAttr(i, kDimNamesAttr, builder.getArrayAttr(dimNames));
  }
  for (const auto &init : graph.initializer())
    if (failed(addInitializer(init)))
      return fail(error);
  for (const auto &node : graph.node())
    if (failed(importNode(node)))
      return fail(error.empty() ? path + ": " + describeNode(node) + ": import failed"
                                : error);

  SmallVector<Value> results;
  for (const auto &output : graph.output()) {
    auto found = values.find(output.name());
    if (found == values.end())
      return fail(path + ": graph output '" + output.name() + "' is never produced");
    results.push_back(materialize(found->second));
  }
  func::ReturnOp::create(builder, loc, results);
  func.setType(builder.getFunctionType(argTypes, ValueRange(results).getTypes()));
  for (auto [i, output] : llvm::enumerate(graph.output())) {
    func.setResultAttr(i, kTensorNameAttr, builder.getStringAttr(output.name()));
    std::optional<DType> dtype = dtypeOfOnnx(output.type().tensor_type().elem_type());
    if (isUnsignedDType(dtype))
      func.setResultAttr(i, kDTypeAttr, builder.getStringAttr(dtypeName(*dtype)));
  }
  if (failed(checkShapes(*module)))
    return fail(error);
  // A combination of op and types the handlers do not support shows here;
  // its first diagnostic, with the node it came from, makes the one line.
  std::string diagnostic;
  LogicalResult verified = success();
  {
    ScopedDiagnosticHandler capture(context, [&](Diagnostic &diag) {
      if (diagnostic.empty() && diag.getSeverity() == DiagnosticSeverity::Error) {
        if (auto name = dyn_cast<NameLoc>(diag.getLocation()))
          diagnostic = "node '" + name.getName().str() + "': ";
        diagnostic += diag.str();
      }
      return success();
    });
    verified = verify(*module);
  }
  if (failed(verified))
    return fail(path + ": " + diagnostic +
                " (the importer does not support this op with these types)");
  return module;
}

//===----------------------------------------------------------------------===//
// ImportedValue points
//===----------------------------------------------------------------------===//

llvm::Expected<OwningOpRef<ModuleOp>> importOnnxModel(MLIRContext *context,
                                                      llvm::StringRef path) {
  context->loadDialect<PeftDialect, func::FuncDialect, tensor::TensorDialect,
                       linalg::LinalgDialect, arith::ArithDialect, math::MathDialect,
                       scf::SCFDialect>();
  auto source = OnnxWeightSource::open(path);
  if (!source)
    return source.takeError();
  std::shared_ptr<onnx::ModelProto> model = (*source)->getModel();
  int64_t upgradedFrom = (*source)->getUpgradedFrom();
  // The importer's weights then resolve to the model already in memory.
  context->getLoadedDialect<PeftDialect>()->getWeightStore().adopt(path, std::move(*source));
  GraphImporter importer(context, path.str(), *model);
  auto module = importer.run();
  if (module && upgradedFrom)
    emitRemark((**module).getLoc())
        << path << ": upgraded from opset " << upgradedFrom << " to " << kMinOpset
        << " with ONNX's version converter";
  return module;
}

void registerOnnxWeightFormat() {
  WeightStore::registerFormat(
      ".onnx", [](llvm::StringRef path) -> llvm::Expected<std::unique_ptr<WeightSource>> {
        auto source = OnnxWeightSource::open(path);
        if (!source)
          return source.takeError();
        return std::unique_ptr<WeightSource>(std::move(*source));
      });
}

} // namespace peft
