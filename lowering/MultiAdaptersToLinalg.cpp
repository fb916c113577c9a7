//===- MultiAdaptersToLinalg.cpp - Per-row adapters as gathers and GEMMs ---===//
//
// Rows of a batch using different adapter slots. peft.multi_lora: each row's
// slot factors selected from the tables (Aᵀ [batch, in, R], Bᵀ [batch, R,
// out]: generics marked peft.slot_gather, which the CPU back end reads the
// tables through instead), then two batched GEMMs over the rows, the shrink
// scaled per row by its slot's scale (0 for a row without an adapter), added
// to the base in the compute type.
// peft.multi_ia3: each row's features times its slot's vector.
//===----------------------------------------------------------------------===//
#include "lowering/Passes.h"

#include "lowering/DoraElement.h"
#include "lowering/ElementCasts.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace peft;

namespace {

/// `value` as [batch, rows, features]: [batch, d1, ..., features] with the
/// middle dimensions collapsed; [batch·rows, features] (a layer reading its
/// input flattened, batch-major) split by `batch`, the index's length.
static Value asBatchOfRows(OpBuilder &builder, Location loc, Value value, Value batch) {
  auto type = cast<RankedTensorType>(value.getType());
  int64_t rank = type.getRank();
  if (rank == 3)
    return value;
  if (rank == 2) {
    OpFoldResult rows = arith::DivUIOp::create(
                            builder, loc, tensor::DimOp::create(builder, loc, value, 0), batch)
                            .getResult();
    SmallVector<int64_t> shape = {ShapedType::kDynamic, ShapedType::kDynamic,
                                  type.getDimSize(1)};
    SmallVector<OpFoldResult> sizes = {batch, rows,
                                       tensor::getMixedSize(builder, loc, value, 1)};
    return tensor::ExpandShapeOp::create(
        builder, loc, RankedTensorType::get(shape, type.getElementType()), value,
        SmallVector<ReassociationIndices>{{0, 1}, {2}}, sizes);
  }
  SmallVector<ReassociationIndices> groups = {{0}, {}, {rank - 1}};
  for (int64_t d = 1; d < rank - 1; ++d)
    groups[1].push_back(d);
  return tensor::CollapseShapeOp::create(builder, loc, value, groups);
}

/// `value` ([batch, rows, features], asBatchOfRows) back in the shape of
/// `like`: [batch·rows, features] collapsed, or the middle dimensions
/// expanded again.
static Value inShapeOf(OpBuilder &builder, Location loc, Value value, Value like) {
  auto likeType = cast<RankedTensorType>(like.getType());
  int64_t rank = likeType.getRank();
  auto shaped = RankedTensorType::get(likeType.getShape(),
                                      cast<RankedTensorType>(value.getType()).getElementType());
  if (rank == 2)
    return tensor::CollapseShapeOp::create(builder, loc, shaped, value,
                                           SmallVector<ReassociationIndices>{{0, 1}, {2}});
  if (rank == 3)
    return value;
  SmallVector<ReassociationIndices> groups = {{0}, {}, {rank - 1}};
  for (int64_t d = 1; d < rank - 1; ++d)
    groups[1].push_back(d);
  return tensor::ExpandShapeOp::create(builder, loc, shaped, value, groups,
                                       tensor::getMixedSizes(builder, loc, like));
}

/// A row's slot (-1 reads slot 0, which the caller neutralizes) as an index.
static Value slotOf(OpBuilder &builder, Location loc, Value raw) {
  Value wide = arith::IndexCastOp::create(builder, loc, builder.getIndexType(), raw);
  Value zero = arith::ConstantIndexOp::create(builder, loc, 0);
  return arith::MaxSIOp::create(builder, loc, wide, zero);
}

/// Whether a row's raw index is -1 (or below): no adapter.
static Value noSlot(OpBuilder &builder, Location loc, Value raw) {
  return arith::CmpIOp::create(builder, loc, arith::CmpIPredicate::slt, raw,
                               arith::ConstantOp::create(builder, loc,
                                                         builder.getZeroAttr(raw.getType())));
}

static Value floatConstant(OpBuilder &builder, Location loc, Type type, double value) {
  return arith::ConstantOp::create(builder, loc, builder.getFloatAttr(type, value));
}

/// In a generic over [batch, rows, features]: `table[slot, feature]` for the
/// row whose raw index is `raw`, or 1 for a row without a slot.
static Value slotFeatureOrOne(OpBuilder &builder, Location loc, Value table, Value raw, Type type) {
  Value feature = linalg::IndexOp::create(builder, loc, 2);
  Value value =
      tensor::ExtractOp::create(builder, loc, table, ValueRange{slotOf(builder, loc, raw), feature});
  Value one = floatConstant(builder, loc, type, 1.0);
  return arith::SelectOp::create(builder, loc, noSlot(builder, loc, raw), one, value);
}

/// An empty tensor of `shape`, its dynamic sizes those of `like`'s
/// dimensions `fromDims` (-1 for a static size).
static Value emptyLike(OpBuilder &builder, Location loc, ArrayRef<int64_t> shape, Type element,
                       Value like, ArrayRef<int64_t> fromDims) {
  SmallVector<Value> dynamic;
  for (auto [size, dim] : llvm::zip(shape, fromDims))
    if (ShapedType::isDynamic(size))
      dynamic.push_back(tensor::DimOp::create(builder, loc, like, dim));
  return tensor::EmptyOp::create(builder, loc, RankedTensorType::get(shape, element), dynamic);
}

/// The residual add that alone reads `op`'s result, `op + other` of one
/// shape in f32, `other` computed before `op`: the update is a sum, so the
/// add can come first, where the layer's GEMM takes it into its epilogue as
/// it does without adapters. Null otherwise (DoRA's update is not a sum).
static linalg::GenericOp residualAddAfter(MultiLoraOp op, Value &other) {
  if (op.getDoraScales() || !op->hasOneUse() || !op.getType().getElementType().isF32())
    return {};
  auto add = dyn_cast<linalg::GenericOp>(*op->user_begin());
  if (!add || add.getNumDpsInputs() != 2 || add.getNumDpsInits() != 1 ||
      add.getResultTypes() != TypeRange{op.getType()} ||
      !llvm::all_of(add.getIndexingMapsArray(), [](AffineMap map) { return map.isIdentity(); }))
    return {};
  Block &body = add.getRegion().front();
  auto sum = dyn_cast<arith::AddFOp>(body.front());
  if (body.getOperations().size() != 2 || !sum ||
      body.getTerminator()->getOperand(0) != sum.getResult() ||
      !((sum.getLhs() == body.getArgument(0) && sum.getRhs() == body.getArgument(1)) ||
        (sum.getLhs() == body.getArgument(1) && sum.getRhs() == body.getArgument(0))))
    return {};
  other = add.getDpsInputs()[add.getDpsInputs()[0] == op.getResult() ? 1 : 0];
  if (other == op.getResult() || other.getParentBlock() != op->getBlock() ||
      (other.getDefiningOp() && !other.getDefiningOp()->isBeforeInBlock(op)))
    return {};
  return add;
}

struct LowerMultiLora : OpRewritePattern<MultiLoraOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MultiLoraOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = op.getContext();
    Type type = computeTypeOf(op.getType().getElementType());
    Value batchSize = tensor::DimOp::create(rewriter, loc, op.getIndex(), 0);
    Value x = asBatchOfRows(rewriter, loc, castElements(rewriter, loc, op.getInput(), type),
                            batchSize);
    // base + residual, then the update, when a residual add reads the result.
    Value layerBase = op.getBase(), residual;
    linalg::GenericOp residualAdd = residualAddAfter(op, residual);
    if (residualAdd) {
      Value init = tensor::EmptyOp::create(rewriter, loc,
                                           tensor::getMixedSizes(rewriter, loc, residual),
                                           op.getType().getElementType());
      layerBase = linalg::GenericOp::create(
                      rewriter, loc, TypeRange{op.getType()}, ValueRange{layerBase, residual},
                      ValueRange{init}, residualAdd.getIndexingMapsArray(),
                      residualAdd.getIteratorTypesArray(),
                      [](OpBuilder &nested, Location at, ValueRange args) {
                        linalg::YieldOp::create(
                            nested, at,
                            ValueRange{arith::AddFOp::create(nested, at, args[0], args[1])});
                      })
                      .getResult(0);
    }
    Value base = asBatchOfRows(rewriter, loc, castElements(rewriter, loc, layerBase, type),
                               batchSize);
    Value a = castElements(rewriter, loc, op.getLoraA(), type);
    Value b = castElements(rewriter, loc, op.getLoraB(), type);
    Value bias = castElements(rewriter, loc, op.getLoraBias(), type);
    Value index = op.getIndex();
    auto xType = cast<RankedTensorType>(x.getType());
    auto baseType = cast<RankedTensorType>(base.getType());
    int64_t capacity = op.getRankCapacity();
    int64_t in = xType.getDimSize(2), out = baseType.getDimSize(2);
    int64_t batch = xType.getDimSize(0), rows = xType.getDimSize(1);
    auto parallel = utils::IteratorType::parallel, reduction = utils::IteratorType::reduction;
    auto map = [&](unsigned dims, ArrayRef<unsigned> results) {
      SmallVector<AffineExpr> exprs;
      for (unsigned d : results)
        exprs.push_back(getAffineDimExpr(d, context));
      return AffineMap::get(dims, 0, exprs, context);
    };

    // Each row's scale: its slot's, or 0 without one.
    Value scales = castElements(rewriter, loc, op.getScales(), type);
    Value rowScale =
        linalg::GenericOp::create(
            rewriter, loc, TypeRange{RankedTensorType::get({batch}, type)}, ValueRange{index},
            ValueRange{emptyLike(rewriter, loc, {batch}, type, x, {0})},
            ArrayRef<AffineMap>{map(1, {0}), map(1, {0})}, ArrayRef{parallel},
            [&](OpBuilder &nested, Location at, ValueRange args) {
              Value slot = slotOf(nested, at, args[0]);
              Value scale = tensor::ExtractOp::create(nested, at, scales, ValueRange{slot});
              Value none = noSlot(nested, at, args[0]);
              Value zero = floatConstant(nested, at, type, 0.0);
              linalg::YieldOp::create(nested, at,
                                      ValueRange{arith::SelectOp::create(nested, at, none, zero,
                                                                          scale)});
            })
            .getResult(0);

    // Each row's slot's factors, as the tables hold them (k-major, as
    // batched GEMMs read their right operand): Aᵀ [batch, in, R], Bᵀ
    // [batch, R, out]. With the slots' ranks, zeros past the slot's rank
    // along `rankDim` (what the tables hold there anyway): the selection
    // says where a back end reads each slot's rank (kSlotGatherAttr).
    Value ranks = op.getRanks();
    auto gather = [&](Value factors, ArrayRef<int64_t> shape, int64_t rankDim) {
      auto gathered = RankedTensorType::get({batch, shape[0], shape[1]}, type);
      auto select = linalg::GenericOp::create(
          rewriter, loc, TypeRange{gathered}, ValueRange{index},
          ValueRange{emptyLike(rewriter, loc, gathered.getShape(), type, x, {0, -1, -1})},
          ArrayRef<AffineMap>{map(3, {0}), map(3, {0, 1, 2})},
          ArrayRef{parallel, parallel, parallel},
          [&](OpBuilder &nested, Location at, ValueRange args) {
            Value slot = slotOf(nested, at, args[0]);
            Value i = linalg::IndexOp::create(nested, at, 1);
            Value j = linalg::IndexOp::create(nested, at, 2);
            Value value = tensor::ExtractOp::create(nested, at, factors, ValueRange{slot, i, j});
            if (ranks) {
              Value rank = arith::FPToSIOp::create(
                  nested, at, nested.getI64Type(),
                  tensor::ExtractOp::create(nested, at, ranks, ValueRange{slot}));
              Value position = arith::IndexCastOp::create(nested, at, nested.getI64Type(),
                                                          rankDim == 1 ? i : j);
              Value inside =
                  arith::CmpIOp::create(nested, at, arith::CmpIPredicate::slt, position, rank);
              value = arith::SelectOp::create(nested, at, inside, value,
                                              floatConstant(nested, at, type, 0.0));
            }
            linalg::YieldOp::create(nested, at, ValueRange{value});
          });
      select->setAttr(kSlotGatherAttr, ranks ? Attribute(rewriter.getI64IntegerAttr(rankDim))
                                             : Attribute(rewriter.getUnitAttr()));
      return select.getResult(0);
    };
    Value rowA = gather(a, {in, capacity}, 2);
    Value rowB = gather(b, {capacity, out}, 1);

    // down[b, t, r] = rowScale[b] · Σ_k x[b, t, k] · Aᵀ[b, k, r].
    auto multiplyAdd = [](OpBuilder &nested, Location at, ValueRange args) {
      Value product = arith::MulFOp::create(nested, at, args[0], args[1]);
      linalg::YieldOp::create(nested, at,
                              ValueRange{arith::AddFOp::create(nested, at, args[2], product)});
    };
    auto downType = RankedTensorType::get({batch, rows, capacity}, type);
    Value zeros = linalg::FillOp::create(
                      rewriter, loc, ValueRange{floatConstant(rewriter, loc, type, 0.0)},
                      ValueRange{emptyLike(rewriter, loc, downType.getShape(), type, x,
                                           {0, 1, -1})})
                      .getResult(0);
    Value down = linalg::GenericOp::create(
                     rewriter, loc, TypeRange{downType}, ValueRange{x, rowA}, ValueRange{zeros},
                     ArrayRef<AffineMap>{map(4, {0, 1, 3}), map(4, {0, 3, 2}), map(4, {0, 1, 2})},
                     ArrayRef{parallel, parallel, parallel, reduction}, multiplyAdd)
                     .getResult(0);
    Value scaled =
        linalg::GenericOp::create(
            rewriter, loc, TypeRange{downType}, ValueRange{down, rowScale}, ValueRange{down},
            ArrayRef<AffineMap>{map(3, {0, 1, 2}), map(3, {0}), map(3, {0, 1, 2})},
            ArrayRef{parallel, parallel, parallel},
            [&](OpBuilder &nested, Location at, ValueRange args) {
              linalg::YieldOp::create(
                  nested, at, ValueRange{arith::MulFOp::create(nested, at, args[0], args[1])});
            })
            .getResult(0);
    // result[b, t, o] = base[b, t, o] + Σ_r down[b, t, r] · Bᵀ[b, r, o];
    // with DoRA slots, the update alone (base rescaled below).
    Value doraScales = castElements(rewriter, loc, op.getDoraScales(), type);
    Value start = base;
    if (doraScales)
      start = linalg::FillOp::create(rewriter, loc,
                                     ValueRange{floatConstant(rewriter, loc, type, 0.0)},
                                     ValueRange{emptyLike(rewriter, loc, baseType.getShape(), type,
                                                          base, {0, 1, 2})})
                  .getResult(0);
    Value result = linalg::GenericOp::create(
                       rewriter, loc, TypeRange{baseType}, ValueRange{scaled, rowB},
                       ValueRange{start},
                       ArrayRef<AffineMap>{map(4, {0, 1, 3}), map(4, {0, 3, 2}),
                                           map(4, {0, 1, 2})},
                       ArrayRef{parallel, parallel, parallel, reduction}, multiplyAdd)
                       .getResult(0);
    // + rowScale[b] · lora_bias[slot of b, o].
    if (bias)
      result = linalg::GenericOp::create(
                   rewriter, loc, TypeRange{baseType}, ValueRange{index, rowScale},
                   ValueRange{result},
                   ArrayRef<AffineMap>{map(3, {0}), map(3, {0}), map(3, {0, 1, 2})},
                   ArrayRef{parallel, parallel, parallel},
                   [&](OpBuilder &nested, Location at, ValueRange args) {
                     Value slot = slotOf(nested, at, args[0]);
                     Value o = linalg::IndexOp::create(nested, at, 2);
                     Value value = tensor::ExtractOp::create(nested, at, bias, ValueRange{slot, o});
                     Value term = arith::MulFOp::create(nested, at, value, args[1]);
                     linalg::YieldOp::create(
                         nested, at, ValueRange{arith::AddFOp::create(nested, at, args[2], term)});
                   })
                   .getResult(0);
    // DoRA (doraElement), n = dora_scales of the row's slot (1 without one).
    if (doraScales) {
      Value layerBias = castElements(rewriter, loc, op.getLayerBias(), type);
      Type layerType = op.getType().getElementType();
      result = linalg::GenericOp::create(
                   rewriter, loc, TypeRange{baseType}, ValueRange{base, result, index},
                   ValueRange{emptyLike(rewriter, loc, baseType.getShape(), type, base, {0, 1, 2})},
                   ArrayRef<AffineMap>{map(3, {0, 1, 2}), map(3, {0, 1, 2}), map(3, {0}),
                                       map(3, {0, 1, 2})},
                   ArrayRef{parallel, parallel, parallel},
                   [&](OpBuilder &nested, Location at, ValueRange args) {
                     Value n = slotFeatureOrOne(nested, at, doraScales, args[2], type);
                     Value bias;
                     if (layerBias)
                       bias = tensor::ExtractOp::create(
                           nested, at, layerBias, ValueRange{linalg::IndexOp::create(nested, at, 2)});
                     Value sum = doraElement(nested, at, args[0], args[1], n, bias, layerType);
                     linalg::YieldOp::create(nested, at, ValueRange{sum});
                   })
                   .getResult(0);
    }
    // Back to the base's shape and type.
    result = inShapeOf(rewriter, loc, result, layerBase);
    result = castElements(rewriter, loc, result, op.getType().getElementType());
    if (residualAdd) {
      rewriter.replaceOp(residualAdd, result);
      rewriter.eraseOp(op);
    } else {
      rewriter.replaceOp(op, result);
    }
    return success();
  }
};

struct LowerMultiIa3 : OpRewritePattern<MultiIa3Op> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MultiIa3Op op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = op.getContext();
    Type type = computeTypeOf(op.getType().getElementType());
    Value index = op.getIndex();
    Value batchSize = tensor::DimOp::create(rewriter, loc, index, 0);
    Value x = asBatchOfRows(rewriter, loc, castElements(rewriter, loc, op.getInput(), type),
                            batchSize);
    Value scales = castElements(rewriter, loc, op.getScales(), type);
    auto xType = cast<RankedTensorType>(x.getType());
    auto identity = AffineMap::getMultiDimIdentityMap(3, context);
    auto batchOnly = AffineMap::get(3, 0, {getAffineDimExpr(0, context)}, context);
    auto parallel = utils::IteratorType::parallel;
    // result[b, t, c] = x[b, t, c] · scales[slot of b, c], or x without one.
    Value result =
        linalg::GenericOp::create(
            rewriter, loc, TypeRange{xType}, ValueRange{x, index},
            ValueRange{emptyLike(rewriter, loc, xType.getShape(), type, x, {0, 1, 2})},
            ArrayRef<AffineMap>{identity, batchOnly, identity},
            ArrayRef{parallel, parallel, parallel},
            [&](OpBuilder &nested, Location at, ValueRange args) {
              Value scale = slotFeatureOrOne(nested, at, scales, args[1], type);
              linalg::YieldOp::create(
                  nested, at, ValueRange{arith::MulFOp::create(nested, at, args[0], scale)});
            })
            .getResult(0);
    result = inShapeOf(rewriter, loc, result, op.getInput());
    rewriter.replaceOp(op, castElements(rewriter, loc, result, op.getType().getElementType()));
    return success();
  }
};

} // namespace

void peft::populateMultiAdaptersToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerMultiLora, LowerMultiIa3>(patterns.getContext());
}
