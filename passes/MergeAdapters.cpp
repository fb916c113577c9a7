//===- MergeAdapters.cpp - Fold adapters into base weights ------------------===//
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Threading.h"

#include <cstring>

namespace peft {
#define GEN_PASS_DEF_MERGEADAPTERS
#include "passes/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// Weights up to this many elements print inline as `dense`, larger ones are
/// kept as a `dense_resource` blob.
constexpr int64_t kMaxInlineElements = 256;

/// A linear layer and its adapters: LoRAs stacked on its output, innermost
/// first, and IA3 scales of its input and output.
struct MergeJob {
  LinearOp linear;
  SmallVector<LoraOp> loras;
  Ia3Op inputScale, outputScale;
  /// Filled by the parallel phase.
  AsmResourceBlob merged;
  std::optional<AsmResourceBlob> mergedBias;
  std::string error;

  /// Every adapter op the job folds, for remarks.
  SmallVector<Operation *> adapterOps() {
    SmallVector<Operation *> ops(loras.begin(), loras.end());
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

/// Reads a weight operand's values, or says why it cannot.
llvm::Expected<std::vector<float>> readOperand(Value value, StringRef role) {
  auto weight = value.getDefiningOp<WeightOp>();
  if (!weight)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   role + " is not a constant weight");
  return weight.readFloat32();
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
  LinearOp linear = job.linear;
  bool loraBias = llvm::any_of(job.loras, [](LoraOp lora) { return bool(lora.getLoraBias()); });
  if (!loraBias && !(job.outputScale && linear.getBias()))
    return success();
  std::vector<float> bias(linear.getOutFeatures(), 0.0f);
  auto fail = [&](llvm::Error error) {
    job.error = llvm::toString(std::move(error));
    return failure();
  };
  if (linear.getBias()) {
    auto values = readOperand(linear.getBias(), "the bias");
    if (!values)
      return fail(values.takeError());
    bias = std::move(*values);
  }
  for (LoraOp lora : job.loras) {
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
  Type elementType = linear.getBias() ? cast<ShapedType>(linear.getBias().getType()).getElementType()
                                      : linear.getType().getElementType();
  job.mergedBias = blobOf(bias, elementType);
  return success();
}

/// Folds the job's IA3 scales into its weight: W[:, i] *= l_in[i];
/// W[o, :] *= l_out[o] (mergeBias scales the bias).
LogicalResult foldScales(MergeJob &job, float *weight) {
  LinearOp linear = job.linear;
  int64_t in = linear.getInFeatures(), out = linear.getOutFeatures();
  for (auto [scale, perOutput] : {std::pair(job.inputScale, false), std::pair(job.outputScale, true)}) {
    if (!scale)
      continue;
    auto values = readOperand(scale.getScale(), "ia3_l");
    if (!values) {
      job.error = llvm::toString(values.takeError());
      return failure();
    }
    scaleWeight(weight, linear.getWeightInOut(), perOutput, *values, in, out);
  }
  return success();
}

/// Computes the merged weight of one job; runs on a worker thread. f16 and
/// bf16 base weights are merged in fp32 and rounded back once.
void computeMerge(MergeJob &job) {
  LinearOp linear = job.linear;
  auto weightOp = linear.getWeight().getDefiningOp<WeightOp>();
  Type elementType = linear.getWeight().getType().getElementType();
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
  int64_t in = linear.getInFeatures(), out = linear.getOutFeatures();
  for (LoraOp lora : job.loras) {
    auto a = readOperand(lora.getLoraA(), "lora_A");
    auto b = a ? readOperand(lora.getLoraB(), "lora_B")
               : llvm::Expected<std::vector<float>>(a.takeError());
    if (!b) {
      job.error = llvm::toString(b.takeError());
      return;
    }
    int64_t rank = lora.getLoraA().getType().getDimSize(0);
    addLowRankProduct(weight, linear.getWeightInOut(), *a, *b, rank, in, out,
                      lora.getScale().convertToFloat());
  }
  if (failed(foldScales(job, weight)) || failed(mergeBias(job)))
    return;
  if (!elementType.isF32())
    job.merged = blobOf(wide, elementType);
}

ElementsAttr makeWeightValue(RankedTensorType type, AsmResourceBlob blob,
                             StringRef name) {
  if (type.getNumElements() <= kMaxInlineElements)
    return DenseElementsAttr::getFromRawBuffer(type, blob.getData());
  return DenseResourceElementsAttr::get(type, name, std::move(blob));
}

struct MergeAdaptersPass : peft::impl::MergeAdaptersBase<MergeAdaptersPass> {
  void runOnOperation() override {
    std::vector<MergeJob> jobs;
    getOperation().walk([&](LinearOp linear) {
      MergeJob job{linear, {}, {}, {}, {}, {}, {}};
      Value output = linear.getResult();
      while (output.hasOneUse()) {
        auto lora = dyn_cast<LoraOp>(*output.getUsers().begin());
        if (!lora || lora.getBase() != output || lora.getInput() != linear.getInput())
          break;
        job.loras.push_back(lora);
        output = lora.getResult();
      }
      if (output.hasOneUse())
        job.outputScale = dyn_cast<Ia3Op>(*output.getUsers().begin());
      auto input = linear.getInput().getDefiningOp<Ia3Op>();
      if (input && input->hasOneUse())
        job.inputScale = input;
      if (!job.loras.empty() || job.inputScale || job.outputScale)
        jobs.push_back(std::move(job));
    });

    parallelForEach(&getContext(), jobs, computeMerge);

    // Adapters of failed jobs get their own reason; any other left is not on
    // a layer at all.
    llvm::SmallPtrSet<Operation *, 8> reported;
    for (MergeJob &job : jobs)
      rewrite(job, reported);
    getOperation().walk([&](LoraOp lora) {
      if (reported.contains(lora))
        return;
      lora.emitRemark("adapter '")
          << lora.getAdapter()
          << "' not merged: its base is not a peft.linear on the same input";
    });
    getOperation().walk([&](Ia3Op scale) {
      if (reported.contains(scale))
        return;
      scale.emitRemark("adapter '")
          << scale.getAdapter()
          << "' not merged: it scales neither the output nor the sole input of a peft.linear";
    });
  }

  void rewrite(MergeJob &job, llvm::SmallPtrSetImpl<Operation *> &reported) {
    LinearOp linear = job.linear;
    if (!job.error.empty()) {
      for (Operation *op : job.adapterOps()) {
        reported.insert(op);
        op->emitRemark("adapter '") << op->getAttrOfType<StringAttr>("adapter").getValue()
                                    << "' not merged into '" << linear.getModulePath()
                                    << "': " << job.error;
      }
      return;
    }
    auto oldWeight = linear.getWeight().getDefiningOp<WeightOp>();
    OpBuilder builder(linear);
    RankedTensorType type = linear.getWeight().getType();
    auto merged = WeightOp::create(
        builder, linear.getLoc(), type, oldWeight.getNameAttr(), StringAttr(),
        makeWeightValue(type, std::move(job.merged), oldWeight.getName()));
    linear.getWeightMutable().assign(merged);
    if (job.mergedBias) {
      // A layer without a bias gets one, named as PyTorch would name it.
      auto oldBias = linear.getBias() ? linear.getBias().getDefiningOp<WeightOp>() : WeightOp();
      std::string name = oldBias ? oldBias.getName().str() : linear.getModulePath().str() + ".bias";
      auto biasType = RankedTensorType::get({linear.getOutFeatures()},
                                            linear.getBias() ? cast<ShapedType>(linear.getBias().getType())
                                                                   .getElementType()
                                                             : linear.getType().getElementType());
      auto bias = WeightOp::create(builder, linear.getLoc(), biasType, builder.getStringAttr(name),
                                   StringAttr(),
                                   makeWeightValue(biasType, std::move(*job.mergedBias), name));
      linear.getBiasMutable().assign(bias);
      if (oldBias && oldBias->use_empty())
        oldBias.erase();
    }
    if (job.inputScale)
      linear.getInputMutable().assign(job.inputScale.getInput());
    Value output = job.outputScale ? job.outputScale.getResult()
                   : job.loras.empty() ? Value()
                                       : job.loras.back().getResult();
    if (output)
      output.replaceAllUsesWith(linear.getResult());
    SmallVector<Operation *> folded = job.adapterOps();
    for (Operation *op : llvm::reverse(folded)) {
      SmallVector<Operation *> factors;
      for (Value operand : op->getOperands().drop_front(isa<LoraOp>(op) ? 2 : 1))
        factors.push_back(operand.getDefiningOp());
      op->erase();
      for (Operation *factor : factors)
        if (factor && factor->use_empty())
          factor->erase();
    }
    if (oldWeight->use_empty())
      oldWeight.erase();
  }
};

} // namespace
