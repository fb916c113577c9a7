//===- CudaLaunchReductions.cpp - Row reductions as block reductions -------===//
//
// A reduction over one dimension (softmax's maximum and sum, layer norm's
// mean and variance, RMSNorm's sum of squares) as one block per output
// element: the block's threads fold strided elements of the row (neighbouring
// threads, neighbouring elements), then combine their partials in shared
// memory in log2(threads) halving steps between barriers. The loop kernels
// would fold each row in one thread, its reads strided across threads.
//===----------------------------------------------------------------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
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
constexpr int64_t kMinThreads = 32; ///< A warp.

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
    auto partials = MemRefType::get(
        {threads}, type, nullptr,
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
    memref::StoreOp::create(b, fold.getResult(0), shared, thread);
    gpu::BarrierOp::create(b);

    // Halving: threads below `half` combine theirs with the one `half` above.
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
    Value total = memref::LoadOp::create(b, shared, ValueRange{constant(0)});
    Value old = memref::LoadOp::create(b, init->get(), at);
    memref::StoreOp::create(b, combined(old, total), init->get(), at);
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
