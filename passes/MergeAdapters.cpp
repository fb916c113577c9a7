//===- MergeAdapters.cpp - Fold adapters into base weights ------------------===//
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Threading.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <cstring>

namespace peft {
#define GEN_PASS_DEF_MERGEADAPTERS
#include "passes/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// A layer and its adapters: LoRAs, DoRAs and deltas stacked on its output,
/// innermost first, and IA3 scales of its input and output.
struct MergeJob {
  AdaptableLayer layer;
  SmallVector<Operation *> lowRank;
  Ia3Op inputScale, outputScale;
  /// Filled by the parallel phase.
  AsmResourceBlob merged;
  std::optional<AsmResourceBlob> mergedBias;
  std::string error;

  /// Every adapter op the job folds, for remarks.
  SmallVector<Operation *> adapterOps() {
    SmallVector<Operation *> ops(lowRank);
    for (Ia3Op scale : {inputScale, outputScale})
      if (scale)
        ops.push_back(scale);
    return ops;
  }
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

/// m[o] / ‖W[o, :]‖ for every output o of an [out, in] (or [in, out]) weight.
std::vector<float> magnitudeOverNorm(const float *weight, bool inOut, ArrayRef<float> magnitude,
                                     int64_t in, int64_t out) {
  std::vector<double> squares(out, 0.0);
  for (int64_t r = 0; r < (inOut ? in : out); ++r)
    for (int64_t c = 0; c < (inOut ? out : in); ++c) {
      double value = weight[r * (inOut ? out : in) + c];
      squares[inOut ? c : r] += value * value;
    }
  std::vector<float> factors(out);
  for (int64_t o = 0; o < out; ++o)
    factors[o] = magnitude[o] / static_cast<float>(std::sqrt(squares[o]));
  return factors;
}

/// Adds scale·B·A to `weight`, which is [out, in], or [in, out] when `inOut`.
/// Loops are ordered so that the innermost one runs over contiguous memory.
void addLowRankProduct(float *weight, bool inOut, ArrayRef<float> a,
                       ArrayRef<float> b, int64_t rank, int64_t in, int64_t out,
                       float scale) {
  if (!inOut) { // W[o, i] += Σ_r (s·B[o, r])·A[r, i]
    for (int64_t o = 0; o < out; ++o)
      for (int64_t r = 0; r < rank; ++r) {
        float factor = scale * b[o * rank + r];
        const float *row = &a[r * in];
        float *target = weight + o * in;
        for (int64_t i = 0; i < in; ++i)
          target[i] += factor * row[i];
      }
    return;
  }
  std::vector<float> scaledBt(rank * out); // (s·B)ᵀ: [r, out]
  for (int64_t o = 0; o < out; ++o)
    for (int64_t r = 0; r < rank; ++r)
      scaledBt[r * out + o] = scale * b[o * rank + r];
  for (int64_t i = 0; i < in; ++i) // W[i, o] += Σ_r A[r, i]·(s·B)ᵀ[r, o]
    for (int64_t r = 0; r < rank; ++r) {
      float factor = a[r * in + i];
      const float *row = &scaledBt[r * out];
      float *target = weight + i * out;
      for (int64_t o = 0; o < out; ++o)
        target[o] += factor * row[o];
    }
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

/// The values of a weight-space expression: a weight, or a LoHa or LoKr
/// delta computed from weights. `role` names it in errors.
llvm::Expected<std::vector<float>> readOperand(Value value, StringRef role) {
  Operation *op = value.getDefiningOp();
  if (auto weight = dyn_cast_or_null<WeightOp>(op))
    return weight.readFloat32();
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

/// The merged bias when an adapter changes it: b + Σ scale·lora_bias (b = 0
/// for a layer without one), then times an IA3 output scale; else nothing.
LogicalResult mergeBias(MergeJob &job) {
  AdaptableLayer layer = job.layer;
  Value layerBias = layer.getBias();
  auto loras = llvm::map_range(llvm::make_filter_range(job.lowRank, llvm::IsaPred<LoraOp>),
                               [](Operation *op) { return cast<LoraOp>(op); });
  bool loraBias = llvm::any_of(loras, [](LoraOp lora) { return bool(lora.getLoraBias()); });
  if (!loraBias && !(job.outputScale && layerBias))
    return success();
  std::vector<float> bias(layer.getOutFeatures(), 0.0f);
  auto fail = [&](llvm::Error error) {
    job.error = llvm::toString(std::move(error));
    return failure();
  };
  if (layerBias) {
    auto values = readOperand(layerBias, "the bias");
    if (!values)
      return fail(values.takeError());
    bias = std::move(*values);
  }
  for (LoraOp lora : loras) {
    if (!lora.getLoraBias())
      continue;
    auto values = readOperand(lora.getLoraBias(), "lora_bias");
    if (!values)
      return fail(values.takeError());
    for (size_t o = 0; o < bias.size(); ++o)
      bias[o] += lora.getScale().convertToFloat() * (*values)[o];
  }
  if (job.outputScale) {
    auto scales = readOperand(job.outputScale.getScale(), "ia3_l");
    if (!scales)
      return fail(scales.takeError());
    for (size_t o = 0; o < bias.size(); ++o)
      bias[o] *= (*scales)[o];
  }
  Type elementType = cast<ShapedType>((layerBias ? layerBias : layer->getResult(0)).getType())
                         .getElementType();
  job.mergedBias = blobOf(bias, elementType);
  return success();
}

/// Folds the job's IA3 scales into its weight: W[:, i] *= l_in[i];
/// W[o, :] *= l_out[o] (mergeBias scales the bias).
LogicalResult foldScales(MergeJob &job, float *weight) {
  AdaptableLayer layer = job.layer;
  int64_t in = layer.getInFeatures(), out = layer.getOutFeatures();
  for (auto [scale, perOutput] : {std::pair(job.inputScale, false), std::pair(job.outputScale, true)}) {
    if (!scale)
      continue;
    auto values = readOperand(scale.getScale(), "ia3_l");
    if (!values) {
      job.error = llvm::toString(values.takeError());
      return failure();
    }
    if (!perOutput && values->size() != static_cast<size_t>(in)) {
      // A convolution's input channels: each scale covers its kernel window.
      auto conv = dyn_cast<ConvOp>(layer.getOperation());
      if (!conv || conv.getGroups() != 1) {
        job.error = "IA3 on the input of a grouped convolution does not merge";
        return failure();
      }
      std::vector<float> perColumn;
      int64_t window = in / values->size();
      for (float value : *values)
        perColumn.insert(perColumn.end(), window, value);
      *values = std::move(perColumn);
    }
    scaleWeight(weight, layer.getWeightInOut(), perOutput, *values, in, out);
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
  if (failed(foldScales(job, weight)) || failed(mergeBias(job)))
    return;
  if (!elementType.isF32())
    job.merged = blobOf(wide, elementType);
}

/// Leaves an adapter op unmerged: a remark says why, and the reason stays on
/// the op (kNotMergedAttr) for tools such as peftc's summary.
void keepUnmerged(Operation *op, StringRef where, StringRef reason) {
  op->setAttr(kNotMergedAttr, StringAttr::get(op->getContext(), reason));
  op->emitRemark("adapter '") << op->getAttrOfType<StringAttr>("adapter").getValue()
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

struct MergeAdaptersPass : peft::impl::MergeAdaptersBase<MergeAdaptersPass> {
  void runOnOperation() override {
    std::vector<MergeJob> jobs;
    getOperation().walk([&](AdaptableLayer layer) {
      MergeJob job{layer, {}, {}, {}, {}, {}, {}};
      // The low-rank adapters on the layer's own input, then an IA3 scale.
      for (Operation *adapter : outputAdapters(layer)) {
        job.outputScale = dyn_cast<Ia3Op>(adapter);
        if (job.outputScale || adapter->getOperand(0) != layer.getInput())
          break;
        job.lowRank.push_back(adapter);
      }
      auto input = layer.getInput().getDefiningOp<Ia3Op>();
      if (input && input->hasOneUse())
        job.inputScale = input;
      if (!job.lowRank.empty() || job.inputScale || job.outputScale)
        jobs.push_back(std::move(job));
    });

    parallelForEach(&getContext(), jobs, computeMerge);

    // Adapters of failed jobs get their own reason; any other left is not on
    // a layer at all.
    llvm::SmallPtrSet<Operation *, 8> reported;
    for (MergeJob &job : jobs)
      rewrite(job, reported);
    getOperation().walk([&](Operation *op) {
      if (isa<LoraOp, DoraOp, AddDeltaOp>(op) && !reported.contains(op))
        keepUnmerged(op, "", "its base is not a layer on the same input");
      else if (isa<Ia3Op>(op) && !reported.contains(op))
        keepUnmerged(op, "", "it scales neither the output nor the sole input of a layer");
    });
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
    if (job.inputScale)
      layer->setOperand(0, job.inputScale.getInput()); // Every layer's input comes first.
    Value output = job.outputScale ? job.outputScale.getResult()
                   : job.lowRank.empty() ? Value()
                                         : job.lowRank.back()->getResult(0);
    if (output)
      output.replaceAllUsesWith(layer->getResult(0));
    // The adapters' weights and the computations on them (and the old layer
    // weight a DoRA read) go once nothing uses them.
    llvm::SetVector<Operation *> unused;
    unused.insert(oldWeight);
    for (Operation *op : llvm::reverse(job.adapterOps())) {
      for (Value operand : op->getOperands().drop_front(isa<Ia3Op>(op) ? 1 : 2))
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
