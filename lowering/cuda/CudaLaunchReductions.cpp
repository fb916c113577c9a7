//===- CudaLaunchReductions.cpp - Row reductions as block reductions -------===//
//
// A reduction over one dimension (softmax's maximum and sum, layer norm's
// mean and variance, RMSNorm's sum of squares) as one block per output
// element: the block's threads fold strided elements of the row (neighbouring
// threads, neighbouring elements). Partials of 32-bit and 64-bit types then
// combine within each warp by xor shuffles, the warps' totals through shared
// memory and once more by shuffles in every warp (one barrier); other types
// halve in shared memory, log2(threads) steps between barriers. The loop
// kernels would fold each row in one thread, its reads strided across threads.
//===----------------------------------------------------------------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/Support/MathExtras.h"

namespace peft {
#define GEN_PASS_DEF_CUDALAUNCHREDUCTIONS
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

constexpr int64_t kMaxThreads = 256;
constexpr int64_t kWarpSize = 32;
constexpr int64_t kMinThreads = kWarpSize;

/// A reduction the kernel computes: out[parallel] = combine(out[parallel],
/// h(ins at parallel, r) for every r), `combiner` associative and commutative
/// with a neutral element, the body's only use of out.
struct Reduction {
  linalg::GenericOp op;
  unsigned reduced;      ///< The reduction loop.
  Operation *combiner;   ///< combine(out, h): the yielded value.
  TypedAttr neutral;
};

static std::optional<Reduction> matchReduction(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1 || op.getNumReductionLoops() != 1)
    return std::nullopt;
  for (AffineMap map : op.getIndexingMapsArray())
    if (!map.isProjectedPermutation())
      return std::nullopt;
  SmallVector<unsigned> reductions;
  op.getReductionDims(reductions);
  // One block per output element: every other loop indexes the output, or
  // blocks would fold into the same element at once.
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  for (unsigned d = 0; d < op.getNumLoops(); ++d)
    if (d != reductions.front() && !outMap.isFunctionOfDim(d))
      return std::nullopt;
  Block &body = op.getRegion().front();
  BlockArgument out = body.getArguments().back();
  Operation *combiner = body.getTerminator()->getOperand(0).getDefiningOp();
  if (!combiner || combiner->getNumOperands() != 2 || combiner->getNumResults() != 1 ||
      !out.hasOneUse() || out.getUses().begin()->getOwner() != combiner ||
      combiner->getOperand(0) == combiner->getOperand(1))
    return std::nullopt;
  // Only the operations whose order does not matter.
  if (!isa<arith::AddFOp, arith::MulFOp, arith::MaximumFOp, arith::MinimumFOp, arith::MaxNumFOp,
           arith::MinNumFOp, arith::AddIOp, arith::MulIOp, arith::MaxSIOp, arith::MinSIOp,
           arith::MaxUIOp, arith::MinUIOp, arith::AndIOp, arith::OrIOp, arith::XOrIOp>(combiner))
    return std::nullopt;
  std::optional<TypedAttr> neutral = arith::getNeutralElement(combiner);
  if (!neutral)
    return std::nullopt;
  return Reduction{op, reductions.front(), combiner, *neutral};
}

/// Builds the launch of one reduction in place of it.
class ReductionKernelBuilder {
public:
  explicit ReductionKernelBuilder(Reduction reduction)
      : reduction(reduction), b(reduction.op.getLoc(), reduction.op.getOperation()) {}

  void build() {
    linalg::GenericOp op = reduction.op;
    for (Range range : cast<linalg::LinalgOp>(op.getOperation()).createLoopRanges(b, b.getLoc()))
      sizes.push_back(getValueOrCreateConstantIndexOp(b, b.getLoc(), range.size));
    Value rows = constant(1);
    for (unsigned d = 0; d < sizes.size(); ++d)
      if (d != reduction.reduced)
        rows = arith::MulIOp::create(b, rows, sizes[d]);
    // A warp to kMaxThreads, a power of two: no more than a known row needs.
    threads = kMaxThreads;
    if (std::optional<int64_t> length = getConstantIntValue(sizes[reduction.reduced]))
      threads = std::clamp<int64_t>(llvm::PowerOf2Ceil(*length), kMinThreads, kMaxThreads);
    Value any = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, rows, constant(0));
    auto nonEmpty = scf::IfOp::create(b, any, /*withElseRegion=*/false);
    b.setInsertionPointToStart(&nonEmpty.getThenRegion().front());
    Type type = reduction.neutral.getType();
    // A total per warp, or a partial per thread to halve.
    auto partials = MemRefType::get(
        {shuffles(type) ? threads / kWarpSize : threads}, type, nullptr,
        gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup));
    Value one = constant(1);
    auto launch = gpu::LaunchOp::create(b, rows, one, one, constant(threads), one, one,
                                        /*dynamicSharedMemorySize=*/nullptr,
                                        /*asyncTokenType=*/nullptr, ValueRange{},
                                        TypeRange{partials});
    b.setInsertionPointToStart(&launch.getBody().front());
    gpu::TerminatorOp terminator = gpu::TerminatorOp::create(b);
    b.setInsertionPoint(terminator);
    buildBody(launch);
    op->erase();
  }

private:
  Value constant(int64_t value) { return arith::ConstantIndexOp::create(b, value); }

  void buildBody(gpu::LaunchOp launch) {
    linalg::GenericOp op = reduction.op;
    Value thread = launch.getThreadIds().x;
    Value shared = launch.getWorkgroupAttributions()[0];
    // The row's indices, the last parallel loop fastest.
    SmallVector<Value> indices(sizes.size());
    Value rest = launch.getBlockIds().x;
    for (int64_t d = sizes.size() - 1; d >= 0; --d) {
      if (d == static_cast<int64_t>(reduction.reduced))
        continue;
      indices[d] = arith::RemUIOp::create(b, rest, sizes[d]);
      rest = arith::DivUIOp::create(b, rest, sizes[d]);
    }
    Value neutral = arith::ConstantOp::create(b, reduction.neutral);

    // This thread's partial: the body over elements thread, thread + threads, ...
    Block &body = op.getRegion().front();
    auto fold = scf::ForOp::create(
        b, thread, sizes[reduction.reduced], constant(threads), ValueRange{neutral},
        [&](OpBuilder &nested, Location loc, Value r, ValueRange carried) {
          indices[reduction.reduced] = r;
          IRMapping mapping;
          for (OpOperand *input : op.getDpsInputOperands()) {
            AffineMap map = op.getMatchingIndexingMap(input);
            SmallVector<Value> at = llvm::map_to_vector(
                map.getResults(), [&](AffineExpr e) {
                  return indices[cast<AffineDimExpr>(e).getPosition()];
                });
            mapping.map(body.getArgument(input->getOperandNumber()),
                        memref::LoadOp::create(nested, loc, input->get(), at).getResult());
          }
          mapping.map(body.getArguments().back(), carried.front());
          for (Operation &bodyOp : body.without_terminator()) {
            if (auto index = dyn_cast<linalg::IndexOp>(bodyOp))
              mapping.map(index.getResult(), indices[index.getDim()]);
            else
              nested.clone(bodyOp, mapping);
          }
          scf::YieldOp::create(nested, loc,
                               mapping.lookup(body.getTerminator()->getOperand(0)));
        });
    Type type = reduction.neutral.getType();
    Value total = shuffles(type) ? combineByShuffles(fold.getResult(0), thread, shared, neutral)
                                 : combineByHalving(fold.getResult(0), thread, shared);

    // Thread 0: out = combine(out, the row's total).
    Value first = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, thread, constant(0));
    auto write = scf::IfOp::create(b, first, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&write.getThenRegion().front());
    OpOperand *init = op.getDpsInitOperand(0);
    AffineMap outMap = op.getMatchingIndexingMap(init);
    SmallVector<Value> at = llvm::map_to_vector(outMap.getResults(), [&](AffineExpr e) {
      return indices[cast<AffineDimExpr>(e).getPosition()];
    });
    Value old = memref::LoadOp::create(b, init->get(), at);
    memref::StoreOp::create(b, combined(old, total), init->get(), at);
  }

  /// Whether gpu.shuffle moves values of `type`.
  static bool shuffles(Type type) {
    return (isa<FloatType>(type) || type.isSignlessInteger()) &&
           (type.getIntOrFloatBitWidth() == 32 || type.getIntOrFloatBitWidth() == 64);
  }

  /// `value` combined over the 32 lanes of each warp by xor shuffles: every
  /// lane ends with its warp's total.
  Value warpTotal(Value value) {
    for (int64_t offset = kWarpSize / 2; offset >= 1; offset /= 2) {
      Value other = gpu::ShuffleOp::create(b, value, offset, kWarpSize, gpu::ShuffleMode::XOR)
                        .getShuffleResult();
      value = combined(value, other);
    }
    return value;
  }

  /// The block's total, for thread 0: each warp's by shuffles, lane 0 of
  /// each writes it to shared[warp], a barrier, then every warp combines
  /// those (the neutral element past the last warp) by shuffles again.
  Value combineByShuffles(Value partial, Value thread, Value shared, Value neutral) {
    Value perWarp = warpTotal(partial);
    Value lane = arith::RemUIOp::create(b, thread, constant(kWarpSize));
    Value warp = arith::DivUIOp::create(b, thread, constant(kWarpSize));
    Value first = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, constant(0));
    auto write = scf::IfOp::create(b, first, /*withElseRegion=*/false);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&write.getThenRegion().front());
      memref::StoreOp::create(b, perWarp, shared, ValueRange{warp});
    }
    gpu::BarrierOp::create(b);
    // Shared holds threads / 32 totals (at most a warp's worth).
    Value warps = constant(threads / kWarpSize);
    Value inRange = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, lane, warps);
    auto read = scf::IfOp::create(b, TypeRange{neutral.getType()}, inRange, /*withElse=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&read.getThenRegion().front());
      scf::YieldOp::create(b, ValueRange{memref::LoadOp::create(b, shared, ValueRange{lane})});
      b.setInsertionPointToStart(&read.getElseRegion().front());
      scf::YieldOp::create(b, ValueRange{neutral});
    }
    return warpTotal(read.getResult(0));
  }

  /// The block's total, for thread 0: partials halved in shared memory,
  /// threads below `half` combining theirs with the one `half` above.
  Value combineByHalving(Value partial, Value thread, Value shared) {
    memref::StoreOp::create(b, partial, shared, thread);
    gpu::BarrierOp::create(b);
    auto levels = scf::ForOp::create(b, constant(0), constant(llvm::Log2_64(threads)), constant(1));
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(levels.getBody()->getTerminator());
      Value half = arith::ShRUIOp::create(
          b, constant(threads),
          arith::AddIOp::create(b, levels.getInductionVar(), constant(1)));
      Value lower = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, thread, half);
      auto combine = scf::IfOp::create(b, lower, /*withElseRegion=*/false);
      {
        OpBuilder::InsertionGuard inner(b);
        b.setInsertionPointToStart(&combine.getThenRegion().front());
        Value mine = memref::LoadOp::create(b, shared, thread);
        Value theirs =
            memref::LoadOp::create(b, shared, ValueRange{arith::AddIOp::create(b, thread, half)});
        memref::StoreOp::create(b, combined(mine, theirs), shared, thread);
      }
      gpu::BarrierOp::create(b);
    }
    return memref::LoadOp::create(b, shared, ValueRange{constant(0)});
  }

  /// The combiner applied to `lhs` and `rhs`.
  Value combined(Value lhs, Value rhs) {
    IRMapping mapping;
    mapping.map(reduction.combiner->getOperand(0), lhs);
    mapping.map(reduction.combiner->getOperand(1), rhs);
    return b.clone(*reduction.combiner, mapping)->getResult(0);
  }

  Reduction reduction;
  ImplicitLocOpBuilder b;
  SmallVector<Value> sizes; ///< Each loop's trip count.
  int64_t threads = kMaxThreads;
};

struct CudaLaunchReductionsPass
    : peft::impl::CudaLaunchReductionsBase<CudaLaunchReductionsPass> {
  void runOnOperation() override {
    SmallVector<Reduction> reductions;
    getOperation().walk([&](linalg::GenericOp op) {
      if (std::optional<Reduction> reduction = matchReduction(op))
        reductions.push_back(*reduction);
    });
    for (const Reduction &reduction : reductions)
      ReductionKernelBuilder(reduction).build();
  }
};

} // namespace
