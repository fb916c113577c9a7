//===- MergeAdapters.cpp - Fold adapters into base weights ------------------===//
#include "passes/Passes.h"

#include "support/LowRank.h"
#include "support/ProgressReport.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Threading.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <cstring>
#include <mutex>

namespace peft {
#define GEN_PASS_DEF_MERGEADAPTERS
#include "passes/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// A layer and its adapters: LoRAs, DoRAs and deltas stacked on its output,
/// innermost first, then the value maps (IA3, SSF, linear adapters) on its
/// output, in order, and on its input, the closest first.
struct MergeJob {
  AdaptableLayer layer;
  SmallVector<Operation *> lowRank, outputMaps, inputMaps;
  /// Filled by the parallel phase.
  AsmResourceBlob merged;
  std::optional<AsmResourceBlob> mergedBias;
  std::string error;

  /// Every adapter op the job folds, each after the ops that use it... in
  /// reverse: erasing them back to front never leaves a use behind.
  SmallVector<Operation *> adapterOps() {
    SmallVector<Operation *> ops(lowRank);
    ops.append(inputMaps.rbegin(), inputMaps.rend());
    ops.append(outputMaps.begin(), outputMaps.end());
    return ops;
  }
};

/// Whether `op` maps a layer's output (`onInput` false) or input in a way the
/// merge folds into the layer: IA3, SSF (outputs), or a bottleneck without
/// activation (a linear adapter) on the side it was attached to.
bool isFoldableMap(Operation *op, bool onInput) {
  if (auto bottleneck = dyn_cast<BottleneckOp>(op))
    return bottleneck.isLinear() && bottleneck.getBeforeLayer() == onInput;
  return isa<Ia3Op>(op) || (isa<SsfOp>(op) && !onInput);
}

/// What a value map does to the n channels it maps: x -> M·x + shift, M
/// diagonal (IA3, SSF) or dense (linear adapters, [n, n] row-major); an
/// empty shift is zero.
struct ChannelMap {
  std::vector<float> diagonal, dense, shift;
};

/// Multiplies the rows of an [out, in] (or, `inOut`, [in, out]) weight that
/// belong to output o by `scales[o]` (`perOutput`), or those of input i by
/// `scales[i]`.
void scaleWeight(float *weight, bool inOut, bool perOutput, ArrayRef<float> scales,
                 int64_t in, int64_t out) {
  int64_t rows = inOut ? in : out, columns = inOut ? out : in;
  bool scaleRows = perOutput != inOut; // [out, in] rows are outputs.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c)
      weight[r * columns + c] *= scales[scaleRows ? r : c];
}

/// `lhs · rhs` for row-major [m, k] and [k, n] matrices.
std::vector<float> multiply(ArrayRef<float> lhs, ArrayRef<float> rhs, int64_t m, int64_t k,
                            int64_t n) {
  std::vector<float> result(m * n, 0.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) {
      float factor = lhs[i * k + p];
      for (int64_t j = 0; j < n; ++j)
        result[i * n + j] += factor * rhs[p * n + j];
    }
  return result;
}

/// scale·kron(w1, w2) for w1 [a, b] and w2 read as [c, e]: row-major
/// [a·c, b·e].
std::vector<float> kron(ArrayRef<float> w1, ArrayRef<float> w2, int64_t a, int64_t b, int64_t c,
                        int64_t e, float scale) {
  std::vector<float> result(a * b * c * e);
  for (int64_t i = 0; i < a; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t j = 0; j < b; ++j)
        for (int64_t l = 0; l < e; ++l)
          result[(i * c + k) * (b * e) + j * e + l] = scale * w1[i * b + j] * w2[k * e + l];
  return result;
}

/// Σᵢ Σⱼ core[i, j, k]·a[i, p]·b[j, q] as the row-major [p, q·K] matrix, for
/// a [r1, r2, K] core, a [r1, p] and b [r2, q]: b is contracted first,
/// tmp[i, q, k] = Σⱼ b[j, q]·core[i, j, k], then result = aᵀ·tmp, so each
/// inner loop runs over contiguous rows.
std::vector<float> cpProduct(ArrayRef<float> core, ArrayRef<float> a, ArrayRef<float> b,
                             int64_t r1, int64_t r2, int64_t p, int64_t q, int64_t kernel) {
  std::vector<float> tmp(r1 * q * kernel, 0.0f);
  for (int64_t i = 0; i < r1; ++i)
    for (int64_t j = 0; j < r2; ++j) {
      const float *row = &core[(i * r2 + j) * kernel];
      for (int64_t c = 0; c < q; ++c) {
        float factor = b[j * q + c];
        float *target = &tmp[(i * q + c) * kernel];
        for (int64_t k = 0; k < kernel; ++k)
          target[k] += factor * row[k];
      }
    }
  std::vector<float> result(p * q * kernel, 0.0f);
  for (int64_t o = 0; o < p; ++o)
    for (int64_t i = 0; i < r1; ++i) {
      float factor = a[i * p + o];
      const float *row = &tmp[i * q * kernel];
      float *target = &result[o * q * kernel];
      for (int64_t n = 0; n < q * kernel; ++n)
        target[n] += factor * row[n];
    }
  return result;
}

/// The values of a weight-space expression: a weight, or a LoHa or LoKr
/// delta computed from weights. `role` names it in errors.
llvm::Expected<std::vector<float>> readOperand(Value value, StringRef role) {
  Operation *op = value.getDefiningOp();
  if (auto weight = dyn_cast_or_null<WeightOp>(op))
    return weight.readFloat32();
  if (auto cp = dyn_cast_or_null<CpProductOp>(op)) {
    auto core = readOperand(cp.getCore(), role);
    if (!core)
      return core.takeError();
    auto a = readOperand(cp.getA(), role);
    if (!a)
      return a.takeError();
    auto b = readOperand(cp.getB(), role);
    if (!b)
      return b.takeError();
    RankedTensorType coreType = cp.getCore().getType();
    return cpProduct(*core, *a, *b, coreType.getDimSize(0), coreType.getDimSize(1),
                     cp.getA().getType().getDimSize(1), cp.getB().getType().getDimSize(1),
                     cp.getKernelSize());
  }
  if (!isa_and_nonnull<FactorProductOp, LohaDeltaOp, LokrDeltaOp>(op))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   role + " is not a constant weight");
  auto lhs = readOperand(op->getOperand(0), role);
  auto rhs = lhs ? readOperand(op->getOperand(1), role)
                 : llvm::Expected<std::vector<float>>(lhs.takeError());
  if (!rhs)
    return rhs.takeError();
  auto lhsType = cast<RankedTensorType>(op->getOperand(0).getType());
  auto rhsType = cast<RankedTensorType>(op->getOperand(1).getType());
  if (isa<FactorProductOp>(op))
    return multiply(*lhs, *rhs, lhsType.getDimSize(0), lhsType.getDimSize(1),
                    rhsType.getDimSize(1));
  if (auto loha = dyn_cast<LohaDeltaOp>(op)) {
    float scale = loha.getScale().convertToFloat();
    for (size_t i = 0; i < lhs->size(); ++i)
      (*lhs)[i] *= scale * (*rhs)[i];
    return lhs;
  }
  int64_t c = rhsType.getDimSize(0);
  return kron(*lhs, *rhs, lhsType.getDimSize(0), lhsType.getDimSize(1), c,
              rhsType.getNumElements() / c, cast<LokrDeltaOp>(op).getScale().convertToFloat());
}

/// Copies an f32 base weight straight into the blob that will hold the merged
/// one: the only copy of the weight the merge makes.
LogicalResult copyBaseWeight(MergeJob &job, WeightOp weight) {
  std::vector<uint8_t> storage;
  auto view = weight.read(storage);
  if (!view) {
    job.error = llvm::toString(view.takeError());
    return failure();
  }
  job.merged = HeapAsmResourceBlob::allocate(view->byteSize, alignof(float));
  std::memcpy(job.merged.getMutableData().data(), view->data, view->byteSize);
  // The merged weight replaces it: its file's pages can go.
  if (StringAttr file = weight.getFileAttr())
    weight->getContext()->getOrLoadDialect<PeftDialect>()->getWeightStore().release(
        file.getValue(), weight.getName());
  return success();
}

/// fp32 values stored as `elementType` (f32, or f16/bf16 rounded to nearest,
/// ties to even).
AsmResourceBlob blobOf(ArrayRef<float> values, Type elementType) {
  if (elementType.isF32()) {
    auto blob = HeapAsmResourceBlob::allocate(values.size() * sizeof(float), alignof(float));
    std::memcpy(blob.getMutableData().data(), values.data(), values.size() * sizeof(float));
    return blob;
  }
  auto blob = HeapAsmResourceBlob::allocate(values.size() * sizeof(uint16_t), alignof(uint16_t));
  auto *out = reinterpret_cast<uint16_t *>(blob.getMutableData().data());
  const llvm::fltSemantics &semantics = cast<FloatType>(elementType).getFloatSemantics();
  for (size_t i = 0; i < values.size(); ++i) {
    APFloat value(values[i]);
    bool lost;
    value.convert(semantics, APFloat::rmNearestTiesToEven, &lost);
    out[i] = static_cast<uint16_t>(value.bitcastToAPInt().getZExtValue());
  }
  return blob;
}

/// `up` [d, h / groups] as the dense block-diagonal [d, h] matrix.
std::vector<float> expandGroups(ArrayRef<float> up, int64_t outputs, int64_t hidden,
                                int64_t groups) {
  int64_t perGroup = hidden / groups, outputsPerGroup = outputs / groups;
  std::vector<float> dense(outputs * hidden, 0.0f);
  for (int64_t o = 0; o < outputs; ++o)
    for (int64_t j = 0; j < perGroup; ++j)
      dense[o * hidden + (o / outputsPerGroup) * perGroup + j] = up[o * perGroup + j];
  return dense;
}

/// A linear adapter as a channel map: M = I + s·up·down, shift
/// s·(up·down_bias + up_bias).
llvm::Expected<ChannelMap> linearAdapterMap(BottleneckOp op) {
  auto down = readOperand(op.getDown(), "the down-projection");
  auto up = down ? readOperand(op.getUp(), "the up-projection")
                 : llvm::Expected<std::vector<float>>(down.takeError());
  if (!up)
    return up.takeError();
  int64_t hidden = op.getHiddenSize(), features = op.getInput().getType().getShape().back();
  float scale = op.getScale().convertToFloat();
  std::vector<float> upDense = expandGroups(*up, features, hidden, op.getGroups());
  ChannelMap map;
  map.dense = multiply(upDense, *down, features, hidden, features);
  for (int64_t i = 0; i < features * features; ++i)
    map.dense[i] = scale * map.dense[i] + (i % (features + 1) == 0 ? 1.0f : 0.0f);
  if (!op.getDownBias() && !op.getUpBias())
    return map;
  map.shift.assign(features, 0.0f);
  if (Value bias = op.getDownBias()) {
    auto values = readOperand(bias, "the down-projection bias");
    if (!values)
      return values.takeError();
    map.shift = multiply(upDense, *values, features, hidden, 1);
  }
  if (Value bias = op.getUpBias()) {
    auto values = readOperand(bias, "the up-projection bias");
    if (!values)
      return values.takeError();
    for (int64_t o = 0; o < features; ++o)
      map.shift[o] += (*values)[o];
  }
  for (float &value : map.shift)
    value *= scale;
  return map;
}

/// What a foldable value map op does to its channels.
llvm::Expected<ChannelMap> channelMapOf(Operation *op) {
  ChannelMap map;
  if (auto bottleneck = dyn_cast<BottleneckOp>(op))
    return linearAdapterMap(bottleneck);
  auto scale = readOperand(op->getOperand(1), isa<Ia3Op>(op) ? "ia3_l" : "ssf_scale");
  if (!scale)
    return scale.takeError();
  map.diagonal = std::move(*scale);
  if (auto ssf = dyn_cast<SsfOp>(op)) {
    auto shift = readOperand(ssf.getShift(), "ssf_shift");
    if (!shift)
      return shift.takeError();
    map.shift = std::move(*shift);
  }
  return map;
}

/// The weight being merged, read as [out, in] whatever its stored layout, and
/// the layer's bias (zeros when it has none).
struct MergedLayer {
  float *weight;
  bool inOut;
  int64_t in, out;
  std::vector<float> bias;
  bool biasChanged = false;

  float &at(int64_t o, int64_t i) { return weight[inOut ? i * out + o : o * in + i]; }
};

/// Folds a map of the layer's output: W' = M·W, b' = M·b + shift.
void foldOutputMap(MergedLayer &layer, const ChannelMap &map, bool hadBias) {
  if (!map.dense.empty()) {
    std::vector<float> column(layer.out);
    for (int64_t i = 0; i < layer.in; ++i) {
      for (int64_t o = 0; o < layer.out; ++o)
        column[o] = layer.at(o, i);
      for (int64_t o = 0; o < layer.out; ++o) {
        float sum = 0;
        for (int64_t k = 0; k < layer.out; ++k)
          sum += map.dense[o * layer.out + k] * column[k];
        layer.at(o, i) = sum;
      }
    }
    layer.bias = multiply(map.dense, layer.bias, layer.out, layer.out, 1);
  } else {
    scaleWeight(layer.weight, layer.inOut, /*perOutput=*/true, map.diagonal, layer.in, layer.out);
    for (int64_t o = 0; o < layer.out; ++o)
      layer.bias[o] *= map.diagonal[o];
  }
  for (size_t o = 0; o < map.shift.size(); ++o)
    layer.bias[o] += map.shift[o];
  layer.biasChanged |= hadBias || !map.shift.empty();
}

/// Folds a map of the layer's input: W' = W·M, b' = W·shift + b. A
/// convolution's per-channel scale covers each channel's kernel window.
LogicalResult foldInputMap(MergedLayer &layer, ChannelMap map, AdaptableLayer op,
                           std::string &error) {
  if (!map.shift.empty()) {
    for (int64_t o = 0; o < layer.out; ++o)
      for (int64_t i = 0; i < layer.in; ++i)
        layer.bias[o] += layer.at(o, i) * map.shift[i];
    layer.biasChanged = true;
  }
  if (!map.dense.empty()) {
    std::vector<float> row(layer.in);
    for (int64_t o = 0; o < layer.out; ++o) {
      for (int64_t i = 0; i < layer.in; ++i)
        row[i] = layer.at(o, i);
      for (int64_t i = 0; i < layer.in; ++i)
        layer.at(o, i) = 0;
      for (int64_t k = 0; k < layer.in; ++k)
        for (int64_t i = 0; i < layer.in; ++i)
          layer.at(o, i) += row[k] * map.dense[k * layer.in + i];
    }
    return success();
  }
  if (map.diagonal.size() != static_cast<size_t>(layer.in)) {
    auto conv = dyn_cast<ConvOp>(op.getOperation());
    if (!conv || conv.getGroups() != 1) {
      error = "IA3 on the input of a grouped convolution does not merge";
      return failure();
    }
    std::vector<float> perColumn;
    int64_t window = layer.in / map.diagonal.size();
    for (float value : map.diagonal)
      perColumn.insert(perColumn.end(), window, value);
    map.diagonal = std::move(perColumn);
  }
  scaleWeight(layer.weight, layer.inOut, /*perOutput=*/false, map.diagonal, layer.in, layer.out);
  return success();
}

/// Adds the LoRA biases, b += Σ scale·lora_bias.
LogicalResult addLoraBiases(MergeJob &job, MergedLayer &layer) {
  for (Operation *op : job.lowRank) {
    auto lora = dyn_cast<LoraOp>(op);
    if (!lora || !lora.getLoraBias())
      continue;
    auto values = readOperand(lora.getLoraBias(), "lora_bias");
    if (!values) {
      job.error = llvm::toString(values.takeError());
      return failure();
    }
    for (int64_t o = 0; o < layer.out; ++o)
      layer.bias[o] += lora.getScale().convertToFloat() * (*values)[o];
    layer.biasChanged = true;
  }
  return success();
}

/// Folds the job's value maps and LoRA biases into the weight and bias; the
/// bias is kept in the job when it changed.
LogicalResult foldMaps(MergeJob &job, float *weight) {
  AdaptableLayer layer = job.layer;
  MergedLayer merged{weight, layer.getWeightInOut(), layer.getInFeatures(), layer.getOutFeatures(),
                     std::vector<float>(layer.getOutFeatures(), 0.0f)};
  Value layerBias = layer.getBias();
  if (layerBias) {
    auto values = readOperand(layerBias, "the bias");
    if (!values) {
      job.error = llvm::toString(values.takeError());
      return failure();
    }
    merged.bias = std::move(*values);
  }
  if (failed(addLoraBiases(job, merged)))
    return failure();
  for (auto [maps, output] : {std::pair(&job.inputMaps, false), std::pair(&job.outputMaps, true)})
    for (Operation *op : *maps) {
      auto map = channelMapOf(op);
      if (!map) {
        job.error = llvm::toString(map.takeError());
        return failure();
      }
      if (output)
        foldOutputMap(merged, *map, bool(layerBias));
      else if (failed(foldInputMap(merged, std::move(*map), layer, job.error)))
        return failure();
    }
  if (merged.biasChanged) {
    Type elementType = cast<ShapedType>((layerBias ? layerBias : layer->getResult(0)).getType())
                           .getElementType();
    job.mergedBias = blobOf(merged.bias, elementType);
  }
  return success();
}

/// Adds a LoHa or LoKr delta (in PyTorch's [out, in...] layout) to `weight`.
LogicalResult addDeltaWeight(MergeJob &job, AddDeltaOp op, float *weight, int64_t in, int64_t out) {
  auto delta = readOperand(op.getDelta(), "the delta");
  if (!delta) {
    job.error = llvm::toString(delta.takeError());
    return failure();
  }
  bool inOut = job.layer.getWeightInOut();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i)
      weight[inOut ? i * out + o : o * in + i] += (*delta)[o * in + i];
  return success();
}

/// Adds one LoRA's scale·B·A to `weight`; a DoRA then rescales every output's
/// row to its magnitude: W' = (m / ‖W + s·B·A‖_row) ⊙ (W + s·B·A).
LogicalResult addLowRank(MergeJob &job, Operation *op, float *weight, int64_t in, int64_t out) {
  if (auto addDelta = dyn_cast<AddDeltaOp>(op))
    return addDeltaWeight(job, addDelta, weight, in, out);
  auto lora = dyn_cast<LoraOp>(op);
  auto dora = dyn_cast<DoraOp>(op);
  auto a = readOperand(lora ? lora.getLoraA() : dora.getLoraA(), "lora_A");
  auto b = a ? readOperand(lora ? lora.getLoraB() : dora.getLoraB(), "lora_B")
             : llvm::Expected<std::vector<float>>(a.takeError());
  auto magnitude = !b || !dora ? llvm::Expected<std::vector<float>>(std::vector<float>())
                               : readOperand(dora.getMagnitude(), "lora_magnitude_vector");
  if (!b || !magnitude) {
    job.error = llvm::toString(!b ? b.takeError() : magnitude.takeError());
    return failure();
  }
  bool inOut = job.layer.getWeightInOut();
  float scale = (lora ? lora.getScale() : dora.getScale()).convertToFloat();
  int64_t rank = lora ? lora.getRank() : dora.getRank();
  addLowRankProduct(weight, inOut, *a, *b, rank, in, out, scale);
  if (dora)
    scaleWeight(weight, inOut, /*perOutput=*/true, magnitudeOverNorm(weight, inOut, *magnitude, in, out),
                in, out);
  return success();
}

/// Computes the merged weight of one job; runs on a worker thread. f16 and
/// bf16 base weights are merged in fp32 and rounded back once.
void computeMerge(MergeJob &job) {
  AdaptableLayer layer = job.layer;
  auto weightOp = layer.getWeight().getDefiningOp<WeightOp>();
  Type elementType = layer.getWeight().getType().getElementType();
  if (!weightOp) {
    job.error = "the base weight is not a constant weight";
    return;
  }
  if (!elementType.isF32() && !elementType.isF16() && !elementType.isBF16()) {
    job.error = "merging into a base weight of another type than f32, f16 or bf16";
    return;
  }
  std::vector<float> wide;
  float *weight = nullptr;
  if (elementType.isF32()) {
    if (failed(copyBaseWeight(job, weightOp)))
      return;
    weight = reinterpret_cast<float *>(job.merged.getMutableData().data());
  } else {
    auto values = weightOp.readFloat32();
    if (!values) {
      job.error = llvm::toString(values.takeError());
      return;
    }
    wide = std::move(*values);
    weight = wide.data();
  }
  int64_t in = layer.getInFeatures(), out = layer.getOutFeatures();
  for (Operation *op : job.lowRank)
    if (failed(addLowRank(job, op, weight, in, out)))
      return;
  if (failed(foldMaps(job, weight)))
    return;
  if (!elementType.isF32())
    job.merged = blobOf(wide, elementType);
}

/// Leaves an adapter op unmerged: a remark says why, and the reason stays on
/// the op (kNotMergedAttr) for tools such as peftc's summary.
void keepUnmerged(Operation *op, StringRef where, StringRef reason) {
  op->setAttr(kNotMergedAttr, StringAttr::get(op->getContext(), reason));
  op->emitRemark("adapter '") << cast<AdapterOp>(op).getAdapterName()
                              << "' not merged" << where << ": " << reason;
}

/// Gives `layer` the merged bias; a layer without one gets one, named as
/// PyTorch would name it.
void replaceBias(AdaptableLayer layer, AsmResourceBlob blob, OpBuilder &builder) {
  Value oldBias = layer.getBias();
  auto oldWeight = oldBias ? oldBias.getDefiningOp<WeightOp>() : WeightOp();
  std::string name = oldWeight ? oldWeight.getName().str() : layer.getModulePath().str() + ".bias";
  Type elementType = cast<ShapedType>((oldBias ? oldBias : layer->getResult(0)).getType())
                         .getElementType();
  auto type = RankedTensorType::get({layer.getOutFeatures()}, elementType);
  auto bias = WeightOp::create(builder, layer.getLoc(), type, builder.getStringAttr(name),
                               StringAttr(), makeWeightValue(type, std::move(blob), name));
  TypeSwitch<Operation *>(layer).Case<LinearOp, ConvOp>(
      [&](auto op) { op.getBiasMutable().assign(bias); });
  if (oldWeight && oldWeight->use_empty())
    oldWeight.erase();
}

/// The job of merging `layer`'s adapters; empty when it has none. A value
/// map between two layers goes to the first (`claimed` holds the maps jobs
/// took).
MergeJob collectJob(AdaptableLayer layer, llvm::DenseSet<Operation *> &claimed) {
  MergeJob job{layer, {}, {}, {}, {}, {}, {}};
  // Low-rank adapters on the layer's own input, then value maps.
  for (Operation *adapter : outputAdapters(layer)) {
    if (isFoldableMap(adapter, /*onInput=*/false))
      job.outputMaps.push_back(adapter);
    else if (job.outputMaps.empty() && !cast<AdapterOp>(adapter).mapsValue() &&
             adapter->getOperand(0) == layer.getInput())
      job.lowRank.push_back(adapter);
    else
      break;
  }
  for (Operation *input = layer.getInput().getDefiningOp();
       input && isFoldableMap(input, /*onInput=*/true) && input->hasOneUse() &&
       !claimed.contains(input);
       input = input->getOperand(0).getDefiningOp())
    job.inputMaps.push_back(input);
  claimed.insert(job.outputMaps.begin(), job.outputMaps.end());
  return job;
}

/// A layer norm's weight or bias as fp32 values (ones or zeros when absent).
llvm::Expected<std::vector<float>> normParameter(Value value, int64_t size, float fallback) {
  if (!value)
    return std::vector<float>(size, fallback);
  return readOperand(value, "the layer norm's parameter");
}

/// A new weight named `name` holding `values` as `like`'s type.
WeightOp valueWeight(OpBuilder &builder, Location loc, RankedTensorType type, StringRef name,
                     ArrayRef<float> values) {
  return WeightOp::create(builder, loc, type, builder.getStringAttr(name), StringAttr(),
                          makeWeightValue(type, blobOf(values, type.getElementType()), name));
}

struct MergeAdaptersPass : peft::impl::MergeAdaptersBase<MergeAdaptersPass> {
  void runOnOperation() override {
    std::vector<MergeJob> jobs;
    llvm::DenseSet<Operation *> claimed;
    getOperation().walk([&](AdaptableLayer layer) {
      MergeJob job = collectJob(layer, claimed);
      if (!job.adapterOps().empty())
        jobs.push_back(std::move(job));
    });

    std::mutex counting; // Reports in order: layer 1, 2, ... of n.
    size_t merged = 0;
    parallelForEach(&getContext(), jobs, [&](MergeJob &job) {
      computeMerge(job);
      std::lock_guard<std::mutex> lock(counting);
      reportProgress("layer", ++merged, jobs.size());
    });

    // Adapters of failed jobs get their own reason; any other left is not on
    // a layer at all.
    llvm::SmallPtrSet<Operation *, 8> reported;
    for (MergeJob &job : jobs)
      rewrite(job, reported);
    SmallVector<LayerNormOp> norms;
    getOperation().walk([&](LayerNormOp norm) { norms.push_back(norm); });
    for (LayerNormOp norm : norms)
      mergeIntoLayerNorm(norm, reported);
    getOperation().walk([&](Operation *op) {
      auto bottleneck = dyn_cast<BottleneckOp>(op);
      auto adapter = dyn_cast<AdapterOp>(op);
      if (!adapter || reported.contains(op))
        return;
      if (isa<HeadShiftOp>(op))
        keepUnmerged(op, "", "a head shift moves values across frames; it has no weights to "
                             "merge into");
      else if (bottleneck && !bottleneck.isLinear())
        keepUnmerged(op, "", ("its activation (" + bottleneck.getActivation() +
                              ") is not linear, so it runs unmerged")
                                 .str());
      else if (!adapter.mapsValue())
        keepUnmerged(op, "", "its base is not a layer on the same input");
      else
        keepUnmerged(op, "", "it maps neither the output nor the sole input of a layer");
    });
  }

  /// SSF after a layer norm: γ' = s⊙γ, β' = s⊙β + shift (the vectors are
  /// small, so this runs here).
  void mergeIntoLayerNorm(LayerNormOp norm, llvm::SmallPtrSetImpl<Operation *> &reported) {
    SmallVector<SsfOp> ssfs;
    for (Operation *adapter : outputAdapters(norm)) {
      auto ssf = dyn_cast<SsfOp>(adapter);
      if (!ssf)
        break;
      ssfs.push_back(ssf);
    }
    if (ssfs.empty())
      return;
    int64_t size = norm.getNormalizedSize();
    auto gamma = normParameter(norm.getWeight(), size, 1.0f);
    auto beta = gamma ? normParameter(norm.getBias(), size, 0.0f)
                      : llvm::Expected<std::vector<float>>(gamma.takeError());
    for (SsfOp ssf : ssfs) {
      auto map = beta ? channelMapOf(ssf) : llvm::Expected<ChannelMap>(beta.takeError());
      if (!map) {
        std::string reason = llvm::toString(map.takeError());
        for (SsfOp op : ssfs) {
          reported.insert(op);
          keepUnmerged(op, (" into '" + norm.getModulePath() + "'").str(), reason);
        }
        return;
      }
      for (int64_t c = 0; c < size; ++c) {
        (*gamma)[c] *= map->diagonal[c];
        (*beta)[c] = (*beta)[c] * map->diagonal[c] + map->shift[c];
      }
    }
    OpBuilder builder(norm);
    auto type = norm.getWeight().getType();
    // Named after the module, not after the old weights: an exporter may
    // have shared one tensor among equal layer norms.
    auto name = [&](StringRef parameter) { return (norm.getModulePath() + "." + parameter).str(); };
    llvm::SetVector<Operation *> oldParameters;
    for (Value old : {norm.getWeight(), norm.getBias()})
      if (old && old.getDefiningOp())
        oldParameters.insert(old.getDefiningOp());
    norm.getWeightMutable().assign(
        valueWeight(builder, norm.getLoc(), type, name("weight"), *gamma));
    norm.getBiasMutable().assign(
        valueWeight(builder, norm.getLoc(), type, name("bias"), *beta));
    ssfs.back().getResult().replaceAllUsesWith(norm.getResult());
    for (SsfOp ssf : llvm::reverse(ssfs)) {
      oldParameters.insert(ssf.getScale().getDefiningOp());
      oldParameters.insert(ssf.getShift().getDefiningOp());
      ssf.erase();
    }
    for (Operation *old : oldParameters)
      if (old && old->use_empty())
        old->erase();
  }

  void rewrite(MergeJob &job, llvm::SmallPtrSetImpl<Operation *> &reported) {
    AdaptableLayer layer = job.layer;
    if (!job.error.empty()) {
      for (Operation *op : job.adapterOps()) {
        reported.insert(op);
        keepUnmerged(op, (" into '" + layer.getModulePath() + "'").str(), job.error);
      }
      return;
    }
    auto oldWeight = layer.getWeight().getDefiningOp<WeightOp>();
    OpBuilder builder(layer);
    RankedTensorType type = layer.getWeight().getType();
    auto merged = WeightOp::create(
        builder, layer.getLoc(), type, oldWeight.getNameAttr(), StringAttr(),
        makeWeightValue(type, std::move(job.merged), oldWeight.getName()));
    layer.getWeightMutable().set(merged);
    if (job.mergedBias)
      replaceBias(layer, std::move(*job.mergedBias), builder);
    if (!job.inputMaps.empty()) // Every layer's input comes first.
      layer->setOperand(0, job.inputMaps.back()->getOperand(0));
    Value output = !job.outputMaps.empty() ? job.outputMaps.back()->getResult(0)
                   : job.lowRank.empty()   ? Value()
                                           : job.lowRank.back()->getResult(0);
    if (output)
      output.replaceAllUsesWith(layer->getResult(0));
    // The adapters' weights and the computations on them (and the old layer
    // weight a DoRA read) go once nothing uses them.
    llvm::SetVector<Operation *> unused;
    unused.insert(oldWeight);
    // Named: reverse() keeps a reference, which must outlive the loop.
    SmallVector<Operation *> adapterOps = job.adapterOps();
    for (Operation *op : llvm::reverse(adapterOps)) {
      for (Value operand : op->getOperands().drop_front(cast<AdapterOp>(op).mapsValue() ? 1 : 2))
        if (Operation *factor = operand.getDefiningOp())
          unused.insert(factor);
      op->erase();
    }
    while (!unused.empty()) {
      Operation *op = unused.pop_back_val();
      if (!op->use_empty())
        continue;
      for (Value operand : op->getOperands())
        if (Operation *factor = operand.getDefiningOp())
          unused.insert(factor);
      op->erase();
    }
  }
};

} // namespace
