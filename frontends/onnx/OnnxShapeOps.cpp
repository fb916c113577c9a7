//===- OnnxShapeOps.cpp - Shapes, indexing and data movement ----------------===//
#include "frontends/onnx/GraphImporter.h"

#include "dialects/peft/PeftDialect.h"
#include "frontends/onnx/OnnxWeights.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

#include <cmath>

using namespace mlir;

namespace peft {

/// Normalizes a possibly negative axis against `rank`.
static std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

/// An integer index as an `index`, a negative one counting back from `size`
/// (Gather's and GatherElements' indices); built inside a linalg body.
static Value wrappedIndex(OpBuilder &b, Location loc, Value integer, Value size) {
  Value index = arith::IndexCastOp::create(b, loc, b.getIndexType(), integer);
  Value negative = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, index,
                                         arith::ConstantIndexOp::create(b, loc, 0));
  return arith::SelectOp::create(b, loc, negative, arith::AddIOp::create(b, loc, index, size),
                                 index);
}

/// wrappedIndex() clamped into [0, size): a gather never reads outside its
/// table. ONNX leaves out-of-range indices undefined; the runtime refuses them
/// in a model's inputs (ManifestTensor::indexBound), and this covers computed ones.
static Value gatherIndex(OpBuilder &b, Location loc, Value integer, Value size) {
  Value index = wrappedIndex(b, loc, integer, size);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value last = arith::MaxSIOp::create(
      b, loc, arith::SubIOp::create(b, loc, size, arith::ConstantIndexOp::create(b, loc, 1)), zero);
  return arith::MinSIOp::create(b, loc, arith::MaxSIOp::create(b, loc, index, zero), last);
}

static int64_t rankOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getRank();
}

LogicalResult GraphImporter::importIdentity(const onnx::NodeProto &node) {
  // Dropout is the identity at inference, or with a ratio of 0; in training
  // mode it is random.
  if (node.op_type() == "Dropout" && hasInput(node, 2)) {
    FailureOr<Ints> training = ints(node, 2);
    if (failed(training))
      return failure();
    auto ratio = constantFloats(node, 1);
    if (failed(ratio))
      return failure();
    bool keepsAll = *ratio && (*ratio)->size() == 1 && (**ratio)[0] == 0;
    if (constantInts(*training) != SmallVector<int64_t>{0} && !keepsAll)
      return fail(node, "training-mode Dropout is not supported (it is random)");
  }
  FailureOr<ImportedValue *> input = entry(node, 0);
  if (failed(input))
    return failure();
  ImportedValue &output = values[node.output(0)] = **input;
  if (output.constant && !output.weightName.empty()) {
    // torch's exporter shares equal small parameters (fresh layer norms)
    // through Identity nodes; each keeps the name its module reads.
    output.weightName = node.output(0);
    output.tensor = Value();
  }
  if (node.op_type() == "Dropout" && node.output_size() > 1 && !node.output(1).empty()) {
    // At inference every element is kept: the mask is all true.
    Value x = materialize(values[node.output(0)]);
    setTensor(node, 1, b.filled(b.dims(x), builder.getBoolAttr(true)));
  }
  return success();
}

LogicalResult GraphImporter::importShape(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  Ints sizes = b.dims(*x);
  int64_t rank = sizes.size();
  int64_t start = intAttr(node, "start", 0), end = intAttr(node, "end", rank);
  start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
  end = std::clamp<int64_t>(end < 0 ? end + rank : end, 0, rank);
  setInts(node, 0, Ints(sizes.begin() + start, sizes.begin() + std::max(start, end)), false,
          builder.getI64Type());
  return success();
}

LogicalResult GraphImporter::importSize(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  setInts(node, 0, {b.product(b.dims(*x))}, /*scalar=*/true, builder.getI64Type());
  return success();
}

/// out[i...] = data[i... with indices[i...] at axis]; a negative index counts
/// from the end of the axis.
LogicalResult GraphImporter::importGatherElements(const onnx::NodeProto &node) {
  FailureOr<Value> data = tensor(node, 0), indices = tensor(node, 1);
  if (failed(data) || failed(indices))
    return failure();
  int64_t rank = rankOf(*data);
  std::optional<int64_t> axis = normalizeAxis(intAttr(node, "axis", 0), rank);
  if (!axis || rankOf(*indices) != rank)
    return fail(node, "indices must have the data's rank and axis must be in range");
  Type elementType = cast<RankedTensorType>(data->getType()).getElementType();
  Value init = b.empty(b.dims(*indices), elementType);
  Value axisSize = b.indexValue(b.dim(*data, *axis));
  boundIndices(*indices, b.dim(*data, *axis));
  AffineMap identity = builder.getMultiDimIdentityMap(rank);
  Value source = *data;
  setTensor(node, 0, linalg::GenericOp::create(
      builder, loc, init.getType(), *indices, init, ArrayRef<AffineMap>{identity, identity},
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value index = gatherIndex(nb, l, args[0], axisSize);
        SmallVector<Value> coordinates;
        for (int64_t d = 0; d < rank; ++d)
          coordinates.push_back(d == *axis ? index : Value(linalg::IndexOp::create(nb, l, d)));
        linalg::YieldOp::create(nb, l, tensor::ExtractOp::create(nb, l, source, coordinates).getResult());
      }).getResult(0));
  return success();
}

/// Rows of a weight matrix picked by integer ids are an embedding layer
/// (nn.Embedding exports as Gather(weight, ids)); fails without an error
/// when the Gather is something else.
LogicalResult GraphImporter::importEmbedding(const onnx::NodeProto &node) {
  auto table = hasInput(node, 0) ? values.find(node.input(0)) : values.end();
  if (table == values.end() || table->second.weightName.empty() ||
      table->second.type().getRank() != 2 || intAttr(node, "axis", 0) != 0 ||
      !isa<FloatType>(table->second.type().getElementType()))
    return failure();
  FailureOr<Value> ids = tensor(node, 1);
  if (failed(ids))
    return failure();
  Value weight = layerWeight(table->second);
  auto idsType = cast<RankedTensorType>(ids->getType());
  SmallVector<int64_t> shape(idsType.getShape());
  shape.push_back(cast<RankedTensorType>(weight.getType()).getDimSize(1));
  auto resultType = RankedTensorType::get(shape, cast<RankedTensorType>(weight.getType()).getElementType());
  auto embedding = EmbeddingOp::create(
      builder, loc, resultType,
      builder.getStringAttr(modulePathFor(node, table->second.weightName)), *ids, weight);
  Ints sizes = b.dims(*ids);
  sizes.push_back(b.dim(weight, 1));
  b.recordSizes(embedding.getResult(), sizes);
  boundIndices(*ids, b.dim(weight, 0));
  setTensor(node, 0, embedding.getResult());
  return success();
}

LogicalResult GraphImporter::importGather(const onnx::NodeProto &node) {
  // Picking elements of a known integer vector stays known.
  if (knowsInts(node, 0) && knowsInts(node, 1) && intAttr(node, "axis", 0) == 0) {
    auto indices = constantInts(*values[node.input(1)].ints);
    Ints &source = *values[node.input(0)].ints;
    if (indices) {
      Ints picked;
      for (int64_t index : *indices) {
        index = index < 0 ? index + static_cast<int64_t>(source.size()) : index;
        if (index < 0 || index >= static_cast<int64_t>(source.size()))
          return fail(node, "index " + llvm::Twine(index) + " is out of range");
        picked.push_back(source[index]);
      }
      setInts(node, 0, std::move(picked), values[node.input(1)].scalar,
              values[node.input(0)].type().getElementType());
      return success();
    }
  }
  if (succeeded(importEmbedding(node)))
    return success();
  if (!error.empty())
    return failure();
  FailureOr<Value> data = tensor(node, 0), indices = tensor(node, 1);
  if (failed(data) || failed(indices))
    return failure();
  std::optional<int64_t> axis = normalizeAxis(intAttr(node, "axis", 0), rankOf(*data));
  if (!axis)
    return fail(node, "axis is out of range");
  auto dataType = cast<RankedTensorType>(data->getType());
  int64_t indexRank = rankOf(*indices);
  // out[pre..., idx..., post...] = data[pre..., indices[idx...], post...]
  Ints sizes;
  for (int64_t d = 0; d < *axis; ++d)
    sizes.push_back(b.dim(*data, d));
  for (int64_t d = 0; d < indexRank; ++d)
    sizes.push_back(b.dim(*indices, d));
  for (int64_t d = *axis + 1; d < dataType.getRank(); ++d)
    sizes.push_back(b.dim(*data, d));
  int64_t rank = sizes.size();
  Value init = b.empty(sizes, dataType.getElementType());
  SmallVector<AffineExpr> indexExprs;
  for (int64_t d = 0; d < indexRank; ++d)
    indexExprs.push_back(getAffineDimExpr(*axis + d, context));
  SmallVector<AffineMap> maps = {AffineMap::get(rank, 0, indexExprs, context),
                                 AffineMap::getMultiDimIdentityMap(rank, context)};
  Value axisSize = b.indexValue(b.dim(*data, *axis));
  boundIndices(*indices, b.dim(*data, *axis));
  Value gathered = linalg::GenericOp::create(
      builder, loc, init.getType(), *indices, init, maps,
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value index = gatherIndex(nb, l, args[0], axisSize);
        SmallVector<Value> coordinates;
        for (int64_t d = 0; d < *axis; ++d)
          coordinates.push_back(linalg::IndexOp::create(nb, l, d));
        coordinates.push_back(index);
        for (int64_t d = *axis + indexRank; d < rank; ++d)
          coordinates.push_back(linalg::IndexOp::create(nb, l, d));
        linalg::YieldOp::create(nb, l, tensor::ExtractOp::create(nb, l, *data, coordinates).getResult());
      }).getResult(0);
  setTensor(node, 0, gathered);
  return success();
}

LogicalResult GraphImporter::importUnsqueeze(const onnx::NodeProto &node) {
  FailureOr<ImportedValue *> input = entry(node, 0);
  if (failed(input))
    return failure();
  auto given = constantList(node, 1, "axes");
  if (failed(given))
    return failure();
  SmallVector<int64_t> axes = given->value_or(SmallVector<int64_t>{});
  int64_t rank = (*input)->type().getRank() + axes.size();
  for (int64_t &axis : axes) {
    std::optional<int64_t> normalized = normalizeAxis(axis, rank);
    if (!normalized)
      return fail(node, "axis " + llvm::Twine(axis) + " is out of range");
    axis = *normalized;
  }
  llvm::sort(axes);
  if ((*input)->ints && (*input)->scalar && axes == SmallVector<int64_t>{0}) {
    setInts(node, 0, *(*input)->ints, false, (*input)->type().getElementType());
    return success();
  }
  setTensor(node, 0, b.insertUnitDims(materialize(**input), axes));
  return success();
}

LogicalResult GraphImporter::importSqueeze(const onnx::NodeProto &node) {
  FailureOr<ImportedValue *> input = entry(node, 0);
  if (failed(input))
    return failure();
  RankedTensorType type = (*input)->type();
  auto given = constantList(node, 1, "axes");
  if (failed(given))
    return failure();
  SmallVector<int64_t> axes;
  if (*given) {
    axes = **given;
  } else { // Every size-1 dimension.
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (type.getDimSize(d) == 1)
        axes.push_back(d);
  }
  for (int64_t &axis : axes) {
    std::optional<int64_t> normalized = normalizeAxis(axis, type.getRank());
    if (!normalized || type.getDimSize(*normalized) != 1)
      return fail(node, "axis " + llvm::Twine(axis) + " is not a dimension of size 1");
    axis = *normalized;
  }
  if ((*input)->ints && !(*input)->scalar && (*input)->ints->size() == 1) {
    setInts(node, 0, *(*input)->ints, true, type.getElementType());
    return success();
  }
  setTensor(node, 0, b.dropUnitDims(materialize(**input), axes));
  return success();
}

LogicalResult GraphImporter::importConcat(const onnx::NodeProto &node) {
  bool allKnown = true;
  for (int i = 0; i < node.input_size(); ++i)
    allKnown &= knowsInts(node, i);
  if (allKnown) {
    Ints joined;
    for (int i = 0; i < node.input_size(); ++i)
      llvm::append_range(joined, *values[node.input(i)].ints);
    setInts(node, 0, std::move(joined), false, values[node.input(0)].type().getElementType());
    return success();
  }
  SmallVector<Value> inputs;
  for (int i = 0; i < node.input_size(); ++i) {
    FailureOr<Value> input = tensor(node, i);
    if (failed(input))
      return failure();
    inputs.push_back(*input);
  }
  int64_t rank = rankOf(inputs[0]);
  std::optional<int64_t> axis = normalizeAxis(intAttr(node, "axis", 0), rank);
  if (!axis)
    return fail(node, "axis is out of range");
  for (size_t i = 1; i < inputs.size(); ++i)
    if (rankOf(inputs[i]) != rank)
      return fail(node, "input " + std::to_string(i) + " has rank " +
                            std::to_string(rankOf(inputs[i])) + ", input 0 has rank " +
                            std::to_string(rank));
  Ints sizes = b.dims(inputs[0]);
  for (size_t i = 1; i < inputs.size(); ++i)
    sizes[*axis] = b.add(sizes[*axis], b.dim(inputs[i], *axis));
  Value result = b.empty(sizes, cast<RankedTensorType>(inputs[0].getType()).getElementType());
  OpFoldResult offset = builder.getIndexAttr(0);
  for (Value input : inputs) {
    Ints offsets(rank, builder.getIndexAttr(0));
    offsets[*axis] = offset;
    Ints strides(rank, builder.getIndexAttr(1));
    result = tensor::InsertSliceOp::create(builder, loc, input, result, offsets, b.dims(input), strides);
    offset = b.add(offset, b.dim(input, *axis));
  }
  setTensor(node, 0, result);
  return success();
}

LogicalResult GraphImporter::importReshape(const onnx::NodeProto &node) {
  // A known vector or scalar reshaped to a vector stays known.
  if (knowsInts(node, 0) && knowsInts(node, 1)) {
    ImportedValue &known = values[node.input(0)];
    auto target = constantInts(*values[node.input(1)].ints);
    int64_t count = known.ints->size();
    if (target && target->size() == 1 && ((*target)[0] == -1 || (*target)[0] == count)) {
      setInts(node, 0, *known.ints, false, known.type().getElementType());
      return success();
    }
  }
  FailureOr<Value> x = tensor(node, 0);
  FailureOr<Ints> shape = ints(node, 1);
  if (failed(x) || failed(shape))
    return failure();
  bool allowZero = intAttr(node, "allowzero", 0);
  Ints inputSizes = b.dims(*x);
  Ints sizes;
  int64_t inferred = -1;
  for (auto [i, size] : llvm::enumerate(*shape)) {
    std::optional<int64_t> constant = getConstantIntValue(size);
    if (constant == 0 && !allowZero) {
      if (i >= inputSizes.size())
        return fail(node, "shape copies dimension " + llvm::Twine(i) + " the input lacks");
      sizes.push_back(inputSizes[i]);
    } else if (constant == -1) {
      if (inferred >= 0)
        return fail(node, "shape has more than one -1");
      inferred = i;
      sizes.push_back(builder.getIndexAttr(1));
    } else {
      sizes.push_back(size);
    }
  }
  SmallVector<int64_t> constantSizes;
  for (OpFoldResult size : sizes)
    if (std::optional<int64_t> constant = getConstantIntValue(size))
      constantSizes.push_back(*constant);
  if (!checkedByteSize(constantSizes, DType::F64))
    return fail(node, "shape " + formatShape(constantSizes) + " is invalid or too large");
  if (inferred >= 0) {
    // ONNX leaves -1 undefined next to a 0 (allowzero) or an empty input.
    if (llvm::any_of(sizes, [](OpFoldResult size) { return getConstantIntValue(size) == 0; }))
      return fail(node, "shape infers a -1 dimension beside a 0");
    sizes[inferred] = b.quotient(inputSizes, sizes);
  }
  auto total = constantInts(sizes), inputTotal = constantInts(inputSizes);
  if (total && inputTotal && numElements(*total) != numElements(*inputTotal))
    return fail(node, "cannot reshape " + llvm::Twine(numElements(*inputTotal)) +
                          " elements into " + formatShape(*total));
  setTensor(node, 0, b.reshape(*x, sizes));
  return success();
}

/// Flatten(x, axis): [d0 ... d(axis-1)] x [d(axis) ... d(n-1)] as a matrix.
LogicalResult GraphImporter::importFlatten(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  int64_t rank = rankOf(*x);
  int64_t axis = intAttr(node, "axis", 1);
  if (axis < -rank || axis > rank)
    return fail(node, "axis " + llvm::Twine(axis) + " is out of range for rank " + llvm::Twine(rank));
  axis = axis < 0 ? axis + rank : axis;
  Ints sizes = b.dims(*x);
  Ints rows(sizes.begin(), sizes.begin() + axis), cols(sizes.begin() + axis, sizes.end());
  setTensor(node, 0, b.reshape(*x, {b.product(rows), b.product(cols)}));
  return success();
}

LogicalResult GraphImporter::importTranspose(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  int64_t rank = rankOf(*x);
  SmallVector<int64_t> perm = intsAttr(node, "perm").value_or(
      llvm::to_vector(llvm::reverse(llvm::seq<int64_t>(0, rank))));
  SmallVector<int64_t> sorted(perm);
  llvm::sort(sorted);
  if (sorted != llvm::to_vector(llvm::seq<int64_t>(0, rank)))
    return fail(node, "perm is not a permutation of the input's " + llvm::Twine(rank) +
                          " dimensions");
  Ints sizes;
  for (int64_t p : perm)
    sizes.push_back(b.dim(*x, p));
  Value init = b.empty(sizes, cast<RankedTensorType>(x->getType()).getElementType());
  setTensor(node, 0, linalg::TransposeOp::create(builder, loc, *x, init, perm).getResult()[0]);
  return success();
}

LogicalResult GraphImporter::importSplit(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  int64_t rank = rankOf(*x);
  std::optional<int64_t> axis = normalizeAxis(intAttr(node, "axis", 0), rank);
  if (!axis)
    return fail(node, "axis is out of range");
  Ints parts;
  if (hasInput(node, 1)) {
    FailureOr<Ints> known = ints(node, 1);
    if (failed(known))
      return failure();
    parts = *known;
  } else if (auto attr = intsAttr(node, "split")) {
    for (int64_t size : *attr)
      parts.push_back(builder.getIndexAttr(size));
  } else {
    int64_t count = intAttr(node, "num_outputs", node.output_size());
    if (count <= 0)
      return fail(node, "splits into " + llvm::Twine(count) + " outputs");
    auto total = getConstantIntValue(b.dim(*x, *axis));
    if (!total)
      return fail(node, "splitting a dynamic dimension needs explicit sizes");
    int64_t chunk = (*total + count - 1) / count;
    for (int64_t i = 0; i < count; ++i)
      parts.push_back(builder.getIndexAttr(std::min(chunk, *total - i * chunk)));
  }
  if (static_cast<int>(parts.size()) != node.output_size())
    return fail(node, "the split sizes do not match the number of outputs");
  OpFoldResult offset = builder.getIndexAttr(0);
  for (auto [i, size] : llvm::enumerate(parts)) {
    Ints offsets(rank, builder.getIndexAttr(0)), sizes = b.dims(*x);
    offsets[*axis] = offset;
    sizes[*axis] = size;
    Ints strides(rank, builder.getIndexAttr(1));
    setTensor(node, i, b.extractSlice(*x, offsets, sizes, strides));
    offset = b.add(offset, size);
  }
  return success();
}

/// Reverses `input` along `axes`.
static Value reverse(TensorBuilder &b, Value input, ArrayRef<int64_t> axes) {
  OpBuilder &builder = b.getBuilder();
  auto type = cast<RankedTensorType>(input.getType());
  int64_t rank = type.getRank();
  Ints sizes = b.dims(input);
  SmallVector<Value> lasts;
  for (int64_t axis : axes)
    lasts.push_back(b.indexValue(b.sub(sizes[axis], builder.getIndexAttr(1))));
  Value init = b.empty(sizes, type.getElementType());
  AffineMap identity = builder.getMultiDimIdentityMap(rank);
  return linalg::GenericOp::create(
             builder, b.getLoc(), init.getType(), ValueRange{}, init, ArrayRef<AffineMap>{identity},
             SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location l, ValueRange) {
               SmallVector<Value> coordinates;
               for (int64_t d = 0; d < rank; ++d) {
                 Value index = linalg::IndexOp::create(nb, l, d);
                 if (const auto *found = llvm::find(axes, d); found != axes.end())
                   index = arith::SubIOp::create(nb, l, lasts[found - axes.begin()], index);
                 coordinates.push_back(index);
               }
               linalg::YieldOp::create(nb, l,
                                       tensor::ExtractOp::create(nb, l, input, coordinates).getResult());
             })
      .getResult(0);
}

/// Slice with starts and ends that may be dynamic (sequence lengths); axes and
/// steps must be constants. Negative steps read backwards.
LogicalResult GraphImporter::importSlice(const onnx::NodeProto &node) {
  FailureOr<ImportedValue *> input = entry(node, 0);
  FailureOr<Ints> starts = runtimeInts(node, 1), ends = runtimeInts(node, 2);
  if (failed(input) || failed(starts) || failed(ends))
    return failure();
  if (starts->size() != ends->size())
    return fail(node, "starts and ends differ in length");
  auto axesList = constantList(node, 3), stepsList = constantList(node, 4);
  if (failed(axesList) || failed(stepsList))
    return failure();
  int64_t rank = (*input)->type().getRank();
  SmallVector<int64_t> axes =
      axesList->value_or(llvm::to_vector(llvm::seq<int64_t>(0, starts->size())));
  SmallVector<int64_t> steps = stepsList->value_or(SmallVector<int64_t>(starts->size(), 1));
  if (axes.size() != starts->size() || steps.size() != starts->size())
    return fail(node, "starts, ends, axes and steps differ in length");
  bool knownVector = (*input)->ints.has_value();
  Ints sizes = knownVector ? Ints{builder.getIndexAttr((*input)->ints->size())}
                           : b.dims(materialize(**input));
  Ints offsets(rank, builder.getIndexAttr(0)), strides(rank, builder.getIndexAttr(1));
  SmallVector<int64_t> reversed;
  for (size_t i = 0; i < starts->size(); ++i) {
    std::optional<int64_t> axis = normalizeAxis(axes[i], rank);
    if (!axis || steps[i] == 0 || steps[i] == std::numeric_limits<int64_t>::min())
      return fail(node, "axis " + llvm::Twine(axes[i]) + " or step " + llvm::Twine(steps[i]) +
                            " is invalid");
    auto [first, count] = b.sliceBounds((*starts)[i], (*ends)[i], steps[i], sizes[*axis]);
    offsets[*axis] = first;
    sizes[*axis] = count;
    strides[*axis] = builder.getIndexAttr(std::abs(steps[i]));
    if (steps[i] < 0)
      reversed.push_back(*axis);
  }
  if (knownVector && rank == 1) { // Slicing a known vector stays known.
    std::optional<int64_t> offset = getConstantIntValue(offsets[0]);
    std::optional<int64_t> count = getConstantIntValue(sizes[0]);
    if (offset && count) {
      int64_t stride = *getConstantIntValue(strides[0]);
      Ints picked;
      for (int64_t i = 0; i < *count; ++i)
        picked.push_back((*(*input)->ints)[*offset + i * stride]);
      if (!reversed.empty())
        std::reverse(picked.begin(), picked.end());
      setInts(node, 0, std::move(picked), false, (*input)->type().getElementType());
      return success();
    }
  }
  Value sliced = b.extractSlice(materialize(**input), offsets, sizes, strides);
  setTensor(node, 0, reversed.empty() ? sliced : reverse(b, sliced, reversed));
  return success();
}

LogicalResult GraphImporter::importCastLike(const onnx::NodeProto &node) {
  FailureOr<ImportedValue *> like = entry(node, 1);
  FailureOr<Value> x = tensor(node, 0);
  if (failed(like) || failed(x))
    return failure();
  setTensor(node, 0, b.castElements(*x, (*like)->type().getElementType(), isUnsigned(node, 0),
                                    (*like)->isUnsigned));
  values[node.output(0)].isUnsigned = (*like)->isUnsigned;
  return success();
}

LogicalResult GraphImporter::importCast(const onnx::NodeProto &node) {
  std::optional<DType> dtype = dtypeOfOnnx(intAttr(node, "to", 0));
  Type to = dtype ? elementTypeOf(*dtype, context) : Type();
  if (!to)
    return fail(node, "unsupported target type " +
                          onnx::TensorProto::DataType_Name(
                              static_cast<onnx::TensorProto::DataType>(intAttr(node, "to", 0))));
  if (knowsInts(node, 0) && to.isInteger() && !to.isInteger(1)) {
    ImportedValue known = values[node.input(0)];
    setInts(node, 0, *known.ints, known.scalar, to);
    values[node.output(0)].isUnsigned = isUnsignedDType(dtype);
    return success();
  }
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  bool toUnsigned = isUnsignedDType(dtype);
  setTensor(node, 0, b.castElements(*x, to, isUnsigned(node, 0), toUnsigned));
  values[node.output(0)].isUnsigned = toUnsigned;
  return success();
}

LogicalResult GraphImporter::importConstantOfShape(const onnx::NodeProto &node) {
  FailureOr<Ints> shape = ints(node, 0);
  if (failed(shape))
    return failure();
  TypedAttr fill = builder.getF32FloatAttr(0);
  if (const auto *attr = findAttr(node, "value")) {
    std::optional<DType> dtype = dtypeOfOnnx(attr->t().data_type());
    Type elementType = dtype ? elementTypeOf(*dtype, context) : Type();
    if (!elementType)
      return fail(node, "unsupported value type");
    FailureOr<DenseElementsAttr> value =
        denseFromTensorProto(attr->t(), RankedTensorType::get({}, elementType));
    if (failed(value))
      return fail(node, "cannot read the value attribute");
    fill = cast<TypedAttr>(*value->getValues<Attribute>().begin());
  }
  // A small integer fill of a known 1-D shape is itself shape arithmetic.
  std::optional<SmallVector<int64_t>> sizes = constantInts(*shape);
  if (auto integer = dyn_cast<IntegerAttr>(fill);
      integer && sizes && sizes->size() == 1 && (*sizes)[0] <= kMaxInlineElements) {
    setInts(node, 0, Ints((*sizes)[0], builder.getIndexAttr(integer.getInt())), false,
            integer.getType());
    return success();
  }
  setTensor(node, 0, b.filled(*shape, fill));
  return success();
}

/// Range of floating-point constants: the elements start + i·delta, computed
/// at compile time.
LogicalResult GraphImporter::importFloatRange(const onnx::NodeProto &node, Type elementType) {
  SmallVector<double> bounds;
  for (int i = 0; i < 3; ++i) {
    auto value = constantFloats(node, i);
    if (failed(value))
      return failure();
    if (!*value || (*value)->size() != 1)
      return fail(node, "start, limit and delta must be scalars");
    bounds.push_back((**value)[0]);
  }
  double start = bounds[0], limit = bounds[1], delta = bounds[2];
  if (delta == 0)
    return fail(node, "delta must not be 0");
  int64_t count = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - start) / delta)));
  SmallVector<double> elements;
  for (int64_t i = 0; i < count; ++i)
    elements.push_back(start + i * delta);
  auto type = RankedTensorType::get({count}, elementType);
  setTensor(node, 0, arith::ConstantOp::create(builder, loc, floatElements(type, elements)));
  return success();
}

LogicalResult GraphImporter::importRange(const onnx::NodeProto &node) {
  FailureOr<ImportedValue *> startEntry = entry(node, 0);
  if (failed(startEntry))
    return failure();
  Type elementType = (*startEntry)->type().getElementType();
  if (isa<FloatType>(elementType))
    return importFloatRange(node, elementType);
  FailureOr<Ints> start = ints(node, 0), limit = ints(node, 1), delta = ints(node, 2);
  if (failed(start) || failed(limit) || failed(delta))
    return failure();
  std::optional<int64_t> step = getConstantIntValue((*delta)[0]);
  if (!step || *step == 0 || *step == std::numeric_limits<int64_t>::min())
    return fail(node, "delta must be a non-zero constant");
  // max(0, ceil((limit - start) / delta)) elements.
  OpFoldResult span = *step > 0 ? b.sub((*limit)[0], (*start)[0]) : b.sub((*start)[0], (*limit)[0]);
  OpFoldResult count = b.max(builder.getIndexAttr(0), b.ceilDiv(span, std::abs(*step)));
  if (std::optional<int64_t> constantCount = getConstantIntValue(count);
      constantCount && *constantCount <= kMaxInlineElements) {
    Ints elements;
    for (int64_t i = 0; i < *constantCount; ++i)
      elements.push_back(b.add((*start)[0], builder.getIndexAttr(i * *step)));
    setInts(node, 0, std::move(elements), false, elementType);
    return success();
  }
  Value first = b.indexValue((*start)[0]);
  Value init = b.empty({count}, elementType);
  MLIRContext *ctx = context;
  Value range = linalg::GenericOp::create(
      builder, loc, init.getType(), ValueRange{}, init,
      SmallVector<AffineMap>{AffineMap::getMultiDimIdentityMap(1, ctx)},
      SmallVector<utils::IteratorType>{utils::IteratorType::parallel},
      [&](OpBuilder &nb, Location l, ValueRange) {
        Value i = linalg::IndexOp::create(nb, l, 0);
        Value value = arith::AddIOp::create(
            nb, l, first, arith::MulIOp::create(nb, l, i, arith::ConstantIndexOp::create(nb, l, *step)));
        linalg::YieldOp::create(nb, l, arith::IndexCastOp::create(nb, l, elementType, value).getResult());
      }).getResult(0);
  setTensor(node, 0, range);
  return success();
}

LogicalResult GraphImporter::importExpand(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  FailureOr<Ints> shape = ints(node, 1);
  if (failed(x) || failed(shape))
    return failure();
  Type elementType = cast<RankedTensorType>(x->getType()).getElementType();
  setTensor(node, 0, b.elementwise(*x, elementType,
                                   [](OpBuilder &, Location, ValueRange args) { return args[0]; },
                                   *shape));
  return success();
}

/// ScatterND: data with slices replaced (or combined) by updates at the
/// positions indices name. On flattened tensors, one loop over the index
/// rows moves one contiguous slice of data.shape[k:] per row; rows are
/// applied in order, so repeated indices accumulate as the reductions ask,
/// and a row whose index is out of range is skipped rather than written.
LogicalResult GraphImporter::importScatterND(const onnx::NodeProto &node) {
  FailureOr<Value> data = tensor(node, 0), indices = tensor(node, 1), updates = tensor(node, 2);
  if (failed(data) || failed(indices) || failed(updates))
    return failure();
  // How an update combines with the element it lands on: the binary op of
  // the reduction's name, or none (it replaces it).
  std::string reduction = stringAttr(node, "reduction", "none");
  static const llvm::StringMap<llvm::StringRef> kReductionOps = {
      {"add", "Add"}, {"mul", "Mul"}, {"max", "Max"}, {"min", "Min"}};
  auto reductionOp = kReductionOps.find(reduction);
  if (reduction != "none" && reductionOp == kReductionOps.end())
    return fail(node, "unknown reduction '" + reduction + "'");
  auto dataType = cast<RankedTensorType>(data->getType());
  auto indicesType = cast<RankedTensorType>(indices->getType());
  auto updatesType = cast<RankedTensorType>(updates->getType());
  int64_t rank = dataType.getRank(), indexRank = indicesType.getRank();
  int64_t k = indexRank ? indicesType.getDimSize(indexRank - 1) : ShapedType::kDynamic;
  if (!indicesType.getElementType().isInteger(64))
    return fail(node, "indices must be int64");
  if (k == ShapedType::kDynamic || k < 1 || k > rank)
    return fail(node, "the last dimension of indices must be static, between 1 and the data's "
                      "rank " + llvm::Twine(rank));
  if (updatesType.getElementType() != dataType.getElementType())
    return fail(node, "updates must have the data's element type");
  // updates.shape == indices.shape[:-1] + data.shape[k:]
  SmallVector<int64_t> expected(indicesType.getShape().drop_back());
  llvm::append_range(expected, dataType.getShape().drop_front(k));
  if (updatesType.getRank() != static_cast<int64_t>(expected.size()) ||
      llvm::any_of(llvm::zip(updatesType.getShape(), expected), [](auto sizes) {
        auto [actual, wanted] = sizes;
        return actual != ShapedType::kDynamic && wanted != ShapedType::kDynamic &&
               actual != wanted;
      }))
    return fail(node, "updates must have the shape indices.shape[:-1] + data.shape[" +
                          llvm::Twine(k) + ":]");

  Ints dataSizes = b.dims(*data);
  Ints indexSizes = b.dims(*indices);
  OpFoldResult rows = b.product(ArrayRef(indexSizes).drop_back());
  OpFoldResult sliceSize = b.product(ArrayRef(dataSizes).drop_front(k));
  Value flatData = b.reshape(*data, {b.product(dataSizes)});
  Value flatUpdates = b.reshape(*updates, {b.mul(rows, sliceSize)});
  Value indexRows = b.reshape(*indices, {rows, builder.getIndexAttr(k)});
  Value zero = arith::ConstantIndexOp::create(builder, loc, 0);
  Value one = arith::ConstantIndexOp::create(builder, loc, 1);
  Value sliceLength = b.indexValue(sliceSize);
  auto combine = reduction == "none" ? nullptr
                                     : binaryBody(reductionOp->second, isUnsigned(node, 0));

  auto loop = scf::ForOp::create(builder, loc, zero, b.indexValue(rows), one, flatData);
  {
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToStart(loop.getBody());
    Value row = loop.getInductionVar(), acc = loop.getRegionIterArgs()[0];
    // The slice's first element: Σ index_j · stride_j (Horner over the k
    // leading dimensions), times the slice's length.
    Value offset = zero;
    Value inBounds = arith::ConstantIntOp::create(builder, loc, 1, 1);
    for (int64_t j = 0; j < k; ++j) {
      Value size = b.indexValue(dataSizes[j]);
      Value raw = tensor::ExtractOp::create(
          builder, loc, indexRows, ValueRange{row, arith::ConstantIndexOp::create(builder, loc, j)});
      Value index = wrappedIndex(builder, loc, raw, size);
      Value aboveZero = arith::CmpIOp::create(builder, loc, arith::CmpIPredicate::sge, index, zero);
      Value belowSize = arith::CmpIOp::create(builder, loc, arith::CmpIPredicate::slt, index, size);
      inBounds = arith::AndIOp::create(builder, loc, inBounds,
                                       arith::AndIOp::create(builder, loc, aboveZero, belowSize));
      offset = arith::AddIOp::create(builder, loc, arith::MulIOp::create(builder, loc, offset, size),
                                     index);
    }
    offset = arith::MulIOp::create(builder, loc, offset, sliceLength);
    Value updateOffset = arith::MulIOp::create(builder, loc, row, sliceLength);
    auto ifOp = scf::IfOp::create(builder, loc, TypeRange{acc.getType()}, inBounds,
                                  /*withElseRegion=*/true);
    builder.setInsertionPointToStart(ifOp.thenBlock());
    Ints one1 = {builder.getIndexAttr(1)};
    Value slice = b.extractSlice(flatUpdates, {updateOffset}, {sliceSize}, one1);
    if (combine) {
      Value old = b.extractSlice(acc, {offset}, {sliceSize}, one1);
      slice = b.elementwise({old, slice}, dataType.getElementType(),
                            [&](OpBuilder &nb, Location l, ValueRange args) {
                              return combine(nb, l, args[0], args[1]);
                            });
    }
    Value written = tensor::InsertSliceOp::create(builder, loc, slice, acc,
                                                  ArrayRef<OpFoldResult>{offset}, Ints{sliceSize},
                                                  one1);
    scf::YieldOp::create(builder, loc, written);
    builder.setInsertionPointToStart(ifOp.elseBlock());
    scf::YieldOp::create(builder, loc, acc);
    builder.setInsertionPointAfter(ifOp);
    scf::YieldOp::create(builder, loc, ifOp.getResult(0));
  }
  Value result = b.reshape(loop.getResult(0), dataSizes);
  b.recordSizes(result, dataSizes);
  setTensor(node, 0, result);
  return success();
}

} // namespace peft
