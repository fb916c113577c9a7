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

/// A linear layer and the adapters stacked on its output, innermost first.
struct MergeJob {
  LinearOp linear;
  SmallVector<LoraOp> loras;
  /// Filled by the parallel phase.
  AsmResourceBlob merged;
  std::string error;
};

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

/// Rounds fp32 values to f16 or bf16 (nearest, ties to even) into `job.merged`.
void storeNarrowed(MergeJob &job, ArrayRef<float> values, Type elementType) {
  job.merged = HeapAsmResourceBlob::allocate(values.size() * sizeof(uint16_t), alignof(uint16_t));
  auto *out = reinterpret_cast<uint16_t *>(job.merged.getMutableData().data());
  const llvm::fltSemantics &semantics = cast<FloatType>(elementType).getFloatSemantics();
  for (size_t i = 0; i < values.size(); ++i) {
    APFloat value(values[i]);
    bool lost;
    value.convert(semantics, APFloat::rmNearestTiesToEven, &lost);
    out[i] = static_cast<uint16_t>(value.bitcastToAPInt().getZExtValue());
  }
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
  if (!elementType.isF32())
    storeNarrowed(job, wide, elementType);
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
      MergeJob job{linear, {}, {}, {}};
      Value output = linear.getResult();
      while (output.hasOneUse()) {
        auto lora = dyn_cast<LoraOp>(*output.getUsers().begin());
        if (!lora || lora.getBase() != output || lora.getInput() != linear.getInput())
          break;
        job.loras.push_back(lora);
        output = lora.getResult();
      }
      if (!job.loras.empty())
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
  }

  void rewrite(MergeJob &job, llvm::SmallPtrSetImpl<Operation *> &reported) {
    LinearOp linear = job.linear;
    if (!job.error.empty()) {
      for (LoraOp lora : job.loras) {
        reported.insert(lora);
        lora.emitRemark("adapter '") << lora.getAdapter() << "' not merged into '"
                                     << linear.getModulePath() << "': " << job.error;
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
    job.loras.back().getResult().replaceAllUsesWith(linear.getResult());
    for (LoraOp lora : llvm::reverse(job.loras)) {
      SmallVector<Operation *> factors = {lora.getLoraA().getDefiningOp(),
                                          lora.getLoraB().getDefiningOp()};
      lora.erase();
      for (Operation *factor : factors)
        if (factor && factor->use_empty())
          factor->erase();
    }
    if (oldWeight->use_empty())
      oldWeight.erase();
  }
};

} // namespace
