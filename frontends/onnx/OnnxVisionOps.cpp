//===- OnnxVisionOps.cpp - Convolutions, pooling, normalization, resizing ---===//
//
// Conv becomes a peft.conv base layer (adapters attach to it); pooling,
// BatchNormalization and Resize become linalg directly. The window ops need
// static spatial sizes; the batch may stay dynamic.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/GraphImporter.h"

#include "dialects/peft/PeftDialect.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/SmallSet.h"

#include <cmath>

using namespace mlir;

namespace peft {

namespace {

int64_t ceilDiv(int64_t numerator, int64_t denominator) {
  return (numerator + denominator - 1) / denominator;
}

} // namespace

FailureOr<WindowShape>
GraphImporter::windowShape(const onnx::NodeProto &node, RankedTensorType inputType,
                           ArrayRef<int64_t> kernel) {
  int64_t rank = kernel.size();
  if (inputType.getRank() != rank + 2)
    return fail(node, "input " + formatShape(inputType.getShape()) + " must be [N, C, " +
                          llvm::Twine(rank) + " spatial dimensions]");
  SmallVector<int64_t> spatial(inputType.getShape().drop_front(2));
  if (llvm::any_of(spatial, ShapedType::isDynamic))
    return fail(node, "the spatial sizes of input " + formatShape(inputType.getShape()) +
                          " must be static");
  WindowShape w;
  w.kernel.assign(kernel.begin(), kernel.end());
  w.strides = intsAttr(node, "strides").value_or(SmallVector<int64_t>(rank, 1));
  w.dilations = intsAttr(node, "dilations").value_or(SmallVector<int64_t>(rank, 1));
  w.pads = intsAttr(node, "pads").value_or(SmallVector<int64_t>(2 * rank, 0));
  if (static_cast<int64_t>(w.strides.size()) != rank ||
      static_cast<int64_t>(w.dilations.size()) != rank ||
      static_cast<int64_t>(w.pads.size()) != 2 * rank)
    return fail(node, "strides and dilations need " + llvm::Twine(rank) + " values, pads " +
                          llvm::Twine(2 * rank));
  // Within these bounds no window arithmetic below overflows.
  constexpr int64_t kMaxWindow = int64_t(1) << 31;
  for (int64_t d = 0; d < rank; ++d)
    if (w.kernel[d] < 1 || w.kernel[d] > kMaxWindow || w.strides[d] < 1 ||
        w.strides[d] > kMaxWindow || w.dilations[d] < 1 || w.dilations[d] > kMaxWindow ||
        w.pads[d] < 0 || w.pads[d] > kMaxWindow || w.pads[rank + d] < 0 ||
        w.pads[rank + d] > kMaxWindow)
      return fail(node, "kernel " + formatShape(w.kernel) + ", strides " +
                            formatShape(w.strides) + ", dilations " + formatShape(w.dilations) +
                            " and pads " + formatShape(w.pads) +
                            " must be positive (pads non-negative) and of a sane size");
  std::string autoPad = stringAttr(node, "auto_pad", "NOTSET");
  bool ceilMode = intAttr(node, "ceil_mode", 0);
  for (int64_t d = 0; d < rank; ++d) {
    int64_t in = spatial[d], stride = w.strides[d], span = w.dilations[d] * (w.kernel[d] - 1) + 1;
    int64_t &begin = w.pads[d], &end = w.pads[rank + d];
    if (autoPad == "VALID") {
      begin = end = 0;
    } else if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      int64_t total = std::max<int64_t>(0, (ceilDiv(in, stride) - 1) * stride + span - in);
      begin = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      end = total - begin;
    } else if (autoPad != "NOTSET") {
      return fail(node, "auto_pad '" + autoPad + "' is not one of NOTSET, SAME_UPPER, "
                        "SAME_LOWER, VALID");
    }
    int64_t extent = in + begin + end - span;
    if (extent < 0)
      return fail(node, "the window (" + llvm::Twine(span) + ") is larger than the padded input (" +
                            llvm::Twine(in + begin + end) + ") in spatial dimension " +
                            llvm::Twine(d));
    int64_t out = (ceilMode ? ceilDiv(extent, stride) : extent / stride) + 1;
    if (ceilMode && (out - 1) * stride >= in + begin) // The last window must start inside.
      --out;
    w.outSizes.push_back(out);
  }
  return w;
}

//===----------------------------------------------------------------------===//
// Conv
//===----------------------------------------------------------------------===//

LogicalResult GraphImporter::importConv(const onnx::NodeProto &node) {
  FailureOr<Value> input = tensor(node, 0);
  FailureOr<ImportedValue *> weightEntry = entry(node, 1);
  if (failed(input) || failed(weightEntry))
    return failure();
  Value weight = layerWeight(**weightEntry);
  auto inputType = cast<RankedTensorType>(input->getType());
  auto weightType = cast<RankedTensorType>(weight.getType());
  if (weightType.getRank() < 3 || !weightType.hasStaticShape())
    return fail(node, "weight " + formatShape(weightType.getShape()) +
                          " must be a static [out, in / groups, kernel...]");
  SmallVector<int64_t> kernel(weightType.getShape().drop_front(2));
  if (auto given = intsAttr(node, "kernel_shape"); given && *given != kernel)
    return fail(node, "kernel_shape " + formatShape(*given) + " does not match weight " +
                          formatShape(weightType.getShape()));
  FailureOr<WindowShape> window = windowShape(node, inputType, kernel);
  if (failed(window))
    return failure();
  int64_t groups = intAttr(node, "group", 1), out = weightType.getDimSize(0);
  int64_t channels = inputType.getDimSize(1);
  if (groups < 1 || out % groups != 0 ||
      (!ShapedType::isDynamic(channels) && channels != weightType.getDimSize(1) * groups))
    return fail(node, "input " + formatShape(inputType.getShape()) + " and weight " +
                          formatShape(weightType.getShape()) + " do not fit group = " +
                          llvm::Twine(groups));
  Value bias;
  if (hasInput(node, 2)) {
    FailureOr<ImportedValue *> given = entry(node, 2);
    if (failed(given))
      return failure();
    bias = layerWeight(**given); // Named, so adapters can rewrite it.
  }
  SmallVector<int64_t> shape = {inputType.getDimSize(0), out};
  llvm::append_range(shape, window->outSizes);
  auto resultType = RankedTensorType::get(shape, inputType.getElementType());
  std::string weightName = (*weightEntry)->weightName;
  std::string modulePath = weightName.empty() ? node.name() : modulePathFor(node, weightName);
  auto conv = ConvOp::create(builder, loc, resultType, builder.getStringAttr(modulePath), *input,
                             weight, bias, builder.getDenseI64ArrayAttr(window->strides),
                             builder.getDenseI64ArrayAttr(window->dilations),
                             builder.getDenseI64ArrayAttr(window->pads),
                             builder.getI64IntegerAttr(groups));
  Ints sizes = {b.dim(*input, 0), builder.getIndexAttr(out)};
  for (int64_t size : window->outSizes)
    sizes.push_back(builder.getIndexAttr(size));
  b.recordSizes(conv.getResult(), sizes);
  setTensor(node, 0, conv.getResult());
  return success();
}

//===----------------------------------------------------------------------===//
// Pooling
//===----------------------------------------------------------------------===//

/// Pads the spatial dimensions of `input` ([N, C, spatial...]) with `value`:
/// `pads` before each, then `pads` + `extra` after each.
static Value padSpatial(OpBuilder &builder, Location loc, Value input, ArrayRef<int64_t> pads,
                        ArrayRef<int64_t> extra, TypedAttr value) {
  int64_t rank = extra.size();
  bool any = llvm::any_of(pads, [](int64_t p) { return p != 0; }) ||
             llvm::any_of(extra, [](int64_t p) { return p != 0; });
  if (!any)
    return input;
  SmallVector<OpFoldResult> low(2, builder.getIndexAttr(0)), high = low;
  for (int64_t d = 0; d < rank; ++d) {
    low.push_back(builder.getIndexAttr(pads[d]));
    high.push_back(builder.getIndexAttr(pads[rank + d] + extra[d]));
  }
  Value padValue = arith::ConstantOp::create(builder, loc, value);
  return tensor::PadOp::create(builder, loc, Type(), input, low, high, padValue);
}

/// How many elements of the unpadded input (or, with `includePad`, of the
/// input with its declared pads) each window of `window` covers: AveragePool's
/// divisors, as a [1, 1, out...] constant.
static DenseElementsAttr windowCounts(const WindowShape &window,
                                      ArrayRef<int64_t> spatial, bool includePad,
                                      Type elementType) {
  int64_t rank = spatial.size();
  SmallVector<SmallVector<int64_t>> perDim(rank);
  for (int64_t d = 0; d < rank; ++d) {
    int64_t lo = includePad ? -window.pads[d] : 0;
    int64_t hi = spatial[d] + (includePad ? window.pads[rank + d] : 0);
    for (int64_t o = 0; o < window.outSizes[d]; ++o) {
      int64_t count = 0;
      for (int64_t k = 0; k < window.kernel[d]; ++k) {
        int64_t position = o * window.strides[d] + k * window.dilations[d] - window.pads[d];
        count += position >= lo && position < hi;
      }
      perDim[d].push_back(count);
    }
  }
  SmallVector<int64_t> shape = {1, 1};
  llvm::append_range(shape, window.outSizes);
  auto type = RankedTensorType::get(shape, elementType);
  SmallVector<double> counts;
  for (int64_t flat = 0; flat < type.getNumElements(); ++flat) {
    double count = 1;
    for (int64_t d = 0, rest = flat; d < rank; ++d) {
      int64_t stride = 1;
      for (int64_t e = d + 1; e < rank; ++e)
        stride *= window.outSizes[e];
      count *= perDim[d][rest / stride];
      rest %= stride;
    }
    counts.push_back(count);
  }
  return floatElements(type, counts);
}

/// MaxPool and AveragePool: one linalg.generic over [N, C, out..., kernel...],
/// the kernel dimensions reducing over a window-shaped operand. MaxPool's
/// optional Indices output is the position of each maximum in the unpadded
/// input, flattened row-major (or column-major with storage_order = 1).
LogicalResult GraphImporter::importPool(const onnx::NodeProto &node) {
  FailureOr<Value> input = tensor(node, 0);
  if (failed(input))
    return failure();
  auto inputType = cast<RankedTensorType>(input->getType());
  Type elementType = inputType.getElementType();
  std::optional<SmallVector<int64_t>> kernel = intsAttr(node, "kernel_shape");
  if (!kernel)
    return fail(node, "kernel_shape is required");
  FailureOr<WindowShape> window = windowShape(node, inputType, *kernel);
  if (failed(window))
    return failure();
  bool isMax = node.op_type() == "MaxPool";
  bool wantsIndices = isMax && node.output_size() > 1 && !node.output(1).empty();
  bool columnMajor = intAttr(node, "storage_order", 0) == 1;
  bool isFloat = isa<FloatType>(elementType), isUnsignedInput = isUnsigned(node, 0);
  if (!isFloat && !isMax)
    return fail(node, "only floating-point inputs are supported");
  int64_t rank = kernel->size();
  SmallVector<int64_t> spatial(inputType.getShape().drop_front(2)), extra;
  for (int64_t d = 0; d < rank; ++d)
    extra.push_back(std::max<int64_t>(0, (window->outSizes[d] - 1) * window->strides[d] +
                                             window->span(d) - spatial[d] - window->pads[d] -
                                             window->pads[rank + d]));
  // Padding never wins a maximum: -inf, or the smallest integer.
  TypedAttr padValue = builder.getZeroAttr(elementType);
  if (isMax && isFloat)
    padValue = builder.getFloatAttr(elementType, -std::numeric_limits<double>::infinity());
  else if (isMax && !isUnsignedInput)
    padValue = builder.getIntegerAttr(
        elementType, APInt::getSignedMinValue(elementType.getIntOrFloatBitWidth()));
  Value padded = padSpatial(builder, loc, *input, window->pads, extra, padValue);

  int64_t loops = 2 + 2 * rank;
  auto dim = [&](int64_t d) { return getAffineDimExpr(d, context); };
  SmallVector<AffineExpr> in = {dim(0), dim(1)}, windowExprs, out = {dim(0), dim(1)};
  for (int64_t d = 0; d < rank; ++d) {
    in.push_back(dim(2 + d) * window->strides[d] + dim(2 + rank + d) * window->dilations[d]);
    windowExprs.push_back(dim(2 + rank + d));
    out.push_back(dim(2 + d));
  }
  Ints outSizes = {b.dim(*input, 0), b.dim(*input, 1)};
  for (int64_t size : window->outSizes)
    outSizes.push_back(builder.getIndexAttr(size));
  Ints kernelSizes;
  for (int64_t k : *kernel)
    kernelSizes.push_back(builder.getIndexAttr(k));
  SmallVector<Value> inits = {b.filled(outSizes, padValue)};
  if (wantsIndices)
    inits.push_back(b.filled(outSizes, builder.getI64IntegerAttr(0)));
  SmallVector<AffineMap> maps = {AffineMap::get(loops, 0, in, context),
                                 AffineMap::get(loops, 0, windowExprs, context)};
  maps.append(inits.size(), AffineMap::get(loops, 0, out, context));
  SmallVector<utils::IteratorType> iterators(2 + rank, utils::IteratorType::parallel);
  iterators.append(rank, utils::IteratorType::reduction);
  Value channels = b.indexValue(b.dim(*input, 1));
  auto pool = linalg::GenericOp::create(
      builder, loc, ValueRange(inits).getTypes(), ValueRange{padded, b.empty(kernelSizes, elementType)},
      inits, maps, iterators, [&](OpBuilder &nb, Location l, ValueRange args) {
        if (!isMax) {
          linalg::YieldOp::create(nb, l, arith::AddFOp::create(nb, l, args[2], args[0]).getResult());
          return;
        }
        Value greater =
            isFloat ? Value(arith::CmpFOp::create(nb, l, arith::CmpFPredicate::OGT, args[0], args[2]))
                    : Value(arith::CmpIOp::create(nb, l,
                                                  isUnsignedInput ? arith::CmpIPredicate::ugt
                                                                  : arith::CmpIPredicate::sgt,
                                                  args[0], args[2]));
        Value larger = arith::SelectOp::create(nb, l, greater, args[0], args[2]);
        if (!wantsIndices) { // maximumf: a NaN in the window wins, as in np.max.
          linalg::YieldOp::create(
              nb, l, isFloat ? Value(arith::MaximumFOp::create(nb, l, args[2], args[0])) : larger);
          return;
        }
        // flat = ((n·C + c)·H + h)·W + w (column-major: ((n·C + c)·W + w)·H + h)
        // with h = y·stride + k·dilation - pad.
        Value flat = arith::AddIOp::create(
            nb, l, arith::MulIOp::create(nb, l, linalg::IndexOp::create(nb, l, 0), channels),
            linalg::IndexOp::create(nb, l, 1));
        for (int64_t step = 0; step < rank; ++step) {
          int64_t d = columnMajor ? rank - 1 - step : step;
          int64_t offset = -window->pads[d];
          Value position = arith::AddIOp::create(
              nb, l,
              arith::MulIOp::create(nb, l, linalg::IndexOp::create(nb, l, 2 + d),
                                    arith::ConstantIndexOp::create(nb, l, window->strides[d])),
              arith::MulIOp::create(nb, l, linalg::IndexOp::create(nb, l, 2 + rank + d),
                                    arith::ConstantIndexOp::create(nb, l, window->dilations[d])));
          position = arith::AddIOp::create(nb, l, position, arith::ConstantIndexOp::create(nb, l, offset));
          flat = arith::AddIOp::create(
              nb, l, arith::MulIOp::create(nb, l, flat, arith::ConstantIndexOp::create(nb, l, spatial[d])),
              position);
        }
        Value index = arith::IndexCastOp::create(nb, l, nb.getI64Type(), flat);
        linalg::YieldOp::create(nb, l, ValueRange{larger, arith::SelectOp::create(nb, l, greater, index, args[3])});
      });
  Value result = pool.getResult(0);
  b.recordSizes(result, outSizes);
  if (!isMax) {
    DenseElementsAttr counts =
        windowCounts(*window, spatial, intAttr(node, "count_include_pad", 0), elementType);
    Value divisors = arith::ConstantOp::create(builder, loc, counts);
    result = b.elementwise(ValueRange{result, divisors}, elementType,
                           [](OpBuilder &nb, Location l, ValueRange args) {
                             return arith::DivFOp::create(nb, l, args[0], args[1]);
                           });
  }
  setTensor(node, 0, result);
  if (wantsIndices)
    setTensor(node, 1, pool.getResult(1));
  return success();
}

//===----------------------------------------------------------------------===//
// BatchNormalization
//===----------------------------------------------------------------------===//

/// Inference: y = (x - mean) / sqrt(var + ε) · scale + bias per channel
/// (dimension 1). Training mode normalizes with the batch statistics and also
/// returns the updated running mean and variance.
LogicalResult GraphImporter::importBatchNorm(const onnx::NodeProto &node) {
  SmallVector<Value> operands;
  for (int i = 0; i < 5; ++i) {
    FailureOr<Value> operand = tensor(node, i);
    if (failed(operand))
      return failure();
    operands.push_back(*operand);
  }
  Value x = operands[0];
  auto type = cast<RankedTensorType>(x.getType());
  Type elementType = type.getElementType();
  int64_t rank = type.getRank();
  if (rank < 2)
    return fail(node, "input must have a channel dimension");
  // [C] parameters broadcast as [C, 1, ...].
  SmallVector<int64_t> trailing = llvm::to_vector(llvm::seq<int64_t>(1, rank - 1));
  auto perChannel = [&](Value parameter) { return b.insertUnitDims(parameter, trailing); };
  float epsilon = floatAttr(node, "epsilon", 1e-5f);
  Value mean = perChannel(operands[3]), variance = perChannel(operands[4]);
  bool training = intAttr(node, "training_mode", 0);
  Value batchMean, batchVariance;
  if (training) {
    SmallVector<int64_t> axes = {0};
    llvm::append_range(axes, llvm::seq<int64_t>(2, rank));
    batchMean = b.mean(x, axes, /*keepDims=*/false);
    Value centered = b.elementwise(ValueRange{x, perChannel(batchMean)}, elementType,
                                   [](OpBuilder &nb, Location l, ValueRange args) {
                                     Value d = arith::SubFOp::create(nb, l, args[0], args[1]);
                                     return arith::MulFOp::create(nb, l, d, d);
                                   });
    batchVariance = b.mean(centered, axes, /*keepDims=*/false);
    mean = perChannel(batchMean);
    variance = perChannel(batchVariance);
  }
  setTensor(node, 0, b.elementwise(ValueRange{x, mean, variance, perChannel(operands[1]),
                                              perChannel(operands[2])},
                                   elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
    Value eps = arith::ConstantOp::create(nb, l, nb.getFloatAttr(elementType, epsilon));
    Value stddev = math::SqrtOp::create(nb, l, arith::AddFOp::create(nb, l, args[2], eps));
    Value normalized = arith::DivFOp::create(nb, l, arith::SubFOp::create(nb, l, args[0], args[1]), stddev);
    return arith::AddFOp::create(nb, l, arith::MulFOp::create(nb, l, normalized, args[3]), args[4]);
  }));
  if (!training)
    return success();
  float momentum = floatAttr(node, "momentum", 0.9f);
  auto running = [&](Value previous, Value current) {
    return b.elementwise(ValueRange{previous, current}, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
      Value keep = arith::ConstantOp::create(nb, l, nb.getFloatAttr(elementType, momentum));
      Value take = arith::ConstantOp::create(nb, l, nb.getFloatAttr(elementType, 1 - momentum));
      return arith::AddFOp::create(nb, l, arith::MulFOp::create(nb, l, args[0], keep),
                                   arith::MulFOp::create(nb, l, args[1], take));
    });
  };
  setTensor(node, 1, running(operands[3], batchMean));
  setTensor(node, 2, running(operands[4], batchVariance));
  return success();
}


//===----------------------------------------------------------------------===//
// Resize
//===----------------------------------------------------------------------===//

namespace {

/// How Resize samples one resized dimension: for each output position, the
/// input positions it reads ("taps", clamped into the input) and their
/// weights, computed at compile time exactly as ONNX's reference does.
struct ResizeTable {
  int64_t taps;
  SmallVector<int64_t> indices;  // [out, taps]
  SmallVector<double> weights;   // [out, taps]
  SmallVector<bool> outside;     // [out]: tf_crop_and_resize extrapolates
};

struct ResizeMode {
  std::string mode, coordinates, nearest;
  double cubicA = -0.75, extrapolation = 0;
  bool excludeOutside = false;
};

/// The source coordinate of output position `x`, or nothing when
/// tf_crop_and_resize puts it outside the input.
std::optional<double> sourceCoordinate(const ResizeMode &m, double x, int64_t in, double scale,
                                       double roiStart, double roiEnd) {
  double outWidth = scale * in;
  const std::string &c = m.coordinates;
  if (c == "align_corners")
    return outWidth == 1 ? 0.0 : x * (in - 1) / (outWidth - 1);
  if (c == "asymmetric")
    return x / scale;
  if (c == "pytorch_half_pixel")
    return outWidth == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
  if (c == "tf_half_pixel_for_nn")
    return (x + 0.5) / scale;
  if (c == "half_pixel_symmetric") { // Opset 19: centred when sizes round.
    double adjustment = std::floor(outWidth) / outWidth;
    double offset = in / 2.0 * (1 - adjustment);
    return offset + (x + 0.5) / scale - 0.5;
  }
  if (c == "tf_crop_and_resize") {
    double source = outWidth == 1 ? (roiEnd - roiStart) * (in - 1) / 2
                                  : x * (roiEnd - roiStart) * (in - 1) / (outWidth - 1);
    source += roiStart * (in - 1);
    if (source < 0 || source > in - 1)
      return std::nullopt;
    return source;
  }
  return (x + 0.5) / scale - 0.5; // half_pixel
}

/// The interpolation weights of the taps around a source coordinate whose
/// fractional part is `ratio` (1 for whole coordinates).
SmallVector<double> tapWeights(const ResizeMode &m, double ratio) {
  if (m.mode == "linear")
    return {1 - ratio, ratio};
  if (m.mode == "cubic") {
    double a = m.cubicA, r = ratio, s = 1 - ratio;
    return {((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
            ((a + 2) * r - (a + 3)) * r * r + 1, ((a + 2) * s - (a + 3)) * s * s + 1,
            ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a};
  }
  bool whole = ratio == 1;
  bool upper = whole || (m.nearest == "round_prefer_ceil" ? ratio >= 0.5
                         : m.nearest == "floor"           ? false
                         : m.nearest == "ceil"            ? true
                                                          : ratio > 0.5);
  return {upper ? 0.0 : 1.0, upper ? 1.0 : 0.0};
}

ResizeTable resizeTable(const ResizeMode &m, int64_t in, int64_t out, double scale,
                        double roiStart, double roiEnd) {
  ResizeTable table;
  for (int64_t o = 0; o < out; ++o) {
    std::optional<double> source = sourceCoordinate(m, o, in, scale, roiStart, roiEnd);
    table.outside.push_back(!source);
    double x = source.value_or(0);
    double ratio = x == std::floor(x) ? 1 : x - std::floor(x);
    SmallVector<double> weights = tapWeights(m, ratio);
    int64_t n = weights.size(), pad = (n + 1) / 2;
    // The n positions of the edge-padded input nearest to x, smaller first.
    SmallVector<int64_t> candidates = llvm::to_vector(llvm::seq<int64_t>(0, in + 2 * pad));
    std::stable_sort(candidates.begin(), candidates.end(), [&](int64_t l, int64_t r) {
      return std::abs(x + pad - l) < std::abs(x + pad - r);
    });
    candidates.resize(n);
    llvm::sort(candidates);
    double total = 0;
    for (int64_t t = 0; t < n; ++t) {
      int64_t index = candidates[t] - pad;
      if (m.excludeOutside && (index < 0 || index >= in))
        weights[t] = 0;
      total += weights[t];
    }
    for (int64_t t = 0; t < n; ++t) {
      if (m.excludeOutside)
        weights[t] /= total;
      // Nearest keeps only its chosen tap; a row that extrapolates reads nothing.
      if (m.mode == "nearest" && weights[t] == 0 && t + 1 < n)
        continue;
      table.indices.push_back(std::clamp<int64_t>(candidates[t] - pad, 0, in - 1));
      table.weights.push_back(source ? weights[t] : 0);
      if (m.mode == "nearest")
        break;
    }
  }
  table.taps = table.indices.size() / out;
  return table;
}

/// Replaces the elements that tf_crop_and_resize puts outside the input with
/// `value`.
Value extrapolate(TensorBuilder &b, Value resized, ArrayRef<int64_t> dims,
                  ArrayRef<ResizeTable> tables, double value) {
  OpBuilder &builder = b.getBuilder();
  int64_t rank = cast<RankedTensorType>(resized.getType()).getRank();
  SmallVector<Value> operands = {resized};
  for (auto [d, table] : llvm::zip(dims, tables)) {
    if (llvm::none_of(table.outside, [](bool outside) { return outside; }))
      continue;
    auto type = RankedTensorType::get({static_cast<int64_t>(table.outside.size())},
                                      builder.getI1Type());
    Value mask = arith::ConstantOp::create(builder, b.getLoc(),
                                           DenseElementsAttr::get(type, ArrayRef<bool>(table.outside)));
    SmallVector<int64_t> others = llvm::to_vector(llvm::make_filter_range(
        llvm::seq<int64_t>(0, rank), [d = d](int64_t other) { return other != d; }));
    operands.push_back(b.insertUnitDims(mask, others));
  }
  if (operands.size() == 1)
    return resized;
  Type elementType = cast<RankedTensorType>(resized.getType()).getElementType();
  return b.elementwise(operands, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
    Value outside = args[1];
    for (Value mask : args.drop_front(2))
      outside = arith::OrIOp::create(nb, l, outside, mask);
    Value fill = arith::ConstantOp::create(nb, l, nb.getFloatAttr(elementType, value));
    return arith::SelectOp::create(nb, l, outside, fill, args[0]);
  });
}

} // namespace

FailureOr<std::optional<SmallVector<double>>>
GraphImporter::constantFloats(const onnx::NodeProto &node, int index) {
  if (!hasInput(node, index))
    return std::optional<SmallVector<double>>();
  FailureOr<ImportedValue *> e = entry(node, index);
  if (failed(e))
    return failure();
  if (!(*e)->constant)
    return fail(node, "input '" + node.input(index) + "' must be a constant");
  if (!isa<FloatType>((*e)->constant.getElementType()))
    return fail(node, "input '" + node.input(index) + "' must hold floating-point values");
  SmallVector<double> values;
  for (APFloat value : (*e)->constant.getValues<APFloat>())
    values.push_back(value.convertToDouble());
  if (values.empty()) // An empty tensor stands for an absent input.
    return std::optional<SmallVector<double>>();
  return std::optional<SmallVector<double>>(std::move(values));
}

/// Resize's scales, sizes and roi for every dimension: opset 18 may give
/// them for `axes` only, and may ask to keep the aspect ratio of `sizes`.
LogicalResult GraphImporter::spreadOverAxes(const onnx::NodeProto &node, int64_t rank,
                                            std::optional<SmallVector<double>> &roi,
                                            std::optional<SmallVector<double>> &scales,
                                            std::optional<SmallVector<int64_t>> &sizes) {
  SmallVector<int64_t> axes =
      intsAttr(node, "axes").value_or(llvm::to_vector(llvm::seq<int64_t>(0, rank)));
  llvm::SmallSet<int64_t, 4> seen;
  for (int64_t &axis : axes) {
    if (axis < -rank || axis >= rank)
      return fail(node, "axis " + llvm::Twine(axis) + " is out of range for rank " +
                            llvm::Twine(rank));
    axis = axis < 0 ? axis + rank : axis;
    if (!seen.insert(axis).second)
      return fail(node, "axis " + llvm::Twine(axis) + " is given twice");
  }
  size_t count = axes.size();
  if (bool(scales) == bool(sizes) || (scales ? scales->size() : sizes->size()) != count ||
      (roi && roi->size() != 2 * count))
    return fail(node, "needs either scales or sizes, one value per resized axis");
  std::string policy = stringAttr(node, "keep_aspect_ratio_policy", "stretch");
  auto inputType = cast<RankedTensorType>(values[node.input(0)].type());
  if (sizes && policy != "stretch") {
    // One scale for all axes, the smaller (not_larger) or larger of the ratios.
    double scale = policy == "not_larger" ? std::numeric_limits<double>::infinity() : 0;
    for (auto [axis, size] : llvm::zip(axes, *sizes)) {
      if (inputType.isDynamicDim(axis) || inputType.getDimSize(axis) == 0)
        return fail(node, "keep_aspect_ratio_policy needs static, non-empty resized axes");
      double ratio = static_cast<double>(size) / inputType.getDimSize(axis);
      scale = policy == "not_larger" ? std::min(scale, ratio) : std::max(scale, ratio);
    }
    for (auto [axis, size] : llvm::zip(axes, *sizes)) {
      // Converting a double out of int64's range is undefined: check first.
      double scaled = std::round(scale * inputType.getDimSize(axis));
      if (!(scaled >= 0 && scaled <= static_cast<double>(kMaxTensorBytes)))
        return fail(node, "sizes " + formatShape(*sizes) + " are out of range");
      size = static_cast<int64_t>(scaled);
    }
  }
  auto spread = [&](auto &given, auto fill) {
    if (!given || count == static_cast<size_t>(rank))
      return;
    std::remove_reference_t<decltype(*given)> all(rank, fill);
    for (auto [i, axis] : llvm::enumerate(axes))
      all[axis] = (*given)[i];
    given = std::move(all);
  };
  spread(scales, 1.0);
  if (sizes && count != static_cast<size_t>(rank)) {
    SmallVector<int64_t> all(inputType.getShape());
    for (auto [i, axis] : llvm::enumerate(axes))
      all[axis] = (*sizes)[i];
    sizes = std::move(all);
  }
  if (roi && count != static_cast<size_t>(rank)) {
    SmallVector<double> all(rank, 0.0);
    all.append(rank, 1.0);
    for (auto [i, axis] : llvm::enumerate(axes)) {
      all[axis] = (*roi)[i];
      all[rank + axis] = (*roi)[count + i];
    }
    roi = std::move(all);
  }
  return success();
}

/// Resize as one linalg.generic over [out..., taps of each resized
/// dimension...]: out = Σ Π weight_d · x[index_d...], the index and weight
/// tables computed at compile time. Dimensions that keep their size read
/// straight through, so they may be dynamic (the batch).
LogicalResult GraphImporter::importResize(const onnx::NodeProto &node) {
  FailureOr<Value> input = tensor(node, 0);
  if (failed(input))
    return failure();
  auto inputType = cast<RankedTensorType>(input->getType());
  Type elementType = inputType.getElementType();
  int64_t rank = inputType.getRank();
  if (!isa<FloatType>(elementType))
    return fail(node, "only floating-point inputs are supported");
  if (intAttr(node, "antialias", 0))
    return fail(node, "antialias is not supported");
  ResizeMode m{stringAttr(node, "mode", "nearest"),
               stringAttr(node, "coordinate_transformation_mode", "half_pixel"),
               stringAttr(node, "nearest_mode", "round_prefer_floor"),
               floatAttr(node, "cubic_coeff_a", -0.75f), floatAttr(node, "extrapolation_value", 0.f),
               intAttr(node, "exclude_outside", 0) != 0};
  auto roi = constantFloats(node, 1);
  auto scales = constantFloats(node, 2);
  auto sizes = constantList(node, 3);
  if (failed(roi) || failed(scales) || failed(sizes))
    return failure();
  if (failed(spreadOverAxes(node, rank, *roi, *scales, *sizes)))
    return failure();
  bool crop = m.coordinates == "tf_crop_and_resize";
  if (crop && (!*roi || (*roi)->size() != static_cast<size_t>(2 * rank)))
    return fail(node, "tf_crop_and_resize needs an roi with two values per dimension");

  SmallVector<int64_t> resized, outShape;
  SmallVector<ResizeTable> tables;
  Ints outSizes;
  for (int64_t d = 0; d < rank; ++d) {
    int64_t in = inputType.getDimSize(d);
    double scale = *scales ? (**scales)[d] : 0;
    double start = crop ? (**roi)[d] : 0, end = crop ? (**roi)[rank + d] : 1;
    bool keepsSize = (*scales ? scale == 1 : (**sizes)[d] == in) &&
                     (!crop || (start == 0 && end == 1) || in == 1);
    if (keepsSize) {
      outShape.push_back(in);
      outSizes.push_back(b.dim(*input, d));
      continue;
    }
    if (ShapedType::isDynamic(in))
      return fail(node, "dimension " + llvm::Twine(d) + " of input " +
                            formatShape(inputType.getShape()) +
                            " is resized, so it must be static");
    // Converting a double out of int64's range is undefined: check first.
    double scaled = scale * in;
    if (*scales && !(scaled >= 1 && scaled <= static_cast<double>(kMaxTensorBytes)))
      return fail(node, "dimension " + llvm::Twine(d) + " of size " + llvm::Twine(in) +
                            " scaled by " + llvm::Twine(std::to_string(scale)) + " is out of range");
    int64_t out = *scales ? static_cast<int64_t>(scaled) : (**sizes)[d];
    if (!*scales)
      scale = static_cast<double>(out) / in;
    // Each resized dimension gets a table of its size at compile time: a
    // hostile size would take hours and gigabytes to build.
    constexpr int64_t kMaxResizedSize = int64_t(1) << 20;
    if (out < 1 || scale <= 0 || out > kMaxResizedSize)
      return fail(node, "dimension " + llvm::Twine(d) + " resizes to " + llvm::Twine(out) +
                            " (1 to " + llvm::Twine(kMaxResizedSize) + ")");
    resized.push_back(d);
    tables.push_back(resizeTable(m, in, out, scale, start, end));
    outShape.push_back(out);
    outSizes.push_back(builder.getIndexAttr(out));
  }
  if (m.mode != "nearest" && m.mode != "linear" && m.mode != "cubic")
    return fail(node, "mode '" + m.mode + "' is not nearest, linear or cubic");

  // Loops: the output dimensions, then one tap dimension per resized one.
  int64_t loops = rank + resized.size();
  SmallVector<Value> operands;
  SmallVector<AffineMap> maps;
  for (auto [i, d] : llvm::enumerate(resized)) {
    ResizeTable &table = tables[i];
    auto indexType = RankedTensorType::get({outShape[d], table.taps}, builder.getI64Type());
    auto weightType = RankedTensorType::get({outShape[d], table.taps}, elementType);
    operands.push_back(arith::ConstantOp::create(
        builder, loc, DenseElementsAttr::get(indexType, ArrayRef<int64_t>(table.indices))));
    operands.push_back(
        arith::ConstantOp::create(builder, loc, floatElements(weightType, table.weights)));
    AffineMap map = AffineMap::get(loops, 0,
                                   {getAffineDimExpr(d, context), getAffineDimExpr(rank + i, context)},
                                   context);
    maps.append({map, map});
  }
  Value init = b.filled(outSizes, builder.getZeroAttr(elementType));
  maps.push_back(AffineMap::getMultiDimIdentityMap(loops, context).getMajorSubMap(rank));
  SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
  iterators.append(resized.size(), utils::IteratorType::reduction);
  Value source = *input;
  Value result =
      linalg::GenericOp::create(
          builder, loc, init.getType(), operands, init, maps, iterators,
          [&](OpBuilder &nb, Location l, ValueRange args) {
            SmallVector<Value> coordinates;
            Value weight;
            for (int64_t d = 0, i = 0; d < rank; ++d) {
              if (i < static_cast<int64_t>(resized.size()) && resized[i] == d) {
                coordinates.push_back(
                    arith::IndexCastOp::create(nb, l, nb.getIndexType(), args[2 * i]));
                weight = weight ? Value(arith::MulFOp::create(nb, l, weight, args[2 * i + 1]))
                                : args[2 * i + 1];
                ++i;
              } else {
                coordinates.push_back(linalg::IndexOp::create(nb, l, d));
              }
            }
            Value element = tensor::ExtractOp::create(nb, l, source, coordinates);
            Value term = weight ? Value(arith::MulFOp::create(nb, l, element, weight)) : element;
            linalg::YieldOp::create(nb, l, arith::AddFOp::create(nb, l, args.back(), term).getResult());
          })
          .getResult(0);
  b.recordSizes(result, outSizes);
  result = extrapolate(b, result, resized, tables, m.extrapolation);
  setTensor(node, 0, result);
  return success();
}

} // namespace peft
