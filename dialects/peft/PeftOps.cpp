//===- PeftOps.cpp - Verifiers and helpers of the peft ops ------------------===//
#include "dialects/peft/PeftDialect.h"

#include "llvm/ADT/SetVector.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/OpImplementation.h"

#include <cstring>

using namespace mlir;
using namespace peft;

/// Prints a value's shape the way users read it: [32, 64], ? when dynamic.
static std::string describeShape(Value value) {
  return peft::formatShape(cast<ShapedType>(value.getType()).getShape());
}

/// Two sizes agree unless both are known and differ.
static bool sizesAgree(int64_t lhs, int64_t rhs) {
  return ShapedType::isDynamic(lhs) || ShapedType::isDynamic(rhs) || lhs == rhs;
}

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

// `peft.weight "name" from "file" : type` or `peft.weight "name" = value`.
void WeightOp::print(OpAsmPrinter &printer) {
  printer << " ";
  printer.printAttributeWithoutType(getNameAttr());
  printer.printOptionalAttrDict((*this)->getAttrs(), {"name", "file", "value"});
  if (auto file = getFileAttr()) {
    printer << " from ";
    printer.printAttributeWithoutType(file);
    printer << " : " << getType();
  } else {
    printer << " = ";
    printer.printAttribute(*getValue());
  }
}

ParseResult WeightOp::parse(OpAsmParser &parser, OperationState &result) {
  std::string name, file;
  if (parser.parseString(&name) || parser.parseOptionalAttrDict(result.attributes))
    return failure();
  Builder &builder = parser.getBuilder();
  result.addAttribute("name", builder.getStringAttr(name));
  if (succeeded(parser.parseOptionalKeyword("from"))) {
    Type type;
    if (parser.parseString(&file) || parser.parseColonType(type))
      return failure();
    result.addAttribute("file", builder.getStringAttr(file));
    result.addTypes(type);
    return success();
  }
  ElementsAttr value;
  if (parser.parseEqual() || parser.parseAttribute(value, "value", result.attributes))
    return failure();
  result.addTypes(value.getType());
  return success();
}

LogicalResult WeightOp::verify() {
  if (getFile().has_value() == getValue().has_value())
    return emitOpError("weight '")
           << getName() << "' needs exactly one of a file or a value";
  if (!getType().hasStaticShape())
    return emitOpError("weight '") << getName() << "' must have a static shape";
  if (auto value = getValueAttr(); value && value.getType() != getType())
    return emitOpError("weight '")
           << getName() << "' holds a value of type " << value.getType()
           << " but produces " << getType();
  return success();
}

/// Weights up to this many elements print inline as `dense`.
static constexpr int64_t kMaxInlineElements = 256;

ElementsAttr peft::makeWeightValue(RankedTensorType type, AsmResourceBlob blob, StringRef name) {
  if (type.getNumElements() <= kMaxInlineElements)
    return DenseElementsAttr::getFromRawBuffer(type, blob.getData());
  return DenseResourceElementsAttr::get(type, name, std::move(blob));
}

Value peft::createComputedWeight(OpBuilder &builder, Location loc, StringRef name,
                                ArrayRef<int64_t> shape, ArrayRef<float> values) {
  auto type = RankedTensorType::get(shape, builder.getF32Type());
  auto blob = HeapAsmResourceBlob::allocate(values.size() * sizeof(float), alignof(float));
  std::memcpy(blob.getMutableData().data(), values.data(), values.size() * sizeof(float));
  return WeightOp::create(builder, loc, type, builder.getStringAttr(name), StringAttr(),
                          makeWeightValue(type, std::move(blob), name));
}

static llvm::Error weightError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// Checks that the bytes found for a weight have the type the IR declares.
static llvm::Error checkViewMatches(RankedTensorType type, StringRef name,
                                    const TensorView &view, StringRef origin) {
  // Unsigned tensors are signless in the IR: compare the IR's element types.
  if (elementTypeOf(view.dtype, type.getContext()) == type.getElementType() &&
      llvm::equal(view.shape, type.getShape()))
    return llvm::Error::success();
  std::string declared;
  llvm::raw_string_ostream(declared) << type;
  return weightError(origin + ": tensor '" + name + "' is " + dtypeName(view.dtype) +
                     " " + peft::formatShape(view.shape) + " but the IR declares " +
                     declared);
}

llvm::Expected<TensorView> peft::readWeightBytes(MLIRContext *context,
                                                 RankedTensorType type,
                                                 StringRef name, StringAttr file,
                                                 ElementsAttr value,
                                                 std::vector<uint8_t> &storage) {
  if (file) {
    auto *dialect = context->getOrLoadDialect<PeftDialect>();
    auto view = dialect->getWeightStore().lookup(file.getValue(), name);
    if (!view)
      return view.takeError();
    if (llvm::Error error = checkViewMatches(type, name, *view, file.getValue()))
      return std::move(error);
    return *view;
  }
  std::optional<DType> dtype = dtypeOf(type.getElementType());
  if (!dtype || *dtype == DType::Bool)
    return weightError("weight '" + name + "': unsupported element type");
  TensorView view{*dtype, std::vector<int64_t>(type.getShape().begin(), type.getShape().end()),
                  nullptr, 0};
  view.byteSize = view.numElements() * dtypeBits(*dtype) / 8;
  ArrayRef<char> bytes;
  if (auto dense = dyn_cast_or_null<DenseElementsAttr>(value)) {
    bytes = dense.getRawData();
  } else if (auto resource = dyn_cast_or_null<DenseResourceElementsAttr>(value)) {
    if (AsmResourceBlob *blob = resource.getRawHandle().getBlob())
      bytes = blob->getData();
  }
  if (bytes.size() == view.byteSize) {
    view.data = reinterpret_cast<const uint8_t *>(bytes.data());
  } else if (!bytes.empty() && bytes.size() * view.numElements() == view.byteSize) {
    storage.resize(view.byteSize); // A splat: repeat its one element.
    for (size_t offset = 0; offset < view.byteSize; offset += bytes.size())
      std::memcpy(storage.data() + offset, bytes.data(), bytes.size());
    view.data = storage.data();
  } else {
    return weightError("weight '" + name + "': value holds " + llvm::Twine(bytes.size()) +
                       " bytes, expected " + llvm::Twine(view.byteSize));
  }
  return view;
}

llvm::Expected<TensorView> WeightOp::read(std::vector<uint8_t> &storage) {
  return readWeightBytes(getContext(), getType(), getName(), getFileAttr(),
                         getValue() ? *getValue() : ElementsAttr(), storage);
}

llvm::Expected<std::vector<float>> WeightOp::readFloat32() {
  std::vector<uint8_t> storage;
  auto view = read(storage);
  if (!view)
    return view.takeError();
  if (!view->isFloat())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "weight '" + getName() + "' is not a float tensor");
  return view->toFloat32();
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

int64_t LinearOp::getOutFeatures() {
  return getWeight().getType().getDimSize(getWeightInOut() ? 1 : 0);
}

int64_t LinearOp::getInFeatures() {
  return getWeight().getType().getDimSize(getWeightInOut() ? 0 : 1);
}

LogicalResult LinearOp::verify() {
  auto inputType = getInput().getType();
  auto resultType = getResult().getType();
  StringRef layout = getWeightInOut() ? "[in, out]" : "[out, in]";
  if (getWeight().getType().getRank() != 2)
    return emitOpError("'") << getModulePath() << "': weight must be " << layout
                            << ", got " << describeShape(getWeight());
  if (inputType.getRank() < 1 || resultType.getRank() != inputType.getRank())
    return emitOpError("'") << getModulePath() << "': input "
                            << describeShape(getInput()) << " and result "
                            << describeShape(getResult())
                            << " must have the same rank, at least 1";
  if (!sizesAgree(inputType.getShape().back(), getInFeatures()))
    return emitOpError("'") << getModulePath() << "': input "
                            << describeShape(getInput())
                            << " does not match the weight " << layout << " "
                            << describeShape(getWeight());
  if (!sizesAgree(resultType.getShape().back(), getOutFeatures()))
    return emitOpError("'") << getModulePath() << "': result "
                            << describeShape(getResult())
                            << " does not match the weight " << layout << " "
                            << describeShape(getWeight());
  for (int64_t dim = 0; dim + 1 < inputType.getRank(); ++dim)
    if (!sizesAgree(inputType.getDimSize(dim), resultType.getDimSize(dim)))
      return emitOpError("'") << getModulePath() << "': input "
                              << describeShape(getInput()) << " and result "
                              << describeShape(getResult())
                              << " differ in batch dimension " << dim;
  if (Value bias = getBias()) {
    auto biasShape = cast<ShapedType>(bias.getType()).getShape();
    if (biasShape.size() != 1 || !sizesAgree(biasShape[0], getOutFeatures()))
      return emitOpError("'") << getModulePath() << "': bias "
                              << describeShape(bias) << " does not match weight "
                              << layout << " " << describeShape(getWeight());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// ConvOp
//===----------------------------------------------------------------------===//

int64_t ConvOp::getOutputSize(int64_t dim, int64_t in) {
  if (ShapedType::isDynamic(in))
    return ShapedType::kDynamic;
  int64_t rank = getSpatialRank();
  int64_t kernel = getWeight().getType().getDimSize(2 + dim);
  int64_t span = getDilations()[dim] * (kernel - 1) + 1;
  return (in + getPads()[dim] + getPads()[rank + dim] - span) / getStrides()[dim] + 1;
}

LogicalResult ConvOp::verify() {
  auto inputType = getInput().getType();
  auto weightType = getWeight().getType();
  auto resultType = getResult().getType();
  int64_t rank = weightType.getRank() - 2;
  auto error = [&]() { return emitOpError("'") << getModulePath() << "': "; };
  if (rank < 1)
    return error() << "weight " << describeShape(getWeight())
                   << " must be [out, in / groups, kernel...]";
  if (inputType.getRank() != rank + 2 || resultType.getRank() != rank + 2)
    return error() << "input " << describeShape(getInput()) << ", weight "
                   << describeShape(getWeight()) << " and result "
                   << describeShape(getResult()) << " must have the same rank";
  if (static_cast<int64_t>(getStrides().size()) != rank ||
      static_cast<int64_t>(getDilations().size()) != rank ||
      static_cast<int64_t>(getPads().size()) != 2 * rank)
    return error() << "strides and dilations need " << rank << " values and pads "
                   << 2 * rank;
  if (llvm::any_of(getStrides(), [](int64_t s) { return s < 1; }) ||
      llvm::any_of(getDilations(), [](int64_t d) { return d < 1; }) ||
      llvm::any_of(getPads(), [](int64_t p) { return p < 0; }))
    return error() << "strides and dilations must be positive, pads not negative";
  int64_t groups = getGroups(), out = weightType.getDimSize(0);
  if (groups < 1 || (!ShapedType::isDynamic(out) && out % groups != 0))
    return error() << "weight " << describeShape(getWeight()) << " has " << out
                   << " output channels, not a multiple of groups = " << groups;
  int64_t channels = inputType.getDimSize(1), perGroup = weightType.getDimSize(1);
  if (!ShapedType::isDynamic(perGroup) && !sizesAgree(channels, perGroup * groups))
    return error() << "input " << describeShape(getInput()) << " has " << channels
                   << " channels but weight " << describeShape(getWeight()) << " with groups = "
                   << groups << " takes " << perGroup * groups;
  SmallVector<int64_t> expected = {inputType.getDimSize(0), out};
  for (int64_t d = 0; d < rank; ++d)
    expected.push_back(getOutputSize(d, inputType.getDimSize(2 + d)));
  for (auto [want, have] : llvm::zip(expected, resultType.getShape()))
    if (!sizesAgree(want, have) || (!ShapedType::isDynamic(want) && want < 1))
      return error() << "result " << describeShape(getResult()) << " should be "
                     << formatShape(expected) << " for input " << describeShape(getInput());
  if (Value bias = getBias()) {
    auto biasShape = cast<ShapedType>(bias.getType()).getShape();
    if (biasShape.size() != 1 || !sizesAgree(biasShape[0], out))
      return error() << "bias " << describeShape(bias) << " does not match weight "
                     << describeShape(getWeight());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  auto inputType = getInput().getType();
  auto weightType = getWeight().getType();
  auto resultType = getResult().getType();
  auto error = [&]() { return emitOpError("'") << getModulePath() << "': "; };
  if (!isa<IntegerType>(inputType.getElementType()))
    return error() << "indices must be integers, got " << inputType.getElementType();
  if (weightType.getRank() != 2)
    return error() << "weight " << describeShape(getWeight())
                   << " must be [num_embeddings, dim]";
  SmallVector<int64_t> expected(inputType.getShape());
  expected.push_back(weightType.getDimSize(1));
  bool matches = resultType.getRank() == static_cast<int64_t>(expected.size()) &&
                 llvm::all_of(llvm::zip(expected, resultType.getShape()), [](auto sizes) {
                   return sizesAgree(std::get<0>(sizes), std::get<1>(sizes));
                 });
  if (!matches || resultType.getElementType() != weightType.getElementType())
    return error() << "result " << describeShape(getResult()) << " should be "
                   << formatShape(expected) << " of the weight's element type";
  return success();
}

//===----------------------------------------------------------------------===//
// LoraOp
//===----------------------------------------------------------------------===//

namespace {
/// The operands that peft.lora and peft.dora share.
struct LowRankOperands {
  StringRef adapter;
  TypedValue<RankedTensorType> input, base, a, b;
  std::optional<ArrayRef<int64_t>> strides, pads;
};
} // namespace

/// A convolution adapter: A [r, C, kernel...] over the [N, C, ...] input with
/// the layer's strides and pads, B [out, r, 1...] onto the [N, out, ...] base.
static LogicalResult verifyConvolutionLowRank(Operation *op, const LowRankOperands &operands) {
  auto aShape = operands.a.getType().getShape();
  auto bShape = operands.b.getType().getShape();
  int64_t rank = aShape.size(), spatial = rank - 2;
  auto error = [&]() { return op->emitOpError("adapter '") << operands.adapter << "': "; };
  bool pointwise = llvm::all_of(bShape.drop_front(2), [](int64_t size) { return size == 1; });
  if (static_cast<int64_t>(bShape.size()) != rank || !pointwise)
    return error() << "lora_B " << describeShape(operands.b) << " must be [out, r, 1...] to "
                   << "follow lora_A " << describeShape(operands.a);
  auto inputShape = operands.input.getType().getShape();
  auto baseShape = operands.base.getType().getShape();
  if (static_cast<int64_t>(inputShape.size()) != rank || !sizesAgree(inputShape[1], aShape[1]))
    return error() << "lora_A " << describeShape(operands.a) << " does not match the input "
                   << describeShape(operands.input);
  if (static_cast<int64_t>(baseShape.size()) != rank || !sizesAgree(baseShape[1], bShape[0]))
    return error() << "lora_B " << describeShape(operands.b)
                   << " does not match the base output " << describeShape(operands.base);
  if (!operands.strides || !operands.pads ||
      static_cast<int64_t>(operands.strides->size()) != spatial ||
      static_cast<int64_t>(operands.pads->size()) != 2 * spatial)
    return error() << "a convolution adapter needs " << spatial << " strides and "
                   << 2 * spatial << " pads";
  return success();
}

/// Checks A and B against each other, the input and the base output.
static LogicalResult verifyLowRank(Operation *op, const LowRankOperands &operands) {
  auto aShape = operands.a.getType().getShape();
  auto bShape = operands.b.getType().getShape();
  auto error = [&]() { return op->emitOpError("adapter '") << operands.adapter << "': "; };
  if (aShape.size() < 2 || bShape.size() < 2)
    return error() << "lora_A " << describeShape(operands.a) << " and lora_B "
                   << describeShape(operands.b) << " must have a rank dimension";
  if (!sizesAgree(aShape[0], bShape[1]))
    return error() << "lora_A " << describeShape(operands.a) << " and lora_B "
                   << describeShape(operands.b) << " disagree on the rank";
  if (aShape.size() > 2)
    return verifyConvolutionLowRank(op, operands);
  if (operands.strides || operands.pads)
    return error() << "strides and pads belong to convolution adapters";
  if (bShape.size() != 2)
    return error() << "lora_B " << describeShape(operands.b) << " must be a matrix";
  auto inputShape = operands.input.getType().getShape();
  bool indices = isa<IntegerType>(operands.input.getType().getElementType());
  if (!indices && (inputShape.empty() || !sizesAgree(aShape[1], inputShape.back())))
    return error() << "lora_A " << describeShape(operands.a) << " does not match the input "
                   << describeShape(operands.input);
  auto baseShape = operands.base.getType().getShape();
  if (baseShape.empty() || !sizesAgree(bShape[0], baseShape.back()))
    return error() << "lora_B " << describeShape(operands.b)
                   << " does not match the base output " << describeShape(operands.base);
  return success();
}

/// Whether `bias` is a vector of `size` elements.
static bool isVectorOf(Value bias, int64_t size) {
  auto shape = cast<ShapedType>(bias.getType()).getShape();
  return shape.size() == 1 && sizesAgree(shape[0], size);
}

LogicalResult LayerNormOp::verify() {
  RankedTensorType inputType = getInput().getType();
  int64_t axis = getAxis();
  if (axis < 0 || axis >= inputType.getRank())
    return emitOpError("'") << getModulePath() << "': axis " << axis << " is not a dimension of input "
                            << describeShape(getInput());
  ArrayRef<int64_t> normalized = inputType.getShape().drop_front(axis);
  for (Value parameter : {getWeight(), getBias()}) {
    if (!parameter)
      continue;
    auto shape = cast<ShapedType>(parameter.getType()).getShape();
    bool fits = shape.size() == normalized.size() &&
                llvm::all_of(llvm::zip(shape, normalized),
                             [](auto sizes) { return sizesAgree(std::get<0>(sizes), std::get<1>(sizes)); });
    if (!fits || !cast<ShapedType>(parameter.getType()).hasStaticShape())
      return emitOpError("'") << getModulePath() << "': " << (parameter == getWeight() ? "weight " : "bias ")
                              << describeShape(parameter) << " must have the shape of the normalized dimensions "
                              << axis << ".. of input " << describeShape(getInput());
  }
  return success();
}

LogicalResult LoraOp::verify() {
  if (Value bias = getLoraBias(); bias && !isVectorOf(bias, getLoraB().getType().getDimSize(0)))
    return emitOpError("adapter '") << getAdapter() << "': lora_bias " << describeShape(bias)
                                    << " does not match lora_B " << describeShape(getLoraB());
  return verifyLowRank(*this, {getAdapter(), getInput(), getBase(), getLoraA(), getLoraB(),
                               getStrides(), getPads()});
}

LogicalResult DoraOp::verify() {
  if (failed(verifyLowRank(*this, {getAdapter(), getInput(), getBase(), getLoraA(), getLoraB(),
                                   getStrides(), getPads()})))
    return failure();
  auto error = [&]() { return emitOpError("adapter '") << getAdapter() << "': "; };
  if (isa<IntegerType>(getInput().getType().getElementType()))
    return error() << "DoRA on an embedding is not supported";
  int64_t out = getLoraB().getType().getDimSize(0);
  int64_t in = getLoraA().getType().getNumElements() / getRank();
  auto weightShape = getWeight().getType().getShape();
  int64_t weightOut = weightShape.empty() ? 0 : weightShape[getWeightInOut() ? 1 : 0];
  if (weightShape.size() != (isConvolution() ? getLoraA().getType().getRank() : 2) ||
      weightOut != out || getWeight().getType().getNumElements() != out * in)
    return error() << "weight " << describeShape(getWeight()) << " does not match lora_A "
                   << describeShape(getLoraA()) << " and lora_B " << describeShape(getLoraB());
  if (getMagnitude().getType().getNumElements() != out)
    return error() << "magnitude " << describeShape(getMagnitude())
                   << " must hold one value per output of lora_B " << describeShape(getLoraB());
  if (Value bias = getBias(); bias && !isVectorOf(bias, out))
    return error() << "bias " << describeShape(bias) << " does not match lora_B "
                   << describeShape(getLoraB());
  return success();
}

//===----------------------------------------------------------------------===//
// Ia3Op
//===----------------------------------------------------------------------===//

LogicalResult Ia3Op::verify() {
  auto scaleShape = getScale().getType().getShape();
  auto inputShape = getInput().getType().getShape();
  int64_t channels = inputShape.empty() ? ShapedType::kDynamic : inputShape[getChannelDim()];
  int64_t count = 1, longDims = 0;
  for (int64_t size : scaleShape) {
    count *= size;
    longDims += size != 1;
  }
  bool convolution = scaleShape.size() == inputShape.size() && inputShape.size() > 2;
  bool placed = !convolution || count == 1 || scaleShape[1] == count;
  if (!getScale().getType().hasStaticShape() || longDims > 1 || inputShape.empty() || !placed ||
      !sizesAgree(count, channels))
    return emitOpError("adapter '")
           << getAdapter() << "': scale " << describeShape(getScale())
           << " must hold one value per channel (the last dimension; dimension 1 for a [1, C, "
              "1...] scale) of input "
           << describeShape(getInput());
  return success();
}

LogicalResult SsfOp::verify() {
  RankedTensorType inputType = getInput().getType();
  int64_t dim = getChannelDim();
  if (dim < 0 || dim >= inputType.getRank())
    return emitOpError("adapter '") << getAdapter() << "': channel_dim " << dim
                                    << " is not a dimension of input " << describeShape(getInput());
  for (Value parameter : {getScale(), getShift()}) {
    auto type = cast<RankedTensorType>(parameter.getType());
    if (type.getRank() != 1 || !type.hasStaticShape() ||
        !sizesAgree(type.getDimSize(0), inputType.getDimSize(dim)))
      return emitOpError("adapter '") << getAdapter() << "': " << (parameter == getScale() ? "scale " : "shift ")
                                      << describeShape(parameter) << " must be [C] for the "
                                      << inputType.getDimSize(dim) << " channels (dimension " << dim
                                      << ") of input " << describeShape(getInput());
  }
  return success();
}

/// A projection's matrix shape: [rows, columns], or a Conv1d kernel
/// [rows, columns, 1] read as one; empty for any other shape.
static ArrayRef<int64_t> projectionShape(Value value) {
  auto shape = cast<ShapedType>(value.getType()).getShape();
  if (shape.size() == 3 && shape[2] == 1)
    return shape.take_front(2);
  return shape.size() == 2 ? shape : ArrayRef<int64_t>();
}

LogicalResult BottleneckOp::verify() {
  RankedTensorType inputType = getInput().getType();
  ArrayRef<int64_t> down = projectionShape(getDown()), up = projectionShape(getUp());
  int64_t groups = getGroups();
  int64_t features = inputType.getRank() ? inputType.getShape().back() : ShapedType::kDynamic;
  auto error = [&]() { return emitOpError("adapter '") << getAdapter() << "': "; };
  if (!llvm::is_contained({"identity", "relu", "gelu", "silu", "tanh"}, getActivation()))
    return error() << "activation '" << getActivation()
                   << "' is not one of identity, relu, gelu, silu, tanh";
  if (down.size() != 2 || up.size() != 2 || !sizesAgree(down[1], features))
    return error() << "down " << describeShape(getDown()) << " must be [h, d] and up "
                   << describeShape(getUp()) << " [d, h / groups] (or Conv1d kernels [..., 1]) for input "
                   << describeShape(getInput());
  if (groups < 1 || down[0] % groups || up[0] % groups || up[1] * groups != down[0] ||
      !sizesAgree(up[0], features))
    return error() << "up " << describeShape(getUp()) << " must be [" << features << ", "
                   << down[0] << " / " << groups << "] for down " << describeShape(getDown())
                   << " and " << groups << " groups";
  for (auto [bias, size] : {std::pair(getDownBias(), down[0]), std::pair(getUpBias(), up[0])}) {
    if (!bias)
      continue;
    auto shape = cast<ShapedType>(bias.getType()).getShape();
    if (shape.size() != 1 || shape[0] != size)
      return error() << "bias " << describeShape(bias) << " must be [" << size << "]";
  }
  return success();
}

LogicalResult HeadShiftOp::verify() {
  RankedTensorType type = getInput().getType();
  int64_t channels = type.getRank() >= 2 ? type.getShape().back() : ShapedType::kDynamic;
  int64_t heads = getHeads(), fold = getFold();
  auto error = [&]() { return emitOpError("adapter '") << getAdapter() << "': "; };
  if (getFrames() < 1 || heads < 1 || fold < 1 || 2 * fold > heads)
    return error() << "needs frames >= 1 and 1 <= fold <= heads / 2, got frames " << getFrames()
                   << ", heads " << heads << ", fold " << fold;
  if (ShapedType::isDynamic(channels) || channels % heads)
    return error() << "input " << describeShape(getInput())
                   << " must be [frames·clips, ..., heads·d] with its channels static and "
                      "divisible by the "
                   << heads << " heads";
  if (!type.isDynamicDim(0) && type.getDimSize(0) % getFrames())
    return error() << "input " << describeShape(getInput()) << " has " << type.getDimSize(0)
                   << " rows, not whole clips of " << getFrames() << " frames";
  return success();
}

//===----------------------------------------------------------------------===//
// Weight deltas (LoHa, LoKr)
//===----------------------------------------------------------------------===//

LogicalResult FactorProductOp::verify() {
  auto lhs = getLhs().getType().getShape(), rhs = getRhs().getType().getShape();
  auto result = getType().getShape();
  if (lhs.size() != 2 || rhs.size() != 2 || lhs[1] != rhs[0] || result.size() != 2 ||
      result[0] != lhs[0] || result[1] != rhs[1])
    return emitOpError("factors ") << describeShape(getLhs()) << " and " << describeShape(getRhs())
                                   << " do not multiply to " << describeShape(getResult());
  return success();
}

LogicalResult CpProductOp::verify() {
  RankedTensorType core = getCore().getType(), a = getA().getType(), b = getB().getType();
  if (core.getRank() < 3 || a.getRank() != 2 || b.getRank() != 2 || !core.hasStaticShape() ||
      !a.hasStaticShape() || !b.hasStaticShape() || a.getDimSize(0) != core.getDimSize(0) ||
      b.getDimSize(0) != core.getDimSize(1))
    return emitOpError("core ") << describeShape(getCore()) << " and factors "
                                << describeShape(getA()) << " and " << describeShape(getB())
                                << " are not [r1, r2, kernel...], [r1, p] and [r2, q]";
  SmallVector<int64_t> expected = {a.getDimSize(1), b.getDimSize(1) * getKernelSize()};
  if (getType().getShape() != ArrayRef<int64_t>(expected))
    return emitOpError("core ") << describeShape(getCore()) << " and factors "
                                << describeShape(getA()) << " and " << describeShape(getB())
                                << " make " << formatShape(expected) << ", not "
                                << describeShape(getResult());
  return success();
}

LogicalResult LohaDeltaOp::verify() {
  RankedTensorType p1 = getP1().getType(), result = getType();
  if (p1.getRank() != 2 || p1 != getP2().getType() || !result.hasStaticShape() ||
      result.getRank() < 2 || result.getNumElements() != p1.getNumElements() ||
      result.getDimSize(0) != p1.getDimSize(0))
    return emitOpError("products ") << describeShape(getP1()) << " and " << describeShape(getP2())
                                    << " must be equal matrices [out, in] that fill the result "
                                    << describeShape(getResult());
  return success();
}

LogicalResult LokrDeltaOp::verify() {
  RankedTensorType w1 = getW1().getType(), w2 = getW2().getType(), result = getType();
  if (w1.getRank() != 2 || w2.getRank() < 2 || !w1.hasStaticShape() || !w2.hasStaticShape() ||
      !result.hasStaticShape() || result.getRank() < 2 ||
      result.getNumElements() != w1.getNumElements() * w2.getNumElements() ||
      result.getDimSize(0) != w1.getDimSize(0) * w2.getDimSize(0))
    return emitOpError("kron(") << describeShape(getW1()) << ", " << describeShape(getW2())
                                << ") does not fill the result " << describeShape(getResult());
  return success();
}

LogicalResult AddDeltaOp::verify() {
  auto delta = getDelta().getType().getShape();
  auto input = getInput().getType().getShape(), base = getBase().getType().getShape();
  auto error = [&]() { return emitOpError("adapter '") << getAdapter() << "': "; };
  if (!isConvolution()) {
    if (delta.size() != 2 || input.empty() || base.empty() || !sizesAgree(input.back(), delta[1]) ||
        !sizesAgree(base.back(), delta[0]))
      return error() << "delta " << describeShape(getDelta()) << " does not map the input "
                     << describeShape(getInput()) << " to the base " << describeShape(getBase());
    if (getStrides() || getDilations() || getPads() || getGroups())
      return error() << "strides, dilations, pads and groups belong to convolution adapters";
    return success();
  }
  int64_t spatial = delta.size() - 2;
  if (!getStrides() || !getDilations() || !getPads() || !getGroups() ||
      static_cast<int64_t>(getStrides()->size()) != spatial ||
      static_cast<int64_t>(getDilations()->size()) != spatial ||
      static_cast<int64_t>(getPads()->size()) != 2 * spatial)
    return error() << "a convolution delta needs " << spatial << " strides and dilations, "
                   << 2 * spatial << " pads and groups";
  if (input.size() != delta.size() || base.size() != delta.size() ||
      !sizesAgree(input[1], delta[1] * *getGroups()) || !sizesAgree(base[1], delta[0]))
    return error() << "delta " << describeShape(getDelta()) << " does not map the input "
                   << describeShape(getInput()) << " to the base " << describeShape(getBase());
  return success();
}

/// Whether `value` is a weight known to hold only zeros.
static bool isZeroWeight(Value value) {
  auto weight = value.getDefiningOp<WeightOp>();
  auto dense = weight && weight.getValue()
                   ? dyn_cast<DenseElementsAttr>(*weight.getValue())
                   : DenseElementsAttr();
  return dense && dense.isSplat() && isa<FloatType>(dense.getElementType()) &&
         dense.getSplatValue<APFloat>().isZero();
}

/// Whether `index` holds an integer per element of the batch of `input`
/// ([batch, ..., features], or [batch·rows, features] read flattened).
static bool indexesBatchOf(Value index, Value input) {
  auto indexType = cast<RankedTensorType>(index.getType());
  auto inputType = cast<RankedTensorType>(input.getType());
  int64_t rows = inputType.getDimSize(0);
  int64_t entries = indexType.getRank() == 1 ? indexType.getDimSize(0) : 0;
  bool divides = ShapedType::isDynamic(rows) || ShapedType::isDynamic(entries) ||
                 (entries > 0 && (inputType.getRank() == 2 ? rows % entries == 0 : rows == entries));
  return indexType.getRank() == 1 && isa<IntegerType>(indexType.getElementType()) && divides;
}

bool MultiIa3Op::scalesInput() {
  return llvm::any_of(getResult().getUsers(), [&](Operation *user) {
    auto layer = dyn_cast<AdaptableLayer>(user);
    return layer && layer.getInput() == getResult();
  });
}

AdaptableLayer MultiIa3Op::getLayer() {
  for (Operation *user : getResult().getUsers())
    if (auto layer = dyn_cast<AdaptableLayer>(user); layer && layer.getInput() == getResult())
      return layer;
  Operation *producer = getInput().getDefiningOp();
  if (auto lora = dyn_cast_or_null<MultiLoraOp>(producer))
    return lora.getLayer();
  return dyn_cast_or_null<AdaptableLayer>(producer);
}

LogicalResult MultiIa3Op::verify() {
  auto input = getInput().getType(), scales = getScales().getType();
  if (input.getRank() < 2)
    return emitOpError() << "input " << describeShape(getInput())
                         << " must be [batch, ..., features]";
  int64_t features = input.getShape().back();
  if (scales.getRank() != 2 || !scales.getElementType().isF32() ||
      (!ShapedType::isDynamic(features) && !ShapedType::isDynamic(scales.getDimSize(1)) &&
       scales.getDimSize(1) != features))
    return emitOpError() << "scales " << describeShape(getScales())
                         << " must be f32 [slots, features] of input "
                         << describeShape(getInput());
  if (static_cast<int64_t>(getAdapters().size()) != scales.getDimSize(0))
    return emitOpError() << getAdapters().size() << " adapter names for "
                         << scales.getDimSize(0) << " slots";
  if (!indexesBatchOf(getIndex(), getInput()))
    return emitOpError() << "index " << describeShape(getIndex())
                         << " must hold an integer per element of the batch of input "
                         << describeShape(getInput());
  return success();
}

LogicalResult MultiLoraOp::verify() {
  auto error = [&]() { return emitOpError(); };
  auto input = getInput().getType(), base = getBase().getType();
  auto a = getLoraA().getType(), b = getLoraB().getType();
  auto scales = getScales().getType();
  if (input.getRank() < 2 || input.getRank() != base.getRank())
    return error() << "input " << describeShape(getInput()) << " and base "
                   << describeShape(getBase()) << " must be [batch, ..., features] alike";
  if (a.getRank() != 3 || b.getRank() != 3 || a.getDimSize(0) != b.getDimSize(0) ||
      a.getDimSize(2) != b.getDimSize(1))
    return error() << "lora_A " << describeShape(getLoraA()) << " and lora_B "
                   << describeShape(getLoraB()) << " must be [slots, in, rank] and "
                   << "[slots, rank, out]";
  int64_t slots = a.getDimSize(0);
  auto differ = [](int64_t x, int64_t y) {
    return !ShapedType::isDynamic(x) && !ShapedType::isDynamic(y) && x != y;
  };
  if (differ(a.getDimSize(1), input.getShape().back()) ||
      differ(b.getDimSize(2), base.getShape().back()))
    return error() << "lora_A " << describeShape(getLoraA()) << " and lora_B "
                   << describeShape(getLoraB()) << " do not map input "
                   << describeShape(getInput()) << " to base " << describeShape(getBase());
  if (static_cast<int64_t>(getAdapters().size()) != slots)
    return error() << getAdapters().size() << " adapter names for " << slots << " slots";
  // A layer reading its input flattened ([batch·rows, in]) has several rows
  // per element of the batch.
  if (!indexesBatchOf(getIndex(), getInput()))
    return error() << "index " << describeShape(getIndex())
                   << " must hold an integer per element of the batch of input "
                   << describeShape(getInput());
  if (!isVectorOf(getScales(), slots) || !scales.getElementType().isF32())
    return error() << "scales " << describeShape(getScales()) << " must hold an f32 per slot ("
                   << slots << ")";
  if (Value bias = getLoraBias()) {
    auto type = cast<RankedTensorType>(bias.getType());
    if (type.getRank() != 2 || differ(type.getDimSize(0), slots) ||
        differ(type.getDimSize(1), b.getDimSize(2)))
      return error() << "lora_bias " << describeShape(bias) << " must be [slots, out] of lora_B "
                     << describeShape(getLoraB());
  }
  if (Value ranks = getRanks())
    if (!isVectorOf(ranks, slots) ||
        !cast<RankedTensorType>(ranks.getType()).getElementType().isF32())
      return error() << "ranks " << describeShape(ranks) << " must hold an f32 per slot ("
                     << slots << ")";
  if (Value dora = getDoraScales()) {
    auto type = cast<RankedTensorType>(dora.getType());
    if (type.getRank() != 2 || !type.getElementType().isF32() ||
        differ(type.getDimSize(0), slots) || differ(type.getDimSize(1), b.getDimSize(2)))
      return error() << "dora_scales " << describeShape(dora)
                     << " must be f32 [slots, out] of lora_B " << describeShape(getLoraB());
  }
  if (Value layerBias = getLayerBias()) {
    if (!getDoraScales())
      return error() << "layer_bias without dora_scales: only DoRA reads the layer's bias";
    if (!isVectorOf(layerBias, b.getDimSize(2)))
      return error() << "layer_bias " << describeShape(layerBias) << " must be [out] of lora_B "
                     << describeShape(getLoraB());
  }
  return success();
}

OpFoldResult LoraOp::fold(FoldAdaptor) {
  if (getScale().isZero() || (isZeroWeight(getLoraB()) && !getLoraBias()))
    return getBase();
  return {};
}

//===----------------------------------------------------------------------===//
// Adapters
//===----------------------------------------------------------------------===//

// What each adapter is (AdapterOp).
StringRef LoraOp::getMethod() { return "LoRA"; }
int64_t LoraOp::getAdapterRank() { return getRank(); }
double LoraOp::getAdapterScale() { return getScaleAttr().getValueAsDouble(); }

StringRef DoraOp::getMethod() { return "DoRA"; }
int64_t DoraOp::getAdapterRank() { return getRank(); }
double DoraOp::getAdapterScale() { return getScaleAttr().getValueAsDouble(); }
// A, B and the magnitude: not the layer's weight and bias it also reads.
MutableArrayRef<OpOperand> DoraOp::getOwnOperands() {
  return getOperation()->getOpOperands().slice(getLoraAMutable().getOperandNumber(), 3);
}

// LoHa or LoKr, told by the op computing the delta, which holds the scale;
// the rank is the inner size of its factored products (0 when whole).
StringRef AddDeltaOp::getMethod() {
  return isa_and_nonnull<LohaDeltaOp>(getDelta().getDefiningOp()) ? "LoHa" : "LoKr";
}
int64_t AddDeltaOp::getAdapterRank() {
  int64_t rank = 0;
  if (Operation *delta = getDelta().getDefiningOp())
    for (Value operand : delta->getOperands()) {
      if (auto product = operand.getDefiningOp<FactorProductOp>())
        rank = product.getLhs().getType().getDimSize(1);
      else if (auto cp = operand.getDefiningOp<CpProductOp>())
        rank = cp.getRank();
    }
  return rank;
}
double AddDeltaOp::getAdapterScale() {
  Operation *delta = getDelta().getDefiningOp();
  auto scale = delta ? delta->getAttrOfType<FloatAttr>("scale") : FloatAttr();
  return scale ? scale.getValueAsDouble() : 1.0;
}

StringRef Ia3Op::getMethod() { return "IA3"; }
bool Ia3Op::mapsValue() { return true; }

StringRef SsfOp::getMethod() { return "SSF"; }
bool SsfOp::mapsValue() { return true; }

// ZeroI2V's linear adapters and RepAdapter have no activation.
StringRef BottleneckOp::getMethod() { return isLinear() ? "linear" : "bottleneck"; }
int64_t BottleneckOp::getAdapterRank() { return getHiddenSize(); }
double BottleneckOp::getAdapterScale() { return getScaleAttr().getValueAsDouble(); }
bool BottleneckOp::mapsValue() { return true; }

StringRef HeadShiftOp::getMethod() { return "STDHA"; }
bool HeadShiftOp::mapsValue() { return true; }

llvm::StringRef peft::adaptedModulePath(Operation *adapter) {
  auto bottleneck = dyn_cast<BottleneckOp>(adapter);
  bool onInput = bottleneck && bottleneck.getBeforeLayer();
  // Up the chain to the layer whose output it adapts ...
  for (Operation *op = onInput ? nullptr : adapter; op;) {
    if (auto layer = dyn_cast<AdaptableLayer>(op))
      return layer.getModulePath();
    if (auto norm = dyn_cast<LayerNormOp>(op))
      return norm.getModulePath();
    auto adapterOp = dyn_cast<AdapterOp>(op);
    if (!adapterOp)
      break;
    op = adapterOp.getAdapted().getDefiningOp();
  }
  // ... else the layer whose input it is.
  for (Operation *user : adapter->getUsers())
    if (auto layer = dyn_cast<AdaptableLayer>(user); layer && layer.getInput() == adapter->getResult(0))
      return layer.getModulePath();
  return "";
}

SmallVector<Operation *> peft::outputAdapters(Operation *producer) {
  SmallVector<Operation *> chain;
  Value output = producer->getResult(0);
  while (output.hasOneUse()) {
    auto user = dyn_cast<AdapterOp>(*output.getUsers().begin());
    if (!user || user.getAdapted() != output)
      break;
    chain.push_back(user);
    output = user->getResult(0);
  }
  return chain;
}

SmallVector<OpOperand *> peft::adapterTensorUses(Operation *adapter) {
  MutableArrayRef<OpOperand> own = cast<AdapterOp>(adapter).getOwnOperands();
  SmallVector<OpOperand *> uses;
  llvm::SetVector<Operation *> visited;
  SmallVector<OpOperand *> pending(llvm::make_pointer_range(llvm::reverse(own)));
  while (!pending.empty()) {
    OpOperand *use = pending.pop_back_val();
    Operation *producer = use->get().getDefiningOp();
    if (!producer)
      continue;
    if (isa<WeightOp>(producer)) {
      uses.push_back(use);
    } else if (visited.insert(producer)) {
      for (OpOperand &operand : llvm::reverse(producer->getOpOperands()))
        pending.push_back(&operand);
    }
  }
  return uses;
}

#define GET_OP_CLASSES
#include "dialects/peft/PeftOps.cpp.inc"
