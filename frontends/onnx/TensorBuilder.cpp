//===- TensorBuilder.cpp - Build linalg and tensor ops for imports ----------===//
#include "frontends/onnx/TensorBuilder.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

using namespace mlir;

namespace peft {

std::optional<SmallVector<int64_t>> constantInts(const Ints &ints) {
  SmallVector<int64_t> constants;
  for (OpFoldResult element : ints) {
    std::optional<int64_t> constant = getConstantIntValue(element);
    if (!constant)
      return std::nullopt;
    constants.push_back(*constant);
  }
  return constants;
}

std::optional<Ints> intsOf(DenseElementsAttr value) {
  auto type = value.getType();
  if (!type.getElementType().isInteger() || type.getRank() > 1)
    return std::nullopt;
  Builder builder(value.getContext());
  Ints ints;
  for (const APInt &element : value.getValues<APInt>())
    ints.push_back(builder.getIndexAttr(type.getElementType().isInteger(1)
                                            ? element.getZExtValue()
                                            : element.getSExtValue()));
  return ints;
}

//===----------------------------------------------------------------------===//
// Sizes
//===----------------------------------------------------------------------===//

OpFoldResult TensorBuilder::dim(Value tensor, int64_t index) {
  auto type = cast<RankedTensorType>(tensor.getType());
  if (!type.isDynamicDim(index))
    return builder.getIndexAttr(type.getDimSize(index));
  if (auto known = knownSizes.find(tensor); known != knownSizes.end())
    return known->second[index];
  // Trace the size to where it was decided, so that equal sizes are the same
  // SSA value and reshapes can cancel them.
  Operation *op = tensor.getDefiningOp();
  if (auto destination = dyn_cast_or_null<DestinationStyleOpInterface>(op))
    return dim(destination.getDpsInitOperand(cast<OpResult>(tensor).getResultNumber())->get(),
               index);
  if (auto empty = dyn_cast_or_null<tensor::EmptyOp>(op))
    return empty.getDynamicSize(index);
  if (auto expand = dyn_cast_or_null<tensor::ExpandShapeOp>(op))
    return expand.getMixedOutputShape()[index];
  if (auto collapse = dyn_cast_or_null<tensor::CollapseShapeOp>(op)) {
    Ints group;
    // Named: the indices are returned by value.
    SmallVector<ReassociationIndices> reassociation = collapse.getReassociationIndices();
    for (int64_t source : reassociation[index])
      group.push_back(dim(collapse.getSrc(), source));
    return product(group);
  }
  if (auto slice = dyn_cast_or_null<tensor::ExtractSliceOp>(op);
      slice && slice.getSourceType().getRank() == type.getRank())
    return slice.getMixedSizes()[index];
  if (auto cast = dyn_cast_or_null<tensor::CastOp>(op))
    return dim(cast.getSource(), index);
  return tensor::getMixedSize(builder, loc, tensor, index);
}

void TensorBuilder::recordSizes(Value tensor, Ints sizes) {
  knownSizes[tensor] = std::move(sizes);
}

Ints TensorBuilder::dims(Value tensor) {
  Ints sizes;
  for (int64_t d = 0, rank = cast<RankedTensorType>(tensor.getType()).getRank(); d < rank; ++d)
    sizes.push_back(dim(tensor, d));
  return sizes;
}

/// Splits a size into its constant factor and its dynamic factors.
static std::pair<int64_t, SmallVector<Value>> factorize(OpFoldResult size) {
  if (std::optional<int64_t> constant = getConstantIntValue(size))
    return {*constant, {}};
  Value value = cast<Value>(size);
  if (auto mul = value.getDefiningOp<arith::MulIOp>()) {
    auto [lhsConstant, lhsValues] = factorize(mul.getLhs());
    auto [rhsConstant, rhsValues] = factorize(mul.getRhs());
    lhsValues.append(rhsValues);
    return {lhsConstant * rhsConstant, lhsValues};
  }
  if (auto constant = value.getDefiningOp<arith::ConstantIndexOp>())
    return {constant.value(), {}};
  return {1, {value}};
}

OpFoldResult TensorBuilder::quotient(ArrayRef<OpFoldResult> numerator,
                                     ArrayRef<OpFoldResult> denominator) {
  int64_t constant = 1, divisor = 1;
  SmallVector<Value> values, divisors;
  for (OpFoldResult size : numerator) {
    auto [factor, dynamic] = factorize(size);
    constant *= factor;
    values.append(dynamic);
  }
  for (OpFoldResult size : denominator) {
    auto [factor, dynamic] = factorize(size);
    divisor *= factor;
    for (Value value : dynamic) {
      auto found = llvm::find(values, value);
      if (found != values.end())
        values.erase(found); // The same size on both sides cancels.
      else
        divisors.push_back(value);
    }
  }
  OpFoldResult result = builder.getIndexAttr(1);
  for (Value value : values)
    result = mul(result, value);
  if (divisors.empty() && constant % divisor == 0)
    return mul(result, builder.getIndexAttr(constant / divisor));
  result = mul(result, builder.getIndexAttr(constant));
  SmallVector<OpFoldResult> all(divisors.begin(), divisors.end());
  all.push_back(builder.getIndexAttr(divisor));
  return div(result, product(all));
}

Value TensorBuilder::indexValue(OpFoldResult size) {
  return getValueOrCreateConstantIndexOp(builder, loc, size);
}

/// Folds when both sides are constant, else emits the index op.
template <typename Op, typename Fold>
static OpFoldResult foldOrBuild(OpBuilder &builder, Location loc, OpFoldResult lhs,
                                OpFoldResult rhs, Fold fold) {
  std::optional<int64_t> l = getConstantIntValue(lhs), r = getConstantIntValue(rhs);
  if (l && r)
    if (std::optional<int64_t> folded = fold(*l, *r))
      return builder.getIndexAttr(*folded);
  return Op::create(builder, loc, getValueOrCreateConstantIndexOp(builder, loc, lhs),
                    getValueOrCreateConstantIndexOp(builder, loc, rhs))
      .getResult();
}

OpFoldResult TensorBuilder::add(OpFoldResult lhs, OpFoldResult rhs) {
  if (getConstantIntValue(lhs) == 0)
    return rhs;
  if (getConstantIntValue(rhs) == 0)
    return lhs;
  return foldOrBuild<arith::AddIOp>(builder, loc, lhs, rhs,
                                    [](int64_t l, int64_t r) -> std::optional<int64_t> {
                                      int64_t sum;
                                      return llvm::AddOverflow(l, r, sum) ? std::nullopt
                                                                          : std::optional(sum);
                                    });
}
OpFoldResult TensorBuilder::sub(OpFoldResult lhs, OpFoldResult rhs) {
  if (getConstantIntValue(rhs) == 0)
    return lhs;
  return foldOrBuild<arith::SubIOp>(builder, loc, lhs, rhs,
                                    [](int64_t l, int64_t r) -> std::optional<int64_t> {
                                      int64_t difference;
                                      return llvm::SubOverflow(l, r, difference)
                                                 ? std::nullopt
                                                 : std::optional(difference);
                                    });
}
OpFoldResult TensorBuilder::mul(OpFoldResult lhs, OpFoldResult rhs) {
  if (getConstantIntValue(lhs) == 1)
    return rhs;
  if (getConstantIntValue(rhs) == 1)
    return lhs;
  return foldOrBuild<arith::MulIOp>(builder, loc, lhs, rhs,
                                    [](int64_t l, int64_t r) -> std::optional<int64_t> {
                                      int64_t product;
                                      return llvm::MulOverflow(l, r, product)
                                                 ? std::nullopt
                                                 : std::optional(product);
                                    });
}
OpFoldResult TensorBuilder::div(OpFoldResult lhs, OpFoldResult rhs) {
  return foldOrBuild<arith::DivSIOp>(builder, loc, lhs, rhs,
                                     [](int64_t l, int64_t r) -> std::optional<int64_t> {
                                       // Left to run time, where it is defined.
                                       if (r == 0 || (r == -1 && l == INT64_MIN))
                                         return std::nullopt;
                                       return l / r;
                                     });
}

DenseElementsAttr floatElements(RankedTensorType type, ArrayRef<double> values) {
  const llvm::fltSemantics &semantics = cast<FloatType>(type.getElementType()).getFloatSemantics();
  SmallVector<APFloat> elements;
  for (double value : values) {
    APFloat element(value);
    bool lost;
    element.convert(semantics, APFloat::rmNearestTiesToEven, &lost);
    elements.push_back(element);
  }
  return DenseElementsAttr::get(type, elements);
}

bool isNonNegative(OpFoldResult size) {
  if (std::optional<int64_t> constant = getConstantIntValue(size))
    return *constant >= 0;
  Operation *op = cast<Value>(size).getDefiningOp();
  if (isa_and_nonnull<tensor::DimOp>(op))
    return true;
  if (isa_and_nonnull<arith::MinSIOp>(op))
    return isNonNegative(op->getOperand(0)) && isNonNegative(op->getOperand(1));
  if (isa_and_nonnull<arith::MaxSIOp>(op))
    return isNonNegative(op->getOperand(0)) || isNonNegative(op->getOperand(1));
  return false;
}

OpFoldResult TensorBuilder::min(OpFoldResult lhs, OpFoldResult rhs) {
  if (lhs == rhs)
    return lhs;
  if (getConstantIntValue(lhs) == 0 && isNonNegative(rhs))
    return lhs;
  if (getConstantIntValue(rhs) == 0 && isNonNegative(lhs))
    return rhs;
  return foldOrBuild<arith::MinSIOp>(builder, loc, lhs, rhs,
                                     [](int64_t l, int64_t r) { return std::min(l, r); });
}

OpFoldResult TensorBuilder::max(OpFoldResult lhs, OpFoldResult rhs) {
  if (lhs == rhs)
    return lhs;
  if (getConstantIntValue(lhs) == 0 && isNonNegative(rhs))
    return rhs;
  if (getConstantIntValue(rhs) == 0 && isNonNegative(lhs))
    return lhs;
  return foldOrBuild<arith::MaxSIOp>(builder, loc, lhs, rhs,
                                     [](int64_t l, int64_t r) { return std::max(l, r); });
}

OpFoldResult TensorBuilder::ceilDiv(OpFoldResult lhs, int64_t divisor) {
  if (divisor == 1)
    return lhs;
  return foldOrBuild<arith::CeilDivSIOp>(
      builder, loc, lhs, builder.getIndexAttr(divisor),
      [](int64_t l, int64_t r) -> std::optional<int64_t> {
        // C's division truncates: up for a negative l, add one for a positive
        // remainder. Never l + r - 1, which overflows near INT64_MAX.
        return l / r + (l > 0 && l % r != 0);
      });
}

OpFoldResult TensorBuilder::wrapNegative(OpFoldResult index, OpFoldResult size) {
  if (std::optional<int64_t> constant = getConstantIntValue(index))
    return *constant < 0 ? add(index, size) : index;
  if (isNonNegative(index))
    return index;
  Value value = indexValue(index);
  Value negative = arith::CmpIOp::create(builder, loc, arith::CmpIPredicate::slt, value,
                                         arith::ConstantIndexOp::create(builder, loc, 0));
  return arith::SelectOp::create(builder, loc, negative, indexValue(add(index, size)), value)
      .getResult();
}

std::pair<OpFoldResult, OpFoldResult> TensorBuilder::sliceBounds(OpFoldResult start,
                                                                 OpFoldResult end, int64_t step,
                                                                 OpFoldResult size) {
  OpFoldResult zero = builder.getIndexAttr(0);
  start = wrapNegative(start, size);
  // An end past any size (INT_MAX, as exporters write "to the end") is the size.
  std::optional<int64_t> endConstant = getConstantIntValue(end);
  bool toEnd = step > 0 && endConstant && *endConstant >= std::numeric_limits<int32_t>::max();
  end = toEnd ? size : wrapNegative(end, size);
  if (step > 0) {
    start = max(zero, min(start, size));
    end = max(zero, min(end, size));
    OpFoldResult count = max(zero, ceilDiv(sub(end, start), step));
    return {getConstantIntValue(count) == 0 ? zero : start, count};
  }
  OpFoldResult last = sub(size, builder.getIndexAttr(1));
  start = max(zero, min(start, last));
  end = max(builder.getIndexAttr(-1), min(end, last));
  OpFoldResult count = max(zero, ceilDiv(sub(start, end), -step));
  // The lowest element read; an empty slice starts anywhere in bounds.
  if (getConstantIntValue(count) == 0)
    return {zero, count};
  OpFoldResult first = sub(start, mul(sub(count, builder.getIndexAttr(1)), builder.getIndexAttr(-step)));
  return {min(first, size), count};
}

OpFoldResult TensorBuilder::product(ArrayRef<OpFoldResult> sizes) {
  OpFoldResult result = builder.getIndexAttr(1);
  for (OpFoldResult size : sizes)
    result = mul(result, size);
  return result;
}

//===----------------------------------------------------------------------===//
// Tensors
//===----------------------------------------------------------------------===//

Value TensorBuilder::empty(ArrayRef<OpFoldResult> sizes, Type elementType) {
  return tensor::EmptyOp::create(builder, loc, sizes, elementType);
}

Value TensorBuilder::filled(ArrayRef<OpFoldResult> sizes, TypedAttr value) {
  Value scalar = arith::ConstantOp::create(builder, loc, value);
  return linalg::FillOp::create(builder, loc, scalar, empty(sizes, value.getType()))
      .getResult(0);
}

Value TensorBuilder::scalarConstant(Type type, double value) {
  if (isa<FloatType>(type))
    return arith::ConstantOp::create(builder, loc, builder.getFloatAttr(type, value));
  return arith::ConstantOp::create(builder, loc,
                                   builder.getIntegerAttr(type, static_cast<int64_t>(value)));
}

Value TensorBuilder::fromInts(const Ints &ints, bool scalar) {
  Type i64 = builder.getI64Type();
  auto type = RankedTensorType::get(
      scalar ? ArrayRef<int64_t>{} : ArrayRef<int64_t>{static_cast<int64_t>(ints.size())}, i64);
  if (std::optional<SmallVector<int64_t>> constants = constantInts(ints))
    return arith::ConstantOp::create(builder, loc,
                                     DenseElementsAttr::get(type, ArrayRef<int64_t>(*constants)));
  SmallVector<Value> elements;
  for (OpFoldResult element : ints) {
    if (std::optional<int64_t> constant = getConstantIntValue(element))
      elements.push_back(arith::ConstantOp::create(builder, loc, builder.getI64IntegerAttr(*constant)));
    else
      elements.push_back(arith::IndexCastOp::create(builder, loc, i64, indexValue(element)));
  }
  return tensor::FromElementsOp::create(builder, loc, type, elements);
}

Value TensorBuilder::elementwise(ValueRange inputs, Type elementType, ScalarBody body,
                                 std::optional<Ints> resultSizes) {
  int64_t rank = resultSizes ? resultSizes->size() : 0;
  for (Value input : inputs)
    rank = std::max(rank, cast<RankedTensorType>(input.getType()).getRank());

  // Each result dimension: a static size other than 1 wins, else a dynamic one.
  Ints sizes;
  for (int64_t d = 0; d < rank; ++d) {
    OpFoldResult size = builder.getIndexAttr(1);
    bool isStatic = false;
    if (resultSizes) {
      size = (*resultSizes)[d];
      isStatic = getConstantIntValue(size) && *getConstantIntValue(size) != 1;
    }
    for (Value input : inputs) {
      auto type = cast<RankedTensorType>(input.getType());
      int64_t own = d - (rank - type.getRank());
      if (own < 0 || isStatic || type.getDimSize(own) == 1)
        continue;
      size = dim(input, own);
      isStatic = !type.isDynamicDim(own);
    }
    sizes.push_back(size);
  }

  MLIRContext *context = builder.getContext();
  SmallVector<AffineMap> maps;
  for (Value input : inputs) {
    auto type = cast<RankedTensorType>(input.getType());
    SmallVector<AffineExpr> exprs;
    for (int64_t own = 0; own < type.getRank(); ++own) {
      int64_t d = own + rank - type.getRank();
      bool broadcast = type.getDimSize(own) == 1 && getConstantIntValue(sizes[d]) != 1;
      exprs.push_back(broadcast ? getAffineConstantExpr(0, context)
                                : getAffineDimExpr(d, context));
    }
    maps.push_back(AffineMap::get(rank, 0, exprs, context));
  }
  maps.push_back(AffineMap::getMultiDimIdentityMap(rank, context));
  SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
  Value init = empty(sizes, elementType);
  return linalg::GenericOp::create(
             builder, loc, init.getType(), inputs, init, maps, iterators,
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               Value result = body(nested, nestedLoc, args.drop_back());
               linalg::YieldOp::create(nested, nestedLoc, result);
             })
      .getResult(0);
}

Value TensorBuilder::castElements(Value input, Type to, bool fromUnsigned, bool toUnsigned) {
  Type from = cast<RankedTensorType>(input.getType()).getElementType();
  if (from == to)
    return input;
  fromUnsigned |= from.isInteger(1);
  return elementwise(input, to, [&](OpBuilder &b, Location l, ValueRange args) -> Value {
    Value x = args[0];
    bool fromFloat = isa<FloatType>(from), toFloat = isa<FloatType>(to);
    if (fromFloat && toFloat)
      return from.getIntOrFloatBitWidth() < to.getIntOrFloatBitWidth()
                 ? Value(arith::ExtFOp::create(b, l, to, x))
                 : Value(arith::TruncFOp::create(b, l, to, x));
    if (to.isInteger(1)) {
      if (fromFloat)
        return arith::CmpFOp::create(b, l, arith::CmpFPredicate::UNE, x,
                                     arith::ConstantOp::create(b, l, b.getFloatAttr(from, 0)));
      return arith::CmpIOp::create(b, l, arith::CmpIPredicate::ne, x,
                                   arith::ConstantOp::create(b, l, b.getIntegerAttr(from, 0)));
    }
    if (fromFloat)
      return toUnsigned ? Value(arith::FPToUIOp::create(b, l, to, x))
                        : Value(arith::FPToSIOp::create(b, l, to, x));
    if (toFloat)
      return fromUnsigned ? Value(arith::UIToFPOp::create(b, l, to, x))
                          : Value(arith::SIToFPOp::create(b, l, to, x));
    if (from.getIntOrFloatBitWidth() < to.getIntOrFloatBitWidth())
      return fromUnsigned ? Value(arith::ExtUIOp::create(b, l, to, x))
                          : Value(arith::ExtSIOp::create(b, l, to, x));
    return arith::TruncIOp::create(b, l, to, x);
  });
}

Value TensorBuilder::reduce(Value input, ArrayRef<int64_t> axes, bool keepDims,
                            TypedAttr init, Combiner combine) {
  auto type = cast<RankedTensorType>(input.getType());
  int64_t rank = type.getRank();
  MLIRContext *context = builder.getContext();
  Ints keptSizes;
  SmallVector<AffineExpr> keptExprs;
  SmallVector<utils::IteratorType> iterators;
  for (int64_t d = 0; d < rank; ++d) {
    bool reduced = llvm::is_contained(axes, d);
    iterators.push_back(reduced ? utils::IteratorType::reduction
                                : utils::IteratorType::parallel);
    if (!reduced) {
      keptSizes.push_back(dim(input, d));
      keptExprs.push_back(getAffineDimExpr(d, context));
    }
  }
  Value acc = filled(keptSizes, init);
  SmallVector<AffineMap> maps = {AffineMap::getMultiDimIdentityMap(rank, context),
                                 AffineMap::get(rank, 0, keptExprs, context)};
  Value reduced = linalg::GenericOp::create(
                      builder, loc, acc.getType(), input, acc, maps, iterators,
                      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                        linalg::YieldOp::create(nested, nestedLoc,
                                                combine(nested, nestedLoc, args[0], args[1]));
                      })
                      .getResult(0);
  return keepDims ? insertUnitDims(reduced, axes) : reduced;
}

/// Groups the dimensions of a rank-`rank` tensor around those that are not in
/// `unitAxes`: each unit axis joins the group of the kept dimension before it
/// (or after it, when leading).
static SmallVector<ReassociationIndices> unitDimGroups(int64_t rank,
                                                       ArrayRef<int64_t> unitAxes) {
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices pending;
  for (int64_t d = 0; d < rank; ++d) {
    pending.push_back(d);
    if (llvm::is_contained(unitAxes, d))
      continue;
    groups.push_back(pending);
    pending.clear();
  }
  if (!pending.empty() && !groups.empty())
    groups.back().append(pending.begin(), pending.end());
  return groups;
}

/// mean over `axes`, keeping them as size-1 dimensions when `keepDims`.
Value TensorBuilder::mean(Value x, ArrayRef<int64_t> axes, bool keepDims) {
  auto type = cast<RankedTensorType>(x.getType());
  Type elementType = type.getElementType();
  Value sum = reduce(x, axes, keepDims, builder.getZeroAttr(elementType),
                       TensorBuilder::addScalars);
  SmallVector<OpFoldResult> reduced;
  for (int64_t axis : axes)
    reduced.push_back(dim(x, axis));
  OpFoldResult count = product(reduced);
  if (isa<IntegerType>(elementType)) { // ONNX's integer mean truncates, as a division.
    Value wide = arith::IndexCastOp::create(builder, loc, builder.getI64Type(), indexValue(count));
    Value countInteger =
        elementType.isInteger(64) ? wide
                                  : Value(arith::TruncIOp::create(builder, loc, elementType, wide));
    return elementwise(sum, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
      return divideIntegers(nb, l, args[0], countInteger, /*isUnsigned=*/false);
    });
  }
  Value countFloat;
  if (std::optional<int64_t> constant = getConstantIntValue(count)) {
    countFloat = scalarConstant(elementType, *constant);
  } else {
    Value wide = arith::IndexCastOp::create(builder, loc, builder.getI64Type(),
                                            indexValue(count));
    countFloat = arith::SIToFPOp::create(builder, loc, elementType, wide);
  }
  return elementwise(sum, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
    return arith::DivFOp::create(nb, l, args[0], countFloat);
  });
}

Value TensorBuilder::extractSlice(Value input, const Ints &offsets, const Ints &sizes,
                                  const Ints &strides) {
  // tensor.extract_slice rejects any offset into a dimension of size 0.
  Type elementType = cast<RankedTensorType>(input.getType()).getElementType();
  if (llvm::any_of(sizes, [](OpFoldResult size) { return getConstantIntValue(size) == 0; }))
    return empty(sizes, elementType);
  Value slice = tensor::ExtractSliceOp::create(builder, loc, input, offsets, sizes, strides);
  recordSizes(slice, sizes);
  return slice;
}

Value TensorBuilder::insertUnitDims(Value input, ArrayRef<int64_t> axes) {
  auto type = cast<RankedTensorType>(input.getType());
  int64_t rank = type.getRank() + axes.size();
  Ints sizes;
  SmallVector<int64_t> shape;
  for (int64_t d = 0, source = 0; d < rank; ++d) {
    bool unit = llvm::is_contained(axes, d);
    sizes.push_back(unit ? OpFoldResult(builder.getIndexAttr(1)) : dim(input, source));
    shape.push_back(unit ? 1 : type.getDimSize(source++));
  }
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  return tensor::ExpandShapeOp::create(builder, loc, resultType, input,
                                       unitDimGroups(rank, axes), sizes);
}

Value TensorBuilder::dropUnitDims(Value input, ArrayRef<int64_t> axes) {
  auto type = cast<RankedTensorType>(input.getType());
  SmallVector<int64_t> shape;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (!llvm::is_contained(axes, d))
      shape.push_back(type.getDimSize(d));
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  return tensor::CollapseShapeOp::create(builder, loc, resultType, input,
                                         unitDimGroups(type.getRank(), axes));
}

Value TensorBuilder::reshape(Value input, const Ints &sizes) {
  auto type = cast<RankedTensorType>(input.getType());
  SmallVector<int64_t> shape;
  for (OpFoldResult size : sizes)
    shape.push_back(getConstantIntValue(size).value_or(ShapedType::kDynamic));
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  if (resultType == type)
    return input;
  // Row-major reshape = flatten to 1-D, then unflatten.
  Type elementType = type.getElementType();
  Value flat = input;
  if (type.getRank() == 0)
    flat = tensor::ExpandShapeOp::create(builder, loc, RankedTensorType::get({1}, elementType),
                                         flat, ArrayRef<ReassociationIndices>{});
  else if (type.getRank() > 1)
    flat = tensor::CollapseShapeOp::create(
        builder, loc, flat,
        ArrayRef<ReassociationIndices>{llvm::to_vector(llvm::seq<int64_t>(0, type.getRank()))});
  if (resultType.getRank() == 0)
    return tensor::CollapseShapeOp::create(
        builder, loc, resultType,
        tensor::CastOp::create(builder, loc, RankedTensorType::get({1}, elementType), flat),
        ArrayRef<ReassociationIndices>{});
  auto castTo = [&](RankedTensorType type) -> Value {
    return flat.getType() == type ? flat : tensor::CastOp::create(builder, loc, type, flat);
  };
  if (resultType.getRank() == 1)
    return castTo(resultType);
  // expand_shape wants a dynamic source when any result size is dynamic.
  int64_t flatSize = resultType.hasStaticShape() ? resultType.getNumElements()
                                                 : ShapedType::kDynamic;
  flat = castTo(RankedTensorType::get({flatSize}, elementType));
  return tensor::ExpandShapeOp::create(
      builder, loc, resultType, flat,
      ArrayRef<ReassociationIndices>{
          llvm::to_vector(llvm::seq<int64_t>(0, resultType.getRank()))},
      sizes);
}

Value TensorBuilder::batchMatmul(Value lhs, Value rhs) {
  auto lhsType = cast<RankedTensorType>(lhs.getType());
  auto rhsType = cast<RankedTensorType>(rhs.getType());
  int64_t batchRank = std::max(lhsType.getRank(), rhsType.getRank()) - 2;
  int64_t loops = batchRank + 3; // batch..., m, n, k
  MLIRContext *context = builder.getContext();
  AffineExpr m = getAffineDimExpr(batchRank, context),
             n = getAffineDimExpr(batchRank + 1, context),
             k = getAffineDimExpr(batchRank + 2, context);
  Ints sizes;
  for (int64_t d = 0; d < batchRank; ++d) {
    OpFoldResult size = builder.getIndexAttr(1);
    for (Value operand : {lhs, rhs}) {
      auto type = cast<RankedTensorType>(operand.getType());
      int64_t own = d - (batchRank - (type.getRank() - 2));
      if (own >= 0 && type.getDimSize(own) != 1 && getConstantIntValue(size) == 1)
        size = dim(operand, own);
    }
    sizes.push_back(size);
  }
  auto operandMap = [&](RankedTensorType type, AffineExpr row, AffineExpr col) {
    SmallVector<AffineExpr> exprs;
    int64_t ownBatch = type.getRank() - 2;
    for (int64_t own = 0; own < ownBatch; ++own) {
      int64_t d = own + batchRank - ownBatch;
      bool broadcast = type.getDimSize(own) == 1 && getConstantIntValue(sizes[d]) != 1;
      exprs.push_back(broadcast ? getAffineConstantExpr(0, context)
                                : getAffineDimExpr(d, context));
    }
    exprs.append({row, col});
    return AffineMap::get(loops, 0, exprs, context);
  };
  SmallVector<AffineExpr> resultExprs;
  for (int64_t d = 0; d < batchRank; ++d)
    resultExprs.push_back(getAffineDimExpr(d, context));
  resultExprs.append({m, n});
  sizes.push_back(dim(lhs, lhsType.getRank() - 2));
  sizes.push_back(dim(rhs, rhsType.getRank() - 1));
  Value acc = filled(sizes, builder.getZeroAttr(lhsType.getElementType()));
  SmallVector<utils::IteratorType> iterators(loops - 1, utils::IteratorType::parallel);
  iterators.push_back(utils::IteratorType::reduction);
  SmallVector<AffineMap> maps = {operandMap(lhsType, m, k), operandMap(rhsType, k, n),
                                 AffineMap::get(loops, 0, resultExprs, context)};
  return linalg::GenericOp::create(
             builder, loc, acc.getType(), ValueRange{lhs, rhs}, acc, maps, iterators,
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               Value product = mulScalars(nested, nestedLoc, args[0], args[1]);
               linalg::YieldOp::create(nested, nestedLoc,
                                       addScalars(nested, nestedLoc, args[2], product));
             })
      .getResult(0);
}

Value TensorBuilder::divideIntegers(OpBuilder &b, Location l, Value x, Value y,
                                    bool isUnsigned) {
  Type type = x.getType();
  auto constant = [&](int64_t value) {
    return arith::ConstantOp::create(b, l, type, b.getIntegerAttr(type, value)).getResult();
  };
  Value zero = constant(0), one = constant(1);
  Value byZero = arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, y, zero);
  Value trap = byZero;
  if (!isUnsigned) {
    unsigned width = type.getIntOrFloatBitWidth();
    Value minimum = arith::ConstantOp::create(
        b, l, type, b.getIntegerAttr(type, llvm::APInt::getSignedMinValue(width)));
    Value overflow = arith::AndIOp::create(
        b, l, arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, x, minimum),
        arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, y, constant(-1)));
    trap = arith::OrIOp::create(b, l, byZero, overflow);
  }
  Value divisor = arith::SelectOp::create(b, l, trap, one, y);
  Value quotient = isUnsigned ? Value(arith::DivUIOp::create(b, l, x, divisor))
                              : Value(arith::DivSIOp::create(b, l, x, divisor));
  return arith::SelectOp::create(b, l, byZero, zero, quotient);
}

Value TensorBuilder::addScalars(OpBuilder &b, Location loc, Value lhs, Value rhs) {
  if (isa<FloatType>(lhs.getType()))
    return arith::AddFOp::create(b, loc, lhs, rhs);
  return arith::AddIOp::create(b, loc, lhs, rhs);
}

Value TensorBuilder::mulScalars(OpBuilder &b, Location loc, Value lhs, Value rhs) {
  if (isa<FloatType>(lhs.getType()))
    return arith::MulFOp::create(b, loc, lhs, rhs);
  return arith::MulIOp::create(b, loc, lhs, rhs);
}

} // namespace peft
