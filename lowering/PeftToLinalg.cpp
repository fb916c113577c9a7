//===- PeftToLinalg.cpp - peft layers and adapters to linalg ----------------===//
#include "lowering/Passes.h"

#include "lowering/DoraElement.h"
#include "lowering/ElementCasts.h"

#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace peft {
#define GEN_PASS_DEF_CONVERTPEFTTOLINALG
#include "lowering/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// [d0, ..., dn-1, K] -> [d0·...·dn-1, K]; a vector [K] becomes [1, K].
Value flattenBatch(OpBuilder &builder, Location loc, Value input) {
  auto type = cast<RankedTensorType>(input.getType());
  int64_t rank = type.getRank();
  if (rank == 2)
    return input;
  if (rank == 1) {
    auto matrix = RankedTensorType::get({1, type.getDimSize(0)}, type.getElementType());
    return tensor::ExpandShapeOp::create(builder, loc, matrix, input,
                                         ArrayRef<ReassociationIndices>{{0, 1}});
  }
  ReassociationIndices batch = llvm::to_vector(llvm::seq<int64_t>(0, rank - 1));
  return tensor::CollapseShapeOp::create(
      builder, loc, input, ArrayRef<ReassociationIndices>{batch, {rank - 1}});
}

/// The inverse of flattenBatch: [M, N] -> [d0, ..., dn-1, N], the batch sizes
/// taken from `like` (the layer's input).
Value restoreBatch(OpBuilder &builder, Location loc, Value matrix, Value like,
                   RankedTensorType resultType) {
  int64_t rank = resultType.getRank();
  if (rank == 2)
    return matrix;
  if (rank == 1)
    return tensor::CollapseShapeOp::create(builder, loc, resultType, matrix,
                                           ArrayRef<ReassociationIndices>{{0, 1}});
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(builder, loc, like);
  sizes.back() = builder.getIndexAttr(resultType.getShape().back());
  ReassociationIndices batch = llvm::to_vector(llvm::seq<int64_t>(0, rank - 1));
  return tensor::ExpandShapeOp::create(builder, loc, resultType, matrix,
                                       ArrayRef<ReassociationIndices>{batch, {rank - 1}},
                                       sizes);
}

/// acc + lhs·rhs, or acc + lhs·rhsᵀ when `rhsTransposed`, as a linalg.matmul.
Value matmul(OpBuilder &builder, Location loc, Value lhs, Value rhs,
             bool rhsTransposed, Value acc) {
  MLIRContext *context = builder.getContext();
  AffineExpr m, n, k;
  bindDims(context, m, n, k);
  auto map = [&](ArrayRef<AffineExpr> results) {
    return AffineMapAttr::get(AffineMap::get(3, 0, results, context));
  };
  ArrayAttr maps = builder.getArrayAttr(
      {map({m, k}), rhsTransposed ? map({n, k}) : map({k, n}), map({m, n})});
  return linalg::MatmulOp::create(builder, loc, TypeRange{acc.getType()},
                                  ValueRange{lhs, rhs}, ValueRange{acc},
                                  {builder.getNamedAttr("indexing_maps", maps)})
      .getResult(0);
}

/// An [M, N] tensor of zeros, M the rows of `rows`.
Value zerosFor(OpBuilder &builder, Location loc, Value rows, int64_t n, Type elementType) {
  SmallVector<OpFoldResult> sizes = {tensor::getMixedSize(builder, loc, rows, 0),
                                     builder.getIndexAttr(n)};
  Value empty = tensor::EmptyOp::create(builder, loc, sizes, elementType);
  Value zero = arith::ConstantOp::create(builder, loc, builder.getZeroAttr(elementType));
  return linalg::FillOp::create(builder, loc, zero, empty).getResult(0);
}

/// An adapter's scale (an f32 attribute) as a constant of `type`, the type of
/// what it multiplies.
Value scaleConstant(OpBuilder &builder, Location loc, FloatAttr scale, Type type) {
  return arith::ConstantOp::create(builder, loc,
                                   builder.getFloatAttr(type, scale.getValueAsDouble()));
}

/// tensor[i, c, ...] + scale·bias[c] (scale 1 when absent, the bias converted
/// to the tensor's type): the bias runs along dimension 1, the outputs of a
/// GEMM over rows and the channels of a convolution. It is added after the
/// GEMM, not used as its accumulator, so that it fuses with the elementwise
/// ops that follow and the GEMM stays a named op for the back ends' schedules.
Value addBias(OpBuilder &builder, Location loc, Value tensor, Value bias,
              FloatAttr scale = {}) {
  MLIRContext *context = builder.getContext();
  int64_t rank = cast<ShapedType>(tensor.getType()).getRank();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, context);
  AffineMap channel = AffineMap::get(rank, 0, getAffineDimExpr(1, context));
  Value init = tensor::EmptyOp::create(builder, loc, tensor::getMixedSizes(builder, loc, tensor),
                                       cast<ShapedType>(tensor.getType()).getElementType());
  return linalg::GenericOp::create(
             builder, loc, init.getType(), ValueRange{tensor, bias}, init,
             ArrayRef<AffineMap>{identity, channel, identity},
             SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               Value term = convertFloat(nested, nestedLoc, args[1], args[0].getType());
               if (scale)
                 term = arith::MulFOp::create(nested, nestedLoc, term,
                                              scaleConstant(nested, nestedLoc, scale, term.getType()));
               linalg::YieldOp::create(
                   nested, nestedLoc,
                   arith::AddFOp::create(nested, nestedLoc, args[0], term).getResult());
             })
      .getResult(0);
}

/// `factor`·`matrix`, elementwise, into `init`.
Value scaleBy(OpBuilder &builder, Location loc, Value matrix, FloatAttr factor, Value init) {
  Value scale = scaleConstant(builder, loc, factor, getElementTypeOrSelf(matrix));
  AffineMap identity = builder.getMultiDimIdentityMap(2);
  return linalg::GenericOp::create(
             builder, loc, matrix.getType(), matrix, init,
             ArrayRef<AffineMap>{identity, identity},
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               linalg::YieldOp::create(nested, nestedLoc,
                                       arith::MulFOp::create(nested, nestedLoc, args[0], scale)
                                           .getResult());
             })
      .getResult(0);
}

/// The bias on every row of an [M, N] accumulator, M the rows of `rows`: a
/// GEMM that starts from it adds the bias without a pass of its own.
Value biasRows(OpBuilder &builder, Location loc, Value rows, Value bias, Type accumulator) {
  MLIRContext *context = builder.getContext();
  int64_t n = cast<ShapedType>(bias.getType()).getDimSize(0);
  Value init = tensor::EmptyOp::create(
      builder, loc, {tensor::getMixedSize(builder, loc, rows, 0), builder.getIndexAttr(n)},
      accumulator);
  return linalg::GenericOp::create(
             builder, loc, init.getType(), bias, init,
             ArrayRef<AffineMap>{AffineMap::get(2, 0, getAffineDimExpr(1, context)),
                                 AffineMap::getMultiDimIdentityMap(2, context)},
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               linalg::YieldOp::create(nested, nestedLoc,
                                       convertFloat(nested, nestedLoc, args[0], accumulator));
             })
      .getResult(0);
}

/// x·Wᵀ (+ b when `withBias`) over the layer's rows flattened, in the type
/// the layer accumulates in.
Value linearProduct(OpBuilder &builder, Location loc, LinearOp op, bool withBias) {
  Type accumulator = computeTypeOf(op.getResult().getType().getElementType());
  Value rows = flattenBatch(builder, loc, op.getInput());
  Value init = withBias && op.getBias()
                   ? biasRows(builder, loc, rows, op.getBias(), accumulator)
                   : zerosFor(builder, loc, rows, op.getOutFeatures(), accumulator);
  return matmul(builder, loc, rows, op.getWeight(), /*rhsTransposed=*/!op.getWeightInOut(), init);
}

/// Whether `layer` is read by a head shift alone (STDHA on a key or value
/// projection): LowerHeadShift lowers the two together.
bool feedsHeadShiftAlone(LinearOp layer) {
  return layer->hasOneUse() && isa<HeadShiftOp>(*layer->user_begin());
}

struct LowerLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op, PatternRewriter &rewriter) const override {
    if (feedsHeadShiftAlone(op))
      return rewriter.notifyMatchFailure(op, "lowered with the head shift that reads it");
    Location loc = op.getLoc();
    RankedTensorType resultType = op.getResult().getType();
    Value product = linearProduct(rewriter, loc, op, /*withBias=*/true);
    Value result = restoreBatch(rewriter, loc, product, op.getInput(),
                                resultType.clone(getElementTypeOrSelf(product)));
    rewriter.replaceOp(op, castElements(rewriter, loc, result, resultType.getElementType()));
    return success();
  }
};

/// `acc + scale·term`, elementwise over tensors of one shape.
Value addScaled(OpBuilder &builder, Location loc, Value acc, Value term, FloatAttr scale) {
  auto type = cast<RankedTensorType>(acc.getType());
  AffineMap identity = builder.getMultiDimIdentityMap(type.getRank());
  Value init = tensor::EmptyOp::create(builder, loc, tensor::getMixedSizes(builder, loc, acc),
                                       type.getElementType());
  return linalg::GenericOp::create(
             builder, loc, type, ValueRange{acc, term}, init,
             ArrayRef<AffineMap>{identity, identity, identity},
             SmallVector<utils::IteratorType>(type.getRank(), utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               Value factor = scaleConstant(nested, nestedLoc, scale, args[1].getType());
               Value scaled = arith::MulFOp::create(nested, nestedLoc, args[1], factor);
               linalg::YieldOp::create(
                   nested, nestedLoc,
                   arith::AddFOp::create(nested, nestedLoc, args[0], scaled).getResult());
             })
      .getResult(0);
}

/// Collapses every dimension of `value` after the first: [d0, d1, ...] -> [d0, d1·...].
Value asMatrix(OpBuilder &builder, Location loc, Value value) {
  int64_t rank = cast<RankedTensorType>(value.getType()).getRank();
  if (rank == 2)
    return value;
  ReassociationIndices rest = llvm::to_vector(llvm::seq<int64_t>(1, rank));
  return tensor::CollapseShapeOp::create(builder, loc, value,
                                         ArrayRef<ReassociationIndices>{{0}, rest});
}

/// What peft.lora and peft.dora share: the low-rank branch and its form, its
/// input and factors converted to the type it computes in.
struct LowRankBranch {
  Type computeType;
  Value input, a, b;
  FloatAttr scale;
  std::optional<ArrayRef<int64_t>> strides, pads;

  template <typename AdapterOp>
  static LowRankBranch of(OpBuilder &builder, AdapterOp op) {
    Location loc = op.getLoc();
    Type type = computeTypeOf(op.getType().getElementType());
    return {type,
            castElements(builder, loc, op.getInput(), type),
            castElements(builder, loc, op.getLoraA(), type),
            castElements(builder, loc, op.getLoraB(), type),
            op.getScaleAttr(),
            op.getStrides(),
            op.getPads()};
  }

  /// `acc + scale·(input·Aᵀ)·Bᵀ`, `acc` of the compute type, shaped like the
  /// layer's output.
  Value addTo(OpBuilder &builder, Location loc, Value acc) const {
    if (strides)
      return addConvolutionTo(builder, loc, acc);
    Value down;
    if (isa<IntegerType>(cast<ShapedType>(input.getType()).getElementType())) {
      down = flattenBatch(builder, loc, gatherColumnsOfA(builder, loc));
    } else {
      Value rows = flattenBatch(builder, loc, input);
      int64_t rank = cast<ShapedType>(a.getType()).getDimSize(0);
      down = matmul(builder, loc, rows, a, true, zerosFor(builder, loc, rows, rank, computeType));
    }
    Value scaled = scaleBy(builder, loc, down, scale,
                           tensor::EmptyOp::create(builder, loc,
                                                   tensor::getMixedSizes(builder, loc, down),
                                                   computeType));
    Value up = matmul(builder, loc, scaled, b, true, flattenBatch(builder, loc, acc));
    return restoreBatch(builder, loc, up, acc, cast<RankedTensorType>(acc.getType()));
  }

  /// Aᵀ[indices]: A's columns picked by the indices, as an embedding lookup
  /// into Aᵀ.
  Value gatherColumnsOfA(OpBuilder &builder, Location loc) const {
    auto aType = cast<RankedTensorType>(a.getType());
    Value init = tensor::EmptyOp::create(builder, loc, {aType.getDimSize(1), aType.getDimSize(0)},
                                         aType.getElementType());
    Value table = linalg::TransposeOp::create(builder, loc, a, init, ArrayRef<int64_t>{1, 0})
                      .getResult()[0];
    auto inputType = cast<RankedTensorType>(input.getType());
    SmallVector<int64_t> shape(inputType.getShape());
    shape.push_back(aType.getDimSize(0));
    return EmbeddingOp::create(builder, loc, RankedTensorType::get(shape, aType.getElementType()),
                               builder.getStringAttr("lora_embedding_A"), input, table);
  }

  /// A as a convolution with the layer's strides and pads, then B as a 1×1
  /// one.
  Value addConvolutionTo(OpBuilder &builder, Location loc, Value acc) const {
    auto accType = cast<RankedTensorType>(acc.getType());
    int64_t spatial = accType.getRank() - 2;
    SmallVector<int64_t> ones(spatial, 1), zeros(2 * spatial, 0);
    SmallVector<int64_t> downShape(accType.getShape());
    downShape[1] = cast<ShapedType>(a.getType()).getDimSize(0);
    auto convolve = [&](Value x, Value w, RankedTensorType type, ArrayRef<int64_t> convStrides,
                        ArrayRef<int64_t> convPads) {
      return ConvOp::create(builder, loc, type, builder.getStringAttr("lora"), x, w, Value(),
                            convStrides, ones, convPads, 1)
          .getResult();
    };
    Value down = convolve(input, a, RankedTensorType::get(downShape, accType.getElementType()),
                          *strides, *pads);
    Value up = convolve(down, b, accType, ones, zeros);
    return addScaled(builder, loc, acc, up, scale);
  }
};

/// base + s·((x·Aᵀ)·Bᵀ + lora_bias), with the scale applied to the thin [M, r]
/// intermediate; in the compute type, rounded once to the layer's type.
struct LowerLora : OpRewritePattern<LoraOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LoraOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LowRankBranch branch = LowRankBranch::of(rewriter, op);
    Type type = branch.computeType;
    Value result = branch.addTo(rewriter, loc, castElements(rewriter, loc, op.getBase(), type));
    if (Value bias = castElements(rewriter, loc, op.getLoraBias(), type))
      result = op.isConvolution() ? addBias(rewriter, loc, result, bias, op.getScaleAttr())
                                  : addBiasToRows(rewriter, loc, result, bias, op.getScaleAttr());
    rewriter.replaceOp(op, castElements(rewriter, loc, result, op.getType().getElementType()));
    return success();
  }

  /// The bias added along the last dimension.
  static Value addBiasToRows(OpBuilder &builder, Location loc, Value result, Value bias,
                             FloatAttr scale) {
    auto type = cast<RankedTensorType>(result.getType());
    Value rows = addBias(builder, loc, flattenBatch(builder, loc, result), bias, scale);
    return restoreBatch(builder, loc, rows, result, type);
  }
};

/// DoRA left unmerged: n = m / ‖W + s·B·A‖_row from the weights at run time,
/// then n ⊙ (base − bias + s·(x·Aᵀ)·Bᵀ) + bias; in the compute type, rounded
/// once to the layer's type. A linear layer of a half type follows PEFT's
/// Linear instead, which rounds base − bias to the layer's type before
/// rescaling it: base + (n − 1)·round(base − bias) + n·s·(x·Aᵀ)·Bᵀ.
struct LowerDora : OpRewritePattern<DoraOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(DoraOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LowRankBranch branch = LowRankBranch::of(rewriter, op);
    Type type = branch.computeType, layerType = op.getType().getElementType();
    Value base = castElements(rewriter, loc, op.getBase(), type);
    int64_t channelDim = op.isConvolution() ? 1 : op.getType().getRank() - 1;
    Value bias = castElements(rewriter, loc, op.getBias(), type);
    Value rescaled;
    if (!op.isConvolution() && layerType != type) {
      Value zero = arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(type));
      Value zeros = linalg::FillOp::create(rewriter, loc, zero,
                                           Value(tensor::EmptyOp::create(
                                               rewriter, loc,
                                               tensor::getMixedSizes(rewriter, loc, base), type)))
                        .getResult(0);
      Value update = branch.addTo(rewriter, loc, zeros);
      Value factor = magnitudeOverNorm(rewriter, loc, op, branch);
      rescaled = rescaleRoundedBase(rewriter, loc, base, update, factor, bias, layerType);
    } else {
      Value adapted = branch.addTo(rewriter, loc, base);
      Value factor = magnitudeOverNorm(rewriter, loc, op, branch);
      rescaled = rescaleChannels(rewriter, loc, adapted, factor, bias, channelDim);
    }
    rewriter.replaceOp(op, castElements(rewriter, loc, rescaled, layerType));
    return success();
  }

  /// A parallel generic over the elements of `elementwise[0]`, reading each
  /// of `elementwise` at the element, then each of `perChannel` that is set
  /// at the element's coordinate along `channelDim`.
  static Value channelwise(OpBuilder &builder, Location loc, ArrayRef<Value> elementwise,
                           ArrayRef<Value> perChannel, int64_t channelDim,
                           function_ref<void(OpBuilder &, Location, ValueRange)> body) {
    MLIRContext *context = builder.getContext();
    Value like = elementwise.front();
    auto type = cast<RankedTensorType>(like.getType());
    int64_t rank = type.getRank();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, context);
    AffineMap channel = AffineMap::get(rank, 0, getAffineDimExpr(channelDim, context));
    SmallVector<Value> inputs(elementwise);
    SmallVector<AffineMap> maps(elementwise.size(), identity);
    for (Value vector : perChannel)
      if (vector) {
        inputs.push_back(vector);
        maps.push_back(channel);
      }
    maps.push_back(identity);
    Value init = tensor::EmptyOp::create(builder, loc, tensor::getMixedSizes(builder, loc, like),
                                         type.getElementType());
    return linalg::GenericOp::create(
               builder, loc, type, inputs, init, maps,
               SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel), body)
        .getResult(0);
  }

  /// doraElement over the elements, n and the bias along the last dimension.
  static Value rescaleRoundedBase(OpBuilder &builder, Location loc, Value base, Value update,
                                  Value factor, Value bias, Type layerType) {
    int64_t channelDim = cast<RankedTensorType>(base.getType()).getRank() - 1;
    return channelwise(
        builder, loc, {base, update}, {factor, bias}, channelDim,
        [&](OpBuilder &nested, Location at, ValueRange args) {
          Value sum = doraElement(nested, at, args[0], args[1], args[2], bias ? args[3] : Value(),
                                  layerType);
          linalg::YieldOp::create(nested, at, ValueRange{sum});
        });
  }

  /// m[o] / sqrt(Σ_i (W[o, i] + s·(B·A)[o, i])²), W read as a matrix, the
  /// factors the branch's.
  static Value magnitudeOverNorm(OpBuilder &builder, Location loc, DoraOp op,
                                 const LowRankBranch &branch) {
    MLIRContext *context = builder.getContext();
    Type type = branch.computeType;
    Value a = asMatrix(builder, loc, branch.a), b = asMatrix(builder, loc, branch.b);
    Value weight = asMatrix(builder, loc, castElements(builder, loc, op.getWeight(), type));
    int64_t out = cast<ShapedType>(b.getType()).getDimSize(0);
    int64_t in = cast<ShapedType>(a.getType()).getDimSize(1);
    Value delta = matmul(builder, loc, b, a, false, zerosFor(builder, loc, b, in, type));
    Value zero = arith::ConstantOp::create(builder, loc, builder.getZeroAttr(type));
    Value sums = linalg::FillOp::create(builder, loc, zero,
                                        Value(tensor::EmptyOp::create(builder, loc, {out}, type)))
                     .getResult(0);
    AffineExpr o, i;
    bindDims(context, o, i);
    auto map = [&](ArrayRef<AffineExpr> results) { return AffineMap::get(2, 0, results, context); };
    FloatAttr scale = op.getScaleAttr();
    sums = linalg::GenericOp::create(
               builder, loc, sums.getType(), ValueRange{weight, delta}, sums,
               ArrayRef<AffineMap>{op.getWeightInOut() ? map({i, o}) : map({o, i}), map({o, i}),
                                   map({o})},
               {utils::IteratorType::parallel, utils::IteratorType::reduction},
               [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                 Value factor = scaleConstant(nested, nestedLoc, scale, args[1].getType());
                 Value value = arith::AddFOp::create(
                     nested, nestedLoc, args[0],
                     arith::MulFOp::create(nested, nestedLoc, args[1], factor));
                 Value square = arith::MulFOp::create(nested, nestedLoc, value, value);
                 linalg::YieldOp::create(
                     nested, nestedLoc,
                     arith::AddFOp::create(nested, nestedLoc, args[2], square).getResult());
               })
               .getResult(0);
    Value magnitude = castElements(builder, loc, op.getMagnitude(), type);
    int64_t magnitudeRank = cast<ShapedType>(magnitude.getType()).getRank();
    if (magnitudeRank != 1)
      magnitude = tensor::CollapseShapeOp::create(
          builder, loc, magnitude,
          ArrayRef<ReassociationIndices>{llvm::to_vector(llvm::seq<int64_t>(0, magnitudeRank))});
    AffineMap identity = builder.getMultiDimIdentityMap(1);
    return linalg::GenericOp::create(
               builder, loc, sums.getType(), ValueRange{magnitude, sums},
               Value(tensor::EmptyOp::create(builder, loc, {out}, type)),
               ArrayRef<AffineMap>{identity, identity, identity},
               {utils::IteratorType::parallel},
               [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                 Value norm = math::SqrtOp::create(nested, nestedLoc, args[1]);
                 linalg::YieldOp::create(
                     nested, nestedLoc,
                     arith::DivFOp::create(nested, nestedLoc, args[0], norm).getResult());
               })
        .getResult(0);
  }

  /// factor[c]·(value − bias[c]) + bias[c], c running along `channelDim`.
  static Value rescaleChannels(OpBuilder &builder, Location loc, Value value, Value factor,
                               Value bias, int64_t channelDim) {
    return channelwise(
        builder, loc, {value}, {factor, bias}, channelDim,
        [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
          if (!bias) {
            linalg::YieldOp::create(
                nested, nestedLoc,
                arith::MulFOp::create(nested, nestedLoc, args[0], args[1]).getResult());
            return;
          }
          Value centered = arith::SubFOp::create(nested, nestedLoc, args[0], args[2]);
          Value scaled = arith::MulFOp::create(nested, nestedLoc, centered, args[1]);
          linalg::YieldOp::create(
              nested, nestedLoc,
              arith::AddFOp::create(nested, nestedLoc, scaled, args[2]).getResult());
        });
  }
};

/// Reads a row-major [rows, columns] matrix as `type` (its first dimension
/// the rows): a kernel [O, C, kh, kw] from [O, C·kh·kw].
Value reshapeMatrix(OpBuilder &builder, Location loc, Value matrix, RankedTensorType type) {
  if (type.getRank() == 2)
    return matrix;
  ReassociationIndices rest = llvm::to_vector(llvm::seq<int64_t>(1, type.getRank()));
  return tensor::ExpandShapeOp::create(builder, loc, type, matrix,
                                       ArrayRef<ReassociationIndices>{{0}, rest});
}

struct LowerFactorProduct : OpRewritePattern<FactorProductOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(FactorProductOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Type elementType = type.getElementType();
    Value lhs = castElements(rewriter, loc, op.getLhs(), elementType);
    Value rhs = castElements(rewriter, loc, op.getRhs(), elementType);
    Value zeros = zerosFor(rewriter, loc, lhs, type.getDimSize(1), elementType);
    rewriter.replaceOp(op, matmul(rewriter, loc, lhs, rhs, false, zeros));
    return success();
  }
};

/// The CP form's Σᵢ Σⱼ core[i, j, k...]·a[i, p]·b[j, q] as one generic over
/// (p, q, k..., i, j), reducing i and j, into a [p, q, k...] tensor of
/// zeros, collapsed to the [p, q·K] matrix. It runs once per call on weights
/// only, so the r1·r2 work per element is small beside the layer's
/// convolution.
struct LowerCpProduct : OpRewritePattern<CpProductOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CpProductOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    Type elementType = op.getType().getElementType();
    Value core = castElements(rewriter, loc, op.getCore(), elementType);
    Value a = castElements(rewriter, loc, op.getA(), elementType);
    Value b = castElements(rewriter, loc, op.getB(), elementType);
    ArrayRef<int64_t> coreShape = op.getCore().getType().getShape();
    int64_t kernelRank = coreShape.size() - 2, loops = 4 + kernelRank;
    auto dim = [&](int64_t d) { return getAffineDimExpr(d, context); };
    AffineExpr p = dim(0), q = dim(1), i = dim(loops - 2), j = dim(loops - 1);
    SmallVector<AffineExpr> coreMap = {i, j}, outMap = {p, q};
    SmallVector<int64_t> outShape = {op.getType().getDimSize(0),
                                     op.getB().getType().getDimSize(1)};
    for (int64_t d = 0; d < kernelRank; ++d) {
      coreMap.push_back(dim(2 + d));
      outMap.push_back(dim(2 + d));
      outShape.push_back(coreShape[2 + d]);
    }
    auto map = [&](ArrayRef<AffineExpr> results) {
      return AffineMap::get(loops, 0, results, context);
    };
    SmallVector<utils::IteratorType> iterators(loops - 2, utils::IteratorType::parallel);
    iterators.append(2, utils::IteratorType::reduction);
    Value zero = arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(elementType));
    Value init = linalg::FillOp::create(
                     rewriter, loc, zero,
                     Value(tensor::EmptyOp::create(rewriter, loc, outShape, elementType)))
                     .getResult(0);
    Value kernel =
        linalg::GenericOp::create(
            rewriter, loc, init.getType(), ValueRange{core, a, b}, init,
            ArrayRef<AffineMap>{map(coreMap), map({i, p}), map({j, q}), map(outMap)}, iterators,
            [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
              Value coreA = arith::MulFOp::create(nested, nestedLoc, args[0], args[1]);
              Value term = arith::MulFOp::create(nested, nestedLoc, coreA, args[2]);
              linalg::YieldOp::create(
                  nested, nestedLoc,
                  arith::AddFOp::create(nested, nestedLoc, args[3], term).getResult());
            })
            .getResult(0);
    ReassociationIndices columns = llvm::to_vector(llvm::seq<int64_t>(1, 2 + kernelRank));
    rewriter.replaceOpWithNewOp<tensor::CollapseShapeOp>(
        op, kernel, ArrayRef<ReassociationIndices>{{0}, columns});
    return success();
  }
};

/// scale·lhs·rhs elementwise over `init`'s shape, each input read through its
/// map.
Value scaledProduct(OpBuilder &builder, Location loc, Value lhs, Value rhs,
                    ArrayRef<AffineMap> maps, Value init, FloatAttr scale) {
  int64_t rank = cast<RankedTensorType>(init.getType()).getRank();
  return linalg::GenericOp::create(
             builder, loc, init.getType(), ValueRange{lhs, rhs}, init, maps,
             SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               Value both = arith::MulFOp::create(nested, nestedLoc, args[0], args[1]);
               Value factor = scaleConstant(nested, nestedLoc, scale, both.getType());
               linalg::YieldOp::create(
                   nested, nestedLoc,
                   arith::MulFOp::create(nested, nestedLoc, both, factor).getResult());
             })
      .getResult(0);
}

/// scale·p1⊙p2, then read as the weight's shape.
struct LowerLohaDelta : OpRewritePattern<LohaDeltaOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LohaDeltaOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type elementType = op.getType().getElementType();
    AffineMap identity = rewriter.getMultiDimIdentityMap(2);
    Value init = tensor::EmptyOp::create(rewriter, loc, op.getP1().getType().getShape(),
                                         elementType);
    Value p1 = castElements(rewriter, loc, op.getP1(), elementType);
    Value p2 = castElements(rewriter, loc, op.getP2(), elementType);
    Value product = scaledProduct(rewriter, loc, p1, p2, {identity, identity, identity}, init,
                                  op.getScaleAttr());
    rewriter.replaceOp(op, reshapeMatrix(rewriter, loc, product, op.getType()));
    return success();
  }
};

/// scale·kron(w1, w2) as one generic over [a, c, b, e] (element
/// w1[i, j]·w2[k, l]), collapsed to [a·c, b·e] and read as the weight's shape.
struct LowerLokrDelta : OpRewritePattern<LokrDeltaOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LokrDeltaOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    Type elementType = op.getType().getElementType();
    Value w1 = castElements(rewriter, loc, op.getW1(), elementType);
    Value w2 = castElements(rewriter, loc, asMatrix(rewriter, loc, op.getW2()), elementType);
    auto w1Type = cast<RankedTensorType>(w1.getType()), w2Type = cast<RankedTensorType>(w2.getType());
    int64_t a = w1Type.getDimSize(0), b = w1Type.getDimSize(1);
    int64_t c = w2Type.getDimSize(0), e = w2Type.getDimSize(1);
    AffineExpr i, k, j, l;
    bindDims(context, i, k, j, l);
    auto map = [&](ArrayRef<AffineExpr> results) { return AffineMap::get(4, 0, results, context); };
    Value init = tensor::EmptyOp::create(rewriter, loc, {a, c, b, e}, elementType);
    Value blocks = scaledProduct(rewriter, loc, w1, w2, {map({i, j}), map({k, l}), map({i, k, j, l})},
                                 init, op.getScaleAttr());
    Value matrix = tensor::CollapseShapeOp::create(
        rewriter, loc, blocks, ArrayRef<ReassociationIndices>{{0, 1}, {2, 3}});
    rewriter.replaceOp(op, reshapeMatrix(rewriter, loc, matrix, op.getType()));
    return success();
  }
};

/// base + the layer's op with the delta as its weight: x·Δᵀ accumulated into
/// the base rows, or a convolution with Δ as its kernel added to the base; in
/// the compute type, rounded once to the layer's type.
struct LowerAddDelta : OpRewritePattern<AddDeltaOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddDeltaOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type type = computeTypeOf(op.getType().getElementType());
    Value input = castElements(rewriter, loc, op.getInput(), type);
    Value base = castElements(rewriter, loc, op.getBase(), type);
    Value delta = castElements(rewriter, loc, op.getDelta(), type);
    Value sum;
    if (!op.isConvolution()) {
      Value rows = matmul(rewriter, loc, flattenBatch(rewriter, loc, input), delta, true,
                          flattenBatch(rewriter, loc, base));
      sum = restoreBatch(rewriter, loc, rows, base, cast<RankedTensorType>(base.getType()));
    } else {
      Value convolved = ConvOp::create(rewriter, loc, base.getType(),
                                       rewriter.getStringAttr(op.getAdapter()), input, delta,
                                       Value(), op.getStridesAttr(), op.getDilationsAttr(),
                                       op.getPadsAttr(), op.getGroupsAttr());
      sum = addScaled(rewriter, loc, base, convolved, rewriter.getF32FloatAttr(1.0f));
    }
    rewriter.replaceOp(op, castElements(rewriter, loc, sum, op.getType().getElementType()));
    return success();
  }
};

/// Splits dimension `dim` of `value` into [parts, size / parts].
Value splitDim(OpBuilder &builder, Location loc, Value value, int64_t dim, int64_t parts) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(builder, loc, value);
  SmallVector<int64_t> shape(type.getShape());
  int64_t whole = shape[dim];
  shape[dim] = ShapedType::isDynamic(whole) ? whole : whole / parts;
  shape.insert(shape.begin() + dim, parts);
  sizes[dim] = builder.getIndexAttr(shape[dim + 1]);
  sizes.insert(sizes.begin() + dim, builder.getIndexAttr(parts));
  SmallVector<ReassociationIndices> groups;
  for (int64_t d = 0; d < type.getRank(); ++d) {
    if (d < dim)
      groups.push_back({d});
    else if (d == dim)
      groups.push_back({d, d + 1});
    else
      groups.push_back({d + 1});
  }
  return tensor::ExpandShapeOp::create(
      builder, loc, RankedTensorType::get(shape, type.getElementType()), value, groups, sizes);
}

/// An f32 convolution of one group as a GEMM, whose weight the back ends
/// treat as any layer's (the CPU packs it into panels):
///   cols[n, y..., c, k...] = in[n, c, y·stride + k·dilation...]   (im2col)
///   out[n·y..., o] = bias[o] + cols[n·y..., c·k...] · w[o, c·k...]ᵀ
/// then [n, y..., o] transposed to [n, o, y...]. `input` is padded.
Value convolveAsGemm(PatternRewriter &rewriter, ConvOp op, Value input) {
  Location loc = op.getLoc();
  MLIRContext *context = rewriter.getContext();
  int64_t rank = op.getSpatialRank();
  RankedTensorType resultType = op.getResult().getType();
  auto weightType = cast<RankedTensorType>(op.getWeight().getType());
  int64_t channels = weightType.getDimSize(1), outChannels = weightType.getDimSize(0);
  Type f32 = rewriter.getF32Type();
  auto dim = [&](int64_t d) { return getAffineDimExpr(d, context); };

  // Loops n, y[rank], c, k[rank], all parallel: a copy.
  int64_t loops = 2 + 2 * rank;
  SmallVector<AffineExpr> in = {dim(0), dim(1 + rank)};
  SmallVector<OpFoldResult> colsSizes = {tensor::getMixedSize(rewriter, loc, input, 0)};
  for (int64_t d = 0; d < rank; ++d) {
    in.push_back(dim(1 + d) * op.getStrides()[d] + dim(2 + rank + d) * op.getDilations()[d]);
    colsSizes.push_back(rewriter.getIndexAttr(resultType.getDimSize(2 + d)));
  }
  colsSizes.push_back(rewriter.getIndexAttr(channels));
  for (int64_t d = 0; d < rank; ++d)
    colsSizes.push_back(rewriter.getIndexAttr(weightType.getDimSize(2 + d)));
  Value colsInit = tensor::EmptyOp::create(rewriter, loc, colsSizes, f32);
  Value cols =
      linalg::GenericOp::create(
          rewriter, loc, colsInit.getType(), input, colsInit,
          ArrayRef<AffineMap>{AffineMap::get(loops, 0, in, context),
                              AffineMap::getMultiDimIdentityMap(loops, context)},
          SmallVector<utils::IteratorType>(loops, utils::IteratorType::parallel),
          [](OpBuilder &nested, Location nestedLoc, ValueRange args) {
            linalg::YieldOp::create(nested, nestedLoc, args[0]);
          })
          .getResult(0);
  ReassociationIndices pixels = llvm::to_vector(llvm::seq<int64_t>(0, 1 + rank));
  ReassociationIndices taps = llvm::to_vector(llvm::seq<int64_t>(1 + rank, loops));
  Value rows = tensor::CollapseShapeOp::create(rewriter, loc, cols,
                                               ArrayRef<ReassociationIndices>{pixels, taps});
  Value kernel = tensor::CollapseShapeOp::create(
      rewriter, loc, op.getWeight(),
      ArrayRef<ReassociationIndices>{{0}, llvm::to_vector(llvm::seq<int64_t>(1, 2 + rank))});
  Value init = op.getBias() ? biasRows(rewriter, loc, rows, op.getBias(), f32)
                            : zerosFor(rewriter, loc, rows, outChannels, f32);
  Value product = matmul(rewriter, loc, rows, kernel, /*rhsTransposed=*/true, init);

  // [n·y..., o] -> [n, y..., o] -> [n, o, y...].
  SmallVector<OpFoldResult> pixelSizes(colsSizes.begin(), colsSizes.begin() + 1 + rank);
  pixelSizes.push_back(rewriter.getIndexAttr(outChannels));
  SmallVector<int64_t> pixelShape = {resultType.getDimSize(0)};
  for (int64_t d = 0; d < rank; ++d)
    pixelShape.push_back(resultType.getDimSize(2 + d));
  pixelShape.push_back(outChannels);
  Value image = tensor::ExpandShapeOp::create(
      rewriter, loc, RankedTensorType::get(pixelShape, f32), product,
      ArrayRef<ReassociationIndices>{pixels, {1 + rank}}, pixelSizes);
  SmallVector<OpFoldResult> outSizes = {colsSizes[0], rewriter.getIndexAttr(outChannels)};
  SmallVector<AffineExpr> transposed = {dim(0)};
  for (int64_t d = 0; d < rank; ++d) {
    outSizes.push_back(colsSizes[1 + d]);
    transposed.push_back(dim(2 + d));
  }
  transposed.push_back(dim(1));
  Value outInit = tensor::EmptyOp::create(rewriter, loc, outSizes, f32);
  return linalg::GenericOp::create(
             rewriter, loc, outInit.getType(), image, outInit,
             ArrayRef<AffineMap>{AffineMap::get(2 + rank, 0, transposed, context),
                                 AffineMap::getMultiDimIdentityMap(2 + rank, context)},
             SmallVector<utils::IteratorType>(2 + rank, utils::IteratorType::parallel),
             [](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               linalg::YieldOp::create(nested, nestedLoc, args[0]);
             })
      .getResult(0);
}

/// Whether `op` (f32, one group, static spatial and channel sizes) reads its
/// input through windows (convolveAsWindowGemm): a strided spatial dimension
/// must not be dilated as well, and the stride may split the kernel into at
/// most kMaxPhases phases (a 2-d stride of 2). Beyond, each phase would be a
/// GEMM over few taps and a copy of its own: a patch embedding (kernel 16,
/// stride 16: 256 phases of one tap) is better served by im2col, whose
/// columns are then the input reordered.
constexpr int64_t kMaxPhases = 4;
bool readsThroughWindow(ConvOp op) {
  auto inputType = cast<RankedTensorType>(op.getInput().getType());
  auto weightType = cast<RankedTensorType>(op.getWeight().getType());
  if (op.getGroups() != 1 || !inputType.getElementType().isF32() ||
      !weightType.hasStaticShape() || !op.getResult().getType().getElementType().isF32())
    return false;
  for (int64_t d = 1; d < inputType.getRank(); ++d)
    if (inputType.isDynamicDim(d))
      return false;
  int64_t phases = 1;
  for (int64_t d = 0; d < op.getSpatialRank(); ++d) {
    int64_t stride = op.getStrides()[d], taps = weightType.getDimSize(2 + d);
    if (stride != 1 && op.getDilations()[d] != 1 && taps != 1)
      return false;
    phases *= std::min(stride, taps);
  }
  return phases <= kMaxPhases;
}

/// An f32 convolution of one group as GEMMs whose right-hand side is a
/// window into the input, each channel flattened (no im2col copy):
///   out[n, o, p] = bias[o] + Σ w[o, c, k...] · in[n, c, p + Σ_d k_d·step_d·S_d]
/// S_d being the strides of the grid the input is laid out on. p runs over
/// the output's rows at the grid's pitch; the positions past each output
/// row are computed and dropped (a slice), and the grid has rows of zeros
/// at its end for the last row's taps. A strided convolution is the sum of
/// stride-1 ones over the phases of its stride (Σ over a with a_d < s_d):
/// the padded input's elements a + s·j against the kernel's taps a + s·k,
/// each phase laid out on the same grid so that all accumulate into one
/// output. Every input element is read by one phase and every weight by
/// one, so nothing is computed on padding but the grid's edges.
Value convolveAsWindowGemm(PatternRewriter &rewriter, ConvOp op) {
  Location loc = op.getLoc();
  MLIRContext *context = rewriter.getContext();
  int64_t rank = op.getSpatialRank();
  RankedTensorType resultType = op.getResult().getType();
  auto weightType = cast<RankedTensorType>(op.getWeight().getType());
  auto inputType = cast<RankedTensorType>(op.getInput().getType());
  int64_t channels = weightType.getDimSize(1), outChannels = weightType.getDimSize(0);
  Type f32 = rewriter.getF32Type();
  Value zero = arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(f32));
  auto index = [&](int64_t value) -> OpFoldResult { return rewriter.getIndexAttr(value); };
  auto pad = [&](Value value, ArrayRef<int64_t> low, ArrayRef<int64_t> high) -> Value {
    if (llvm::all_of(low, [](int64_t p) { return p == 0; }) &&
        llvm::all_of(high, [](int64_t p) { return p == 0; }))
      return value;
    SmallVector<OpFoldResult> lows(2, index(0)), highs = lows;
    for (int64_t d = 0; d < rank; ++d) {
      lows.push_back(index(low[d]));
      highs.push_back(index(high[d]));
    }
    return tensor::PadOp::create(rewriter, loc, Type(), value, lows, highs, zero).getResult();
  };

  // Per spatial dimension: the padded input, the output, the taps of the
  // widest phase, the step between taps in grid positions, and the grid.
  SmallVector<int64_t> padded(rank), outSizes(rank), phaseTaps(rank), steps(rank), grid(rank);
  for (int64_t d = 0; d < rank; ++d) {
    int64_t stride = op.getStrides()[d], taps = weightType.getDimSize(2 + d);
    padded[d] = inputType.getDimSize(2 + d) + op.getPads()[d] + op.getPads()[rank + d];
    outSizes[d] = resultType.getDimSize(2 + d);
    phaseTaps[d] = llvm::divideCeil(taps, stride);
    steps[d] = stride == 1 ? op.getDilations()[d] : 1;
    grid[d] = outSizes[d] + (phaseTaps[d] - 1) * steps[d];
  }
  SmallVector<int64_t> pitch(rank, 1);
  for (int64_t d = rank - 1; d > 0; --d)
    pitch[d - 1] = pitch[d] * grid[d];
  // The last output row's taps read up to `reach` past the grid's start.
  int64_t positions = outSizes[0] * pitch[0], reach = positions;
  for (int64_t d = 0; d < rank; ++d)
    reach += (phaseTaps[d] - 1) * steps[d] * pitch[d];
  int64_t extraRows = std::max<int64_t>(0, llvm::divideCeil(reach - grid[0] * pitch[0], pitch[0]));

  SmallVector<int64_t> low(op.getPads().begin(), op.getPads().begin() + rank);
  SmallVector<int64_t> high(op.getPads().begin() + rank, op.getPads().end());
  bool strided = llvm::any_of(op.getStrides(), [](int64_t s) { return s != 1; });
  if (!strided)
    high[0] += extraRows; // The input is its only phase's grid.
  Value input = pad(op.getInput(), low, high);
  OpFoldResult batch = tensor::getMixedSize(rewriter, loc, input, 0);

  // The accumulator: the bias on every position, or zeros.
  int64_t loops = 4 + rank;
  auto dim = [&](int64_t d) { return getAffineDimExpr(d, context); };
  SmallVector<OpFoldResult> initSizes = {batch, index(outChannels), index(positions)};
  Value product = tensor::EmptyOp::create(rewriter, loc, initSizes, f32);
  if (Value bias = op.getBias())
    product = linalg::GenericOp::create(
                  rewriter, loc, product.getType(), bias, product,
                  ArrayRef<AffineMap>{AffineMap::get(3, 0, dim(1)),
                                      AffineMap::getMultiDimIdentityMap(3, context)},
                  SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel),
                  [](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                    linalg::YieldOp::create(nested, nestedLoc,
                                            convertFloat(nested, nestedLoc, args[0],
                                                         nested.getF32Type()));
                  })
                  .getResult(0);
  else
    product = linalg::FillOp::create(rewriter, loc, zero, product).getResult(0);

  // Each phase a: its grid, its taps of the kernel, one window GEMM.
  SmallVector<int64_t> phase(rank, 0);
  while (true) {
    Value window = input, weight = op.getWeight();
    SmallVector<int64_t> taps(rank);
    for (int64_t d = 0; d < rank; ++d)
      taps[d] = llvm::divideCeil(weightType.getDimSize(2 + d) - phase[d], op.getStrides()[d]);
    if (strided) {
      SmallVector<OpFoldResult> offsets(2, index(0)), sizes = {batch, index(channels)},
                                                      strides(2, index(1));
      SmallVector<int64_t> none(rank, 0), fill(rank, 0);
      for (int64_t d = 0; d < rank; ++d) {
        int64_t stride = op.getStrides()[d];
        int64_t available = llvm::divideCeil(padded[d] - phase[d], stride);
        int64_t size = std::min(grid[d], available);
        offsets.push_back(index(phase[d]));
        sizes.push_back(index(size));
        strides.push_back(index(stride));
        fill[d] = grid[d] - size + (d == 0 ? extraRows : 0);
      }
      window = pad(tensor::ExtractSliceOp::create(rewriter, loc, window, offsets, sizes, strides),
                   none, fill);
      SmallVector<OpFoldResult> kernelOffsets(2, index(0)), kernelSizes = {index(outChannels),
                                                                           index(channels)},
                                                            kernelStrides(2, index(1));
      for (int64_t d = 0; d < rank; ++d) {
        kernelOffsets.push_back(index(phase[d]));
        kernelSizes.push_back(index(taps[d]));
        kernelStrides.push_back(index(op.getStrides()[d]));
      }
      weight = tensor::ExtractSliceOp::create(rewriter, loc, weight, kernelOffsets, kernelSizes,
                                              kernelStrides);
    }
    SmallVector<ReassociationIndices> flatten = {
        {0}, {1}, llvm::to_vector(llvm::seq<int64_t>(2, 2 + rank))};
    Value flat = tensor::CollapseShapeOp::create(rewriter, loc, window, flatten);
    // Loops n, o, p (parallel), c, k[rank] (reduction).
    AffineExpr position = dim(2);
    SmallVector<AffineExpr> w = {dim(1), dim(3)};
    for (int64_t d = 0; d < rank; ++d) {
      position = position + dim(4 + d) * (steps[d] * pitch[d]);
      w.push_back(dim(4 + d));
    }
    SmallVector<utils::IteratorType> iterators(3, utils::IteratorType::parallel);
    iterators.append(1 + rank, utils::IteratorType::reduction);
    product =
        linalg::GenericOp::create(
            rewriter, loc, product.getType(), ValueRange{flat, weight}, product,
            ArrayRef<AffineMap>{AffineMap::get(loops, 0, {dim(0), dim(3), position}, context),
                                AffineMap::get(loops, 0, w, context),
                                AffineMap::get(loops, 0, {dim(0), dim(1), dim(2)}, context)},
            iterators,
            [](OpBuilder &nested, Location nestedLoc, ValueRange args) {
              Value term = arith::MulFOp::create(nested, nestedLoc, args[0], args[1]);
              linalg::YieldOp::create(
                  nested, nestedLoc,
                  arith::AddFOp::create(nested, nestedLoc, args[2], term).getResult());
            })
            .getResult(0);
    // The next phase, the last dimension fastest; phases beyond a kernel
    // dimension's size have no taps.
    int64_t d = rank - 1;
    for (; d >= 0; --d) {
      if (++phase[d] < std::min(op.getStrides()[d], weightType.getDimSize(2 + d)))
        break;
      phase[d] = 0;
    }
    if (d < 0)
      break;
  }

  // [n, o, p] -> [n, o, rows, grid...] -> the output's columns of each row.
  SmallVector<int64_t> gridShape = {resultType.getDimSize(0), outChannels, outSizes[0]};
  SmallVector<OpFoldResult> gridSizes = {batch, index(outChannels), index(outSizes[0])};
  for (int64_t d = 1; d < rank; ++d) {
    gridShape.push_back(grid[d]);
    gridSizes.push_back(index(grid[d]));
  }
  SmallVector<ReassociationIndices> unflatten = {
      {0}, {1}, llvm::to_vector(llvm::seq<int64_t>(2, 2 + rank))};
  Value image = tensor::ExpandShapeOp::create(
      rewriter, loc, RankedTensorType::get(gridShape, f32), product, unflatten, gridSizes);
  if (llvm::equal(ArrayRef<int64_t>(grid).drop_front(), ArrayRef<int64_t>(outSizes).drop_front()))
    return image;
  SmallVector<OpFoldResult> offsets(2 + rank, index(0)), strides(2 + rank, index(1)),
      sizes(gridSizes.begin(), gridSizes.begin() + 3);
  for (int64_t d = 1; d < rank; ++d)
    sizes.push_back(index(outSizes[d]));
  return tensor::ExtractSliceOp::create(rewriter, loc, image, offsets, sizes, strides);
}

/// A grouped N-d convolution as one linalg.generic over
///   out[n, g, o, y...] += in[n, g, c, y·stride + k·dilation...] · w[g, o, c, k...]
/// on the zero-padded input, channels split into [groups, channels / groups];
/// f32 convolutions of one group are GEMMs (convolveAsGemm).
struct LowerConv : OpRewritePattern<ConvOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ConvOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    int64_t rank = op.getSpatialRank(), groups = op.getGroups();
    RankedTensorType resultType = op.getResult().getType();
    Type elementType = resultType.getElementType(), accumulator = computeTypeOf(elementType);
    Value zero = arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(elementType));

    if (readsThroughWindow(op)) {
      rewriter.replaceOp(op, convolveAsWindowGemm(rewriter, op));
      return success();
    }
    Value input = op.getInput();
    if (llvm::any_of(op.getPads(), [](int64_t pad) { return pad != 0; })) {
      SmallVector<OpFoldResult> low(2, rewriter.getIndexAttr(0)), high = low;
      for (int64_t d = 0; d < rank; ++d) {
        low.push_back(rewriter.getIndexAttr(op.getPads()[d]));
        high.push_back(rewriter.getIndexAttr(op.getPads()[rank + d]));
      }
      input = tensor::PadOp::create(rewriter, loc, Type(), input, low, high, zero);
    }
    if (groups == 1 && elementType.isF32()) {
      rewriter.replaceOp(op, convolveAsGemm(rewriter, op, input));
      return success();
    }
    input = splitDim(rewriter, loc, input, 1, groups);
    Value weight = splitDim(rewriter, loc, op.getWeight(), 0, groups);

    // Loops: n, g, o, y[rank] (parallel), then c, k[rank] (reduction).
    int64_t loops = 4 + 2 * rank;
    auto dim = [&](int64_t d) { return getAffineDimExpr(d, context); };
    SmallVector<AffineExpr> in = {dim(0), dim(1), dim(3 + rank)};
    SmallVector<AffineExpr> w = {dim(1), dim(2), dim(3 + rank)};
    SmallVector<AffineExpr> out = {dim(0), dim(1), dim(2)};
    for (int64_t d = 0; d < rank; ++d) {
      AffineExpr y = dim(3 + d), k = dim(4 + rank + d);
      in.push_back(y * op.getStrides()[d] + k * op.getDilations()[d]);
      w.push_back(k);
      out.push_back(y);
    }
    SmallVector<OpFoldResult> outSizes = {tensor::getMixedSize(rewriter, loc, op.getInput(), 0),
                                          rewriter.getIndexAttr(groups),
                                          rewriter.getIndexAttr(resultType.getDimSize(1) / groups)};
    for (int64_t d = 0; d < rank; ++d)
      outSizes.push_back(rewriter.getIndexAttr(resultType.getDimSize(2 + d)));
    Value init =
        linalg::FillOp::create(
            rewriter, loc,
            arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(accumulator)).getResult(),
            Value(tensor::EmptyOp::create(rewriter, loc, outSizes, accumulator)))
            .getResult(0);
    SmallVector<utils::IteratorType> iterators(3 + rank, utils::IteratorType::parallel);
    iterators.append(1 + rank, utils::IteratorType::reduction);
    Value grouped =
        linalg::GenericOp::create(
            rewriter, loc, init.getType(), ValueRange{input, weight}, init,
            ArrayRef<AffineMap>{AffineMap::get(loops, 0, in, context),
                                AffineMap::get(loops, 0, w, context),
                                AffineMap::get(loops, 0, out, context)},
            iterators,
            [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
              Value in = convertFloat(nested, nestedLoc, args[0], accumulator);
              Value weight = convertFloat(nested, nestedLoc, args[1], accumulator);
              Value product = arith::MulFOp::create(nested, nestedLoc, in, weight);
              linalg::YieldOp::create(
                  nested, nestedLoc,
                  arith::AddFOp::create(nested, nestedLoc, args[2], product).getResult());
            })
            .getResult(0);
    SmallVector<ReassociationIndices> merge = {{0}, {1, 2}};
    for (int64_t d = 0; d < rank; ++d)
      merge.push_back({3 + d});
    Value result = tensor::CollapseShapeOp::create(rewriter, loc, grouped, merge);
    if (Value bias = op.getBias())
      result = addBias(rewriter, loc, result, bias);
    rewriter.replaceOp(op, castElements(rewriter, loc, result, elementType));
    return success();
  }
};

/// result[i..., j] = weight[index(input[i...]), j], a negative index counting
/// from the end of the table.
struct LowerEmbedding : OpRewritePattern<EmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EmbeddingOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    RankedTensorType resultType = op.getResult().getType();
    int64_t rank = resultType.getRank();
    SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, op.getInput());
    sizes.push_back(tensor::getMixedSize(rewriter, loc, op.getWeight(), 1));
    Value init = tensor::EmptyOp::create(rewriter, loc, sizes, resultType.getElementType());
    Value rows = tensor::DimOp::create(rewriter, loc, op.getWeight(), 0);
    AffineMap indices = AffineMap::getMultiDimIdentityMap(rank, context).getMajorSubMap(rank - 1);
    Value table = op.getWeight();
    rewriter.replaceOpWithNewOp<linalg::GenericOp>(
        op, init.getType(), op.getInput(), init,
        ArrayRef<AffineMap>{indices, AffineMap::getMultiDimIdentityMap(rank, context)},
        SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
        [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
          Value index = arith::IndexCastOp::create(nested, nestedLoc, nested.getIndexType(), args[0]);
          Value zeroIndex = arith::ConstantIndexOp::create(nested, nestedLoc, 0);
          Value negative = arith::CmpIOp::create(nested, nestedLoc, arith::CmpIPredicate::slt,
                                                 index, zeroIndex);
          index = arith::SelectOp::create(nested, nestedLoc, negative,
                                          arith::AddIOp::create(nested, nestedLoc, index, rows),
                                          index);
          // Clamped into [0, rows): no id, however wrong, reads outside the
          // table (the runtime refuses out-of-range ids in inputs).
          Value last = arith::MaxSIOp::create(
              nested, nestedLoc,
              arith::SubIOp::create(nested, nestedLoc, rows,
                                    arith::ConstantIndexOp::create(nested, nestedLoc, 1)),
              zeroIndex);
          index = arith::MinSIOp::create(
              nested, nestedLoc, arith::MaxSIOp::create(nested, nestedLoc, index, zeroIndex), last);
          Value column = linalg::IndexOp::create(nested, nestedLoc, rank - 1);
          Value element =
              tensor::ExtractOp::create(nested, nestedLoc, table, ValueRange{index, column});
          linalg::YieldOp::create(nested, nestedLoc, element);
        });
    return success();
  }
};

/// `body`(input[i], per[c]...) for every element of `input`, each `per`
/// vector running along `channelDim`; computed in the input's compute type
/// and rounded once to its type.
Value mapChannels(OpBuilder &builder, Location loc, Value input, int64_t channelDim,
                  ValueRange perChannel,
                  function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  MLIRContext *context = builder.getContext();
  auto type = cast<RankedTensorType>(input.getType());
  int64_t rank = type.getRank();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, context);
  SmallVector<AffineMap> maps(1, identity);
  maps.append(perChannel.size(), AffineMap::get(rank, 0, getAffineDimExpr(channelDim, context)));
  maps.push_back(identity);
  SmallVector<Value> inputs = {input};
  llvm::append_range(inputs, perChannel);
  Value init = tensor::EmptyOp::create(builder, loc, tensor::getMixedSizes(builder, loc, input),
                                       type.getElementType());
  return linalg::GenericOp::create(
             builder, loc, type, inputs, init, maps,
             SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               Type computeType = computeTypeOf(type.getElementType());
               SmallVector<Value> values;
               for (Value value : args.drop_back())
                 values.push_back(convertFloat(nested, nestedLoc, value, computeType));
               Value result = body(nested, nestedLoc, values);
               linalg::YieldOp::create(nested, nestedLoc,
                                       convertFloat(nested, nestedLoc, result, type.getElementType()));
             })
      .getResult(0);
}

/// input[..., c, ...] · scale[c] along the channel dimension, the scale
/// flattened from PEFT's [n, 1] / [1, n] / [1, C, 1...].
struct LowerIa3 : OpRewritePattern<Ia3Op> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(Ia3Op op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value scale = op.getScale();
    int64_t scaleRank = op.getScale().getType().getRank();
    if (scaleRank != 1) {
      ReassociationIndices all = llvm::to_vector(llvm::seq<int64_t>(0, scaleRank));
      scale = tensor::CollapseShapeOp::create(rewriter, loc, scale,
                                              ArrayRef<ReassociationIndices>{all});
    }
    rewriter.replaceOp(op, mapChannels(rewriter, loc, op.getInput(), op.getChannelDim(), scale,
                                       [](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                                         return arith::MulFOp::create(nested, nestedLoc, args[0],
                                                                      args[1]).getResult();
                                       }));
    return success();
  }
};

/// input[..., c, ...] · scale[c] + shift[c] along `channel_dim`.
struct LowerSsf : OpRewritePattern<SsfOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SsfOp op, PatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op, mapChannels(rewriter, op.getLoc(), op.getInput(), op.getChannelDim(),
                        {op.getScale(), op.getShift()},
                        [](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                          Value scaled = arith::MulFOp::create(nested, nestedLoc, args[0], args[1]);
                          return arith::AddFOp::create(nested, nestedLoc, scaled, args[2]).getResult();
                        }));
    return success();
  }
};

/// `activation`(x) for one element: relu, gelu (erf), silu or tanh.
Value activate(OpBuilder &builder, Location loc, StringRef activation, Value x) {
  Type type = x.getType();
  auto constant = [&](double value) {
    return arith::ConstantOp::create(builder, loc, builder.getFloatAttr(type, value)).getResult();
  };
  if (activation == "relu")
    return arith::MaximumFOp::create(builder, loc, x, constant(0));
  if (activation == "tanh")
    return math::TanhOp::create(builder, loc, x);
  if (activation == "silu") { // x / (1 + e^-x)
    Value exp = math::ExpOp::create(builder, loc, arith::NegFOp::create(builder, loc, x));
    return arith::DivFOp::create(builder, loc, x, arith::AddFOp::create(builder, loc, constant(1), exp));
  }
  // gelu: x·(1 + erf(x/√2))/2
  Value erf = math::ErfOp::create(builder, loc,
                                  arith::MulFOp::create(builder, loc, x, constant(M_SQRT1_2)));
  Value half = arith::MulFOp::create(builder, loc, x, constant(0.5));
  return arith::MulFOp::create(builder, loc, half, arith::AddFOp::create(builder, loc, constant(1), erf));
}

/// A grouped [d, h / g] up-projection as the dense, block-diagonal [d, h]
/// matrix: output o of group o / (d/g) reads hidden units of the same group.
Value blockDiagonal(OpBuilder &builder, Location loc, Value up, int64_t groups, int64_t hidden) {
  auto type = cast<RankedTensorType>(up.getType());
  int64_t outputs = type.getDimSize(0), perGroup = type.getDimSize(1);
  auto denseType = RankedTensorType::get({outputs, hidden}, type.getElementType());
  Value init = tensor::EmptyOp::create(builder, loc, denseType.getShape(), type.getElementType());
  AffineMap identity = builder.getMultiDimIdentityMap(2);
  return linalg::GenericOp::create(
             builder, loc, denseType, ValueRange{}, init, ArrayRef<AffineMap>{identity},
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [&](OpBuilder &nested, Location nestedLoc, ValueRange) {
               auto index = [&](int64_t value) {
                 return arith::ConstantIndexOp::create(nested, nestedLoc, value).getResult();
               };
               Value o = linalg::IndexOp::create(nested, nestedLoc, 0);
               Value j = linalg::IndexOp::create(nested, nestedLoc, 1);
               Value sameGroup = arith::CmpIOp::create(
                   nested, nestedLoc, arith::CmpIPredicate::eq,
                   arith::DivUIOp::create(nested, nestedLoc, o, index(outputs / groups)),
                   arith::DivUIOp::create(nested, nestedLoc, j, index(perGroup)));
               Value column = arith::RemUIOp::create(nested, nestedLoc, j, index(perGroup));
               Value weight = tensor::ExtractOp::create(nested, nestedLoc, up, ValueRange{o, column});
               Value zero = arith::ConstantOp::create(nested, nestedLoc,
                                                      nested.getZeroAttr(type.getElementType()));
               linalg::YieldOp::create(
                   nested, nestedLoc,
                   arith::SelectOp::create(nested, nestedLoc, sameGroup, weight, zero).getResult());
             })
      .getResult(0);
}

/// input + s·(up(act(down·input + b1)) + b2) over the rows of the input: two
/// GEMMs, the activation, then the residual sum; in the compute type, rounded
/// once to the input's type.
struct LowerBottleneck : OpRewritePattern<BottleneckOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BottleneckOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type elementType = computeTypeOf(op.getType().getElementType());
    auto wide = [&](Value value) { return castElements(rewriter, loc, value, elementType); };
    Value rows = wide(flattenBatch(rewriter, loc, op.getInput()));
    int64_t hidden = op.getHiddenSize(), features = op.getUp().getType().getDimSize(0);
    Value downWeight = wide(asMatrix(rewriter, loc, op.getDown()));
    Value down = matmul(rewriter, loc, rows, downWeight, /*rhsTransposed=*/true,
                        zerosFor(rewriter, loc, rows, hidden, elementType));
    if (Value bias = wide(op.getDownBias()))
      down = addBias(rewriter, loc, down, bias);
    if (!op.isLinear()) {
      AffineMap identity = rewriter.getMultiDimIdentityMap(2);
      down = linalg::GenericOp::create(
                 rewriter, loc, down.getType(), down,
                 tensor::EmptyOp::create(rewriter, loc, tensor::getMixedSizes(rewriter, loc, down),
                                         elementType).getResult(),
                 ArrayRef<AffineMap>{identity, identity},
                 SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
                 [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                   linalg::YieldOp::create(nested, nestedLoc,
                                           activate(nested, nestedLoc, op.getActivation(), args[0]));
                 })
                 .getResult(0);
    }
    Value upWeight = wide(asMatrix(rewriter, loc, op.getUp()));
    if (op.getGroups() != 1)
      upWeight = blockDiagonal(rewriter, loc, upWeight, op.getGroups(), hidden);
    Value up = matmul(rewriter, loc, down, upWeight, /*rhsTransposed=*/true,
                      zerosFor(rewriter, loc, rows, features, elementType));
    if (Value bias = wide(op.getUpBias()))
      up = addBias(rewriter, loc, up, bias);
    Value sum = addScaled(rewriter, loc, rows, up, op.getScaleAttr());
    RankedTensorType type = op.getType();
    Value adapted = restoreBatch(rewriter, loc, sum, op.getInput(), type.clone(elementType));
    rewriter.replaceOp(op, castElements(rewriter, loc, adapted, type.getElementType()));
    return success();
  }
};

/// The row a head shift reads for element `indices` of its result: the row
/// m = b·T + t of a clip's frame t reads frame t − 1 (heads [0, fold)) or
/// t + 1 (heads [fold, 2·fold)) when that frame exists, else its own. A
/// trailing clip cut short (`rows` not a multiple of T) has fewer frames: no
/// row past the last is read.
Value shiftedRow(OpBuilder &b, Location l, HeadShiftOp op, ValueRange indices, Value rows) {
  int64_t frames = op.getFrames(), fold = op.getFold();
  int64_t headSize = op.getType().getShape().back() / op.getHeads();
  auto index = [&](int64_t value) { return arith::ConstantIndexOp::create(b, l, value).getResult(); };
  auto compare = [&](arith::CmpIPredicate predicate, Value lhs, Value rhs) {
    return arith::CmpIOp::create(b, l, predicate, lhs, rhs).getResult();
  };
  Value row = indices.front();
  Value head = arith::DivUIOp::create(b, l, indices.back(), index(headSize));
  Value frame = arith::RemUIOp::create(b, l, row, index(frames));
  Value hasPrevious = compare(arith::CmpIPredicate::ugt, frame, index(0));
  Value next = arith::AddIOp::create(b, l, row, index(1));
  Value notLastFrame = compare(arith::CmpIPredicate::ult, frame, index(frames - 1));
  Value nextExists = compare(arith::CmpIPredicate::ult, next, rows);
  Value hasNext = arith::AndIOp::create(b, l, notLastFrame, nextExists);
  Value backwardHead = compare(arith::CmpIPredicate::ult, head, index(fold));
  Value pastBackward = compare(arith::CmpIPredicate::uge, head, index(fold));
  Value beforeRest = compare(arith::CmpIPredicate::ult, head, index(2 * fold));
  Value forwardHead = arith::AndIOp::create(b, l, pastBackward, beforeRest);
  Value fromPrevious = arith::AndIOp::create(b, l, backwardHead, hasPrevious);
  Value fromNext = arith::AndIOp::create(b, l, forwardHead, hasNext);
  Value previous = arith::SubIOp::create(b, l, row, index(1));
  Value notPrevious = arith::SelectOp::create(b, l, fromNext, next, row);
  return arith::SelectOp::create(b, l, fromPrevious, previous, notPrevious);
}

/// The head shift's result read from `source` shaped like it: result[m, ...,
/// c] = source[m', ..., c] (+ bias[c]), m' the shifted row, in the result's
/// type. A gather: no arithmetic on the values but the bias.
Value gatherShiftedRows(OpBuilder &builder, Location loc, HeadShiftOp op, Value source, Value bias) {
  RankedTensorType type = op.getType();
  int64_t rank = type.getRank();
  SmallVector<Value> inputs;
  SmallVector<AffineMap> maps;
  if (bias) {
    inputs.push_back(bias);
    maps.push_back(AffineMap::get(rank, 0, builder.getAffineDimExpr(rank - 1)));
  }
  maps.push_back(builder.getMultiDimIdentityMap(rank));
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(builder, loc, source);
  Value rows = getValueOrCreateConstantIndexOp(builder, loc, sizes.front());
  Value init = tensor::EmptyOp::create(builder, loc, sizes, type.getElementType());
  return linalg::GenericOp::create(
             builder, loc, type, inputs, init, maps,
             SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
             [&](OpBuilder &b, Location l, ValueRange args) {
               SmallVector<Value> indices;
               for (int64_t d = 0; d < rank; ++d)
                 indices.push_back(linalg::IndexOp::create(b, l, d));
               indices[0] = shiftedRow(b, l, op, indices, rows);
               Value element = tensor::ExtractOp::create(b, l, source, indices);
               if (bias)
                 element = arith::AddFOp::create(b, l, element,
                                                 convertFloat(b, l, args[0], element.getType()));
               linalg::YieldOp::create(b, l, convertFloat(b, l, element, type.getElementType()));
             })
      .getResult(0);
}

/// A head shift: one gather from its input. When that input is a linear
/// layer read by the shift alone, the layer's GEMM, then one pass that reads
/// its rows shifted and adds the bias: that pass takes the place of the
/// layer's own bias pass, so the shift is index remapping that copies nothing.
struct LowerHeadShift : OpRewritePattern<HeadShiftOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(HeadShiftOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto layer = op.getInput().getDefiningOp<LinearOp>();
    if (!layer || !feedsHeadShiftAlone(layer)) {
      rewriter.replaceOp(op, gatherShiftedRows(rewriter, loc, op, op.getInput(), Value()));
      return success();
    }
    Value product = linearProduct(rewriter, loc, layer, /*withBias=*/false);
    Value rows = restoreBatch(rewriter, loc, product, layer.getInput(),
                              layer.getType().clone(getElementTypeOrSelf(product)));
    rewriter.replaceOp(op, gatherShiftedRows(rewriter, loc, op, rows, layer.getBias()));
    rewriter.eraseOp(layer);
    return success();
  }
};

/// (x − mean) / sqrt(var + ε) · γ + β over the dimensions from `axis` on, in
/// three passes: the sum, the sum of squared deviations, then the map.
struct LowerLayerNorm : OpRewritePattern<LayerNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormOp op, PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    RankedTensorType type = op.getType();
    Type elementType = type.getElementType();
    int64_t rank = type.getRank(), axis = op.getAxis();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, context);
    AffineMap rows = AffineMap::get(rank, 0, identity.getResults().take_front(axis), context);
    AffineMap normalized = AffineMap::get(rank, 0, identity.getResults().drop_front(axis), context);
    SmallVector<utils::IteratorType> reduceOuter(rank, utils::IteratorType::reduction);
    std::fill_n(reduceOuter.begin(), axis, utils::IteratorType::parallel);
    SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, op.getInput());
    Value zero = arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(elementType));
    Value rowInit = linalg::FillOp::create(
                        rewriter, loc, zero,
                        tensor::EmptyOp::create(rewriter, loc, ArrayRef(sizes).take_front(axis),
                                                elementType).getResult())
                        .getResult(0);
    Value count = arith::ConstantOp::create(
        rewriter, loc, rewriter.getFloatAttr(elementType, op.getNormalizedSize()));
    auto mean = [&](OpBuilder &nested, Location nestedLoc, Value sum) {
      return arith::DivFOp::create(nested, nestedLoc, sum, count).getResult();
    };
    Value sum = linalg::GenericOp::create(
                    rewriter, loc, rowInit.getType(), op.getInput(), rowInit,
                    ArrayRef<AffineMap>{identity, rows}, reduceOuter,
                    [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                      linalg::YieldOp::create(
                          nested, nestedLoc,
                          arith::AddFOp::create(nested, nestedLoc, args[1], args[0]).getResult());
                    })
                    .getResult(0);
    Value squares = linalg::GenericOp::create(
                        rewriter, loc, rowInit.getType(), ValueRange{op.getInput(), sum}, rowInit,
                        ArrayRef<AffineMap>{identity, rows, rows}, reduceOuter,
                        [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                          Value centered = arith::SubFOp::create(nested, nestedLoc, args[0],
                                                                 mean(nested, nestedLoc, args[1]));
                          Value square = arith::MulFOp::create(nested, nestedLoc, centered, centered);
                          linalg::YieldOp::create(
                              nested, nestedLoc,
                              arith::AddFOp::create(nested, nestedLoc, args[2], square).getResult());
                        })
                        .getResult(0);
    SmallVector<Value> inputs = {op.getInput(), sum, squares, op.getWeight()};
    SmallVector<AffineMap> maps = {identity, rows, rows, normalized};
    if (Value bias = op.getBias()) {
      inputs.push_back(bias);
      maps.push_back(normalized);
    }
    maps.push_back(identity);
    Value epsilon = arith::ConstantOp::create(rewriter, loc,
                                              rewriter.getFloatAttr(elementType, op.getEpsilon()));
    Value init = tensor::EmptyOp::create(rewriter, loc, sizes, elementType);
    rewriter.replaceOpWithNewOp<linalg::GenericOp>(
        op, type, inputs, init, maps,
        SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
        [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
          Value centered = arith::SubFOp::create(nested, nestedLoc, args[0],
                                                 mean(nested, nestedLoc, args[1]));
          Value variance = mean(nested, nestedLoc, args[2]);
          Value stddev = math::SqrtOp::create(
              nested, nestedLoc, arith::AddFOp::create(nested, nestedLoc, variance, epsilon));
          Value normalizedValue = arith::DivFOp::create(nested, nestedLoc, centered, stddev);
          Value result = arith::MulFOp::create(nested, nestedLoc, normalizedValue, args[3]);
          if (op.getBias())
            result = arith::AddFOp::create(nested, nestedLoc, result, args[4]);
          linalg::YieldOp::create(nested, nestedLoc, result);
        });
    return success();
  }
};

struct LowerValueWeight : OpRewritePattern<WeightOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(WeightOp op, PatternRewriter &rewriter) const override {
    if (!op.getValue())
      return rewriter.notifyMatchFailure(op, "weight lives in a file");
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, cast<TypedAttr>(*op.getValue()));
    return success();
  }
};

struct ConvertPeftToLinalgPass
    : peft::impl::ConvertPeftToLinalgBase<ConvertPeftToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<LowerLinear, LowerLora, LowerDora, LowerFactorProduct, LowerCpProduct,
                 LowerLohaDelta, LowerLokrDelta, LowerAddDelta, LowerIa3, LowerConv, LowerEmbedding, LowerLayerNorm, LowerSsf,
                 LowerBottleneck, LowerHeadShift, LowerValueWeight>(&getContext());
    populateMultiAdaptersToLinalgPatterns(patterns);
    GreedyRewriteConfig config;
    config.enableFolding(false);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      return signalPassFailure();
    WalkResult leftover = getOperation().walk([](Operation *op) {
      if (!isa<PeftDialect>(op->getDialect()))
        return WalkResult::advance();
      if (auto weight = dyn_cast<WeightOp>(op))
        op->emitError("weight '") << weight.getName()
                                  << "' still names a file; run peft-externalize-weights first";
      else
        op->emitError("cannot lower this op to linalg");
      return WalkResult::interrupt();
    });
    if (leftover.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
