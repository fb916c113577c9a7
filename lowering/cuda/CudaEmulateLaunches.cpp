//===- CudaEmulateLaunches.cpp - Kernels as loops on the host ---------------===//
//
// A block's threads run one after another, so a barrier splits the kernel
// into phases, each a loop over the threads (Passes.td). Between phases a
// thread keeps nothing but memory: a value a later phase uses is recomputed
// there from its operands, which works for the index arithmetic kernels
// share between phases and is refused for anything read from memory.
//===----------------------------------------------------------------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"

namespace peft {
#define GEN_PASS_DEF_CUDAEMULATELAUNCHES
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

static bool containsBarrier(Operation *op) {
  return op->walk([](gpu::BarrierOp) { return WalkResult::interrupt(); }).wasInterrupted();
}

/// Emulates one launch: the blocks as loops, in each the phases between
/// barriers as loops over the threads.
class LaunchEmulator {
public:
  explicit LaunchEmulator(gpu::LaunchOp launch) : launch(launch), b(launch) {}

  LogicalResult emulate() {
    Location loc = launch.getLoc();
    zero = arith::ConstantIndexOp::create(b, loc, 0);
    one = arith::ConstantIndexOp::create(b, loc, 1);
    grid = launch.getGridSizeOperandValues();
    block = launch.getBlockSizeOperandValues();
    gpu::KernelDim3 gridArgs = launch.getGridSize(), blockArgs = launch.getBlockSize();
    IRMapping uniform;
    for (auto [arg, value] : llvm::zip(SmallVector<Value>{gridArgs.x, gridArgs.y, gridArgs.z,
                                                         blockArgs.x, blockArgs.y, blockArgs.z},
                                       SmallVector<Value>{grid.x, grid.y, grid.z, block.x,
                                                          block.y, block.z}))
      uniform.map(arg, value);
    carriedInPrivateMemory();
    if (failed(hostAttributions(uniform)))
      return failure();
    gpu::KernelDim3 blockIds = launch.getBlockIds();
    for (auto [id, size] : SmallVector<std::pair<Value, Value>>{
             {blockIds.z, grid.z}, {blockIds.y, grid.y}, {blockIds.x, grid.x}}) {
      auto loop = scf::ForOp::create(b, loc, zero, size, one);
      uniform.map(id, loop.getInductionVar());
      b.setInsertionPoint(loop.getBody()->getTerminator());
    }
    Block &body = launch.getBody().front();
    if (failed(emitPhases(body.begin(), std::prev(body.end()), uniform)))
      return failure();
    b.setInsertionPointAfter(launch);
    for (Value buffer : hostBuffers)
      memref::DeallocOp::create(b, loc, buffer);
    launch.erase();
    return success();
  }

private:
  /// Values a loop holding barriers carries (a thread's accumulators) kept in
  /// private memory instead, so that they cross the barriers: stored before
  /// the loop and at the end of each step, loaded where each is used (so in
  /// each phase that uses it) and after the loop.
  void carriedInPrivateMemory() {
    SmallVector<scf::ForOp> loops;
    launch.getBody().walk([&](scf::ForOp loop) {
      if (!loop.getInitArgs().empty() && containsBarrier(loop))
        loops.push_back(loop);
    });
    for (scf::ForOp loop : loops) {
      Location loc = loop.getLoc();
      OpBuilder b(loop);
      Value zero = arith::ConstantIndexOp::create(b, loc, 0);
      SmallVector<Value> slots;
      for (Value init : loop.getInitArgs()) {
        slots.push_back(launch.addPrivateAttribution(
            MemRefType::get({1}, init.getType(), nullptr,
                            gpu::AddressSpaceAttr::get(b.getContext(),
                                                       gpu::AddressSpace::Private)),
            loc));
        memref::StoreOp::create(b, loc, init, slots.back(), zero);
      }
      auto plain = scf::ForOp::create(b, loc, loop.getLowerBound(), loop.getUpperBound(),
                                      loop.getStep());
      Block *body = loop.getBody();
      Operation *yield = body->getTerminator();
      for (auto [arg, yielded, slot] :
           llvm::zip(loop.getRegionIterArgs(), yield->getOperands(), slots)) {
        if (yielded == arg)
          continue; // Unchanged: already in its slot.
        // Each use reads the slot; the step's new value is stored once
        // nothing after it needs the old one (and it exists).
        Operation *last = nullptr;
        if (Operation *def = yielded.getDefiningOp(); def && loop->isProperAncestor(def))
          last = body->findAncestorOpInBlock(*def);
        for (OpOperand &use : llvm::make_early_inc_range(arg.getUses())) {
          if (use.getOwner() == yield)
            continue;
          OpBuilder at(use.getOwner());
          use.set(memref::LoadOp::create(at, loc, slot,
                                         arith::ConstantIndexOp::create(at, loc, 0).getResult()));
          Operation *user = body->findAncestorOpInBlock(*use.getOwner());
          if (!last || last->isBeforeInBlock(user))
            last = user;
        }
        OpBuilder at = last ? OpBuilder(body, std::next(last->getIterator()))
                            : OpBuilder::atBlockBegin(body);
        memref::StoreOp::create(at, loc, yielded, slot,
                                arith::ConstantIndexOp::create(at, loc, 0).getResult());
      }
      OpBuilder inside = OpBuilder::atBlockBegin(plain.getBody());
      IRMapping mapping;
      mapping.map(loop.getInductionVar(), plain.getInductionVar());
      for (Operation &op : body->without_terminator())
        inside.clone(op, mapping);
      b.setInsertionPointAfter(plain);
      for (auto [result, slot] : llvm::zip(loop.getResults(), slots))
        result.replaceAllUsesWith(memref::LoadOp::create(b, loc, slot, zero).getResult());
      loop.erase();
    }
  }

  /// Workgroup memory as one host buffer (blocks run one after another);
  /// private memory as one buffer with a row per thread, its loads and stores
  /// indexed by the thread first.
  LogicalResult hostAttributions(IRMapping &uniform) {
    Location loc = launch.getLoc();
    for (BlockArgument attribution : launch.getWorkgroupAttributions()) {
      auto type = cast<MemRefType>(attribution.getType());
      auto buffer = memref::AllocOp::create(
          b, loc, MemRefType::get(type.getShape(), type.getElementType()));
      hostBuffers.push_back(buffer);
      uniform.map(attribution, buffer.getResult());
    }
    if (launch.getPrivateAttributions().empty())
      return success();
    Value threads = arith::MulIOp::create(
        b, loc, arith::MulIOp::create(b, loc, block.x, block.y), block.z);
    // The linear thread id, at the kernel's start; phases recompute it.
    OpBuilder atStart(&launch.getBody().front(), launch.getBody().front().begin());
    gpu::KernelDim3 ids = launch.getThreadIds(), sizes = launch.getBlockSize();
    Value thread = arith::AddIOp::create(
        atStart, loc, ids.x,
        arith::MulIOp::create(atStart, loc, sizes.x,
                              arith::AddIOp::create(atStart, loc, ids.y,
                                                    arith::MulIOp::create(atStart, loc,
                                                                          sizes.y, ids.z))));
    for (BlockArgument attribution : launch.getPrivateAttributions()) {
      auto type = cast<MemRefType>(attribution.getType());
      SmallVector<int64_t> shape = {ShapedType::kDynamic};
      llvm::append_range(shape, type.getShape());
      auto buffer = memref::AllocOp::create(
          b, loc, MemRefType::get(shape, type.getElementType()), ValueRange{threads});
      hostBuffers.push_back(buffer);
      for (OpOperand &use : llvm::make_early_inc_range(attribution.getUses())) {
        Operation *user = use.getOwner();
        OpBuilder at(user);
        if (auto load = dyn_cast<memref::LoadOp>(user)) {
          SmallVector<Value> indices = {thread};
          llvm::append_range(indices, load.getIndices());
          load.replaceAllUsesWith(
              memref::LoadOp::create(at, load.getLoc(), buffer, indices).getResult());
          load.erase();
        } else if (auto store = dyn_cast<memref::StoreOp>(user);
                   store && use.getOperandNumber() == 1) {
          SmallVector<Value> indices = {thread};
          llvm::append_range(indices, store.getIndices());
          memref::StoreOp::create(at, store.getLoc(), store.getValue(), buffer, indices);
          store.erase();
        } else {
          return user->emitError("peft-cuda-emulate-launches: private memory is only "
                                 "loaded from and stored to");
        }
      }
    }
    return success();
  }

  /// Emits the ops [begin, end) of the kernel: runs without barriers as loops
  /// over the threads; an scf.for holding barriers as a loop around its own
  /// phases, its bounds the same for every thread.
  LogicalResult emitPhases(Block::iterator begin, Block::iterator end, IRMapping uniform) {
    SmallVector<Operation *> phase;
    for (Operation &op : llvm::make_range(begin, end)) {
      if (!containsBarrier(&op)) {
        phase.push_back(&op);
        continue;
      }
      if (failed(emitPhase(phase, uniform)))
        return failure();
      phase.clear();
      if (isa<gpu::BarrierOp>(op))
        continue;
      auto loop = dyn_cast<scf::ForOp>(op);
      if (!loop)
        return op.emitError("peft-cuda-emulate-launches: a barrier must be in the kernel's "
                            "body or in its loops");
      SmallVector<Value> bounds;
      for (Value bound : {loop.getLowerBound(), loop.getUpperBound(), loop.getStep()}) {
        FailureOr<Value> value = materialize(bound, uniform, &op);
        if (failed(value))
          return failure();
        bounds.push_back(*value);
      }
      auto emulated = scf::ForOp::create(b, loop.getLoc(), bounds[0], bounds[1], bounds[2]);
      IRMapping inner = uniform;
      inner.map(loop.getInductionVar(), emulated.getInductionVar());
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(emulated.getBody()->getTerminator());
      Block *loopBody = loop.getBody();
      if (failed(emitPhases(loopBody->begin(), std::prev(loopBody->end()), inner)))
        return failure();
    }
    return emitPhase(phase, uniform);
  }

  /// `ops` for each thread (z, y, x), the values of earlier phases they use
  /// recomputed.
  LogicalResult emitPhase(ArrayRef<Operation *> ops, const IRMapping &uniform) {
    if (ops.empty())
      return success();
    OpBuilder::InsertionGuard guard(b);
    IRMapping mapping = uniform;
    gpu::KernelDim3 ids = launch.getThreadIds();
    for (auto [id, size] :
         SmallVector<std::pair<Value, Value>>{{ids.z, block.z}, {ids.y, block.y}, {ids.x, block.x}}) {
      auto loop = scf::ForOp::create(b, launch.getLoc(), zero, size, one);
      mapping.map(id, loop.getInductionVar());
      b.setInsertionPoint(loop.getBody()->getTerminator());
    }
    for (Operation *op : ops) {
      SetVector<Value> used(op->getOperands().begin(), op->getOperands().end());
      getUsedValuesDefinedAbove(op->getRegions(), used);
      for (Value value : used)
        if (failed(materialize(value, mapping, op)))
          return failure();
      b.clone(*op, mapping);
    }
    return success();
  }

  /// `value` where the builder is: as mapped, from outside the kernel, or
  /// recomputed from its operands if memory has no part in it.
  FailureOr<Value> materialize(Value value, IRMapping &mapping, Operation *user) {
    if (mapping.contains(value) || !launch.getBody().isAncestor(value.getParentRegion()))
      return mapping.lookupOrDefault(value);
    Operation *def = value.getDefiningOp();
    if (!def || def->getNumRegions() != 0 || !isMemoryEffectFree(def))
      return user->emitError("peft-cuda-emulate-launches: a value ")
             << (def ? "read from memory" : "of a single thread")
             << " is used across a barrier";
    for (Value operand : def->getOperands())
      if (failed(materialize(operand, mapping, user)))
        return failure();
    b.clone(*def, mapping);
    return mapping.lookup(value);
  }

  gpu::LaunchOp launch;
  OpBuilder b;
  Value zero, one;
  gpu::KernelDim3 grid, block;
  SmallVector<Value> hostBuffers;
};

/// Asynchronous copies as the copies they are, done at once: each of the
/// `dstElements` elements read from the source (the first `srcElements`,
/// zeros after), and nothing left to wait for.
static void copyAtOnce(ModuleOp module) {
  module.walk([](nvgpu::DeviceAsyncWaitOp wait) { wait.erase(); });
  module.walk([](nvgpu::DeviceAsyncCreateGroupOp group) { group.erase(); });
  module.walk([](nvgpu::DeviceAsyncCopyOp copy) {
    OpBuilder b(copy);
    Location loc = copy.getLoc();
    Type element = copy.getDst().getType().getElementType();
    Value zero = arith::ConstantOp::create(b, loc, b.getZeroAttr(element));
    for (int64_t e = 0; e < copy.getDstElements().getZExtValue(); ++e) {
      Value offset = arith::ConstantIndexOp::create(b, loc, e);
      auto shifted = [&](ValueRange indices) {
        SmallVector<Value> at(indices);
        at.back() = arith::AddIOp::create(b, loc, at.back(), offset);
        return at;
      };
      SmallVector<Value> from = shifted(copy.getSrcIndices());
      Value value;
      if (Value count = copy.getSrcElements()) {
        Value read = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, offset, count);
        auto load = scf::IfOp::create(b, loc, TypeRange{element}, read, /*withElse=*/true);
        OpBuilder inside = load.getThenBodyBuilder();
        scf::YieldOp::create(
            inside, loc, memref::LoadOp::create(inside, loc, copy.getSrc(), from).getResult());
        OpBuilder outside = load.getElseBodyBuilder();
        scf::YieldOp::create(outside, loc, zero);
        value = load.getResult(0);
      } else {
        value = memref::LoadOp::create(b, loc, copy.getSrc(), from);
      }
      memref::StoreOp::create(b, loc, value, copy.getDst(), shifted(copy.getDstIndices()));
    }
    copy.erase();
  });
}

struct CudaEmulateLaunchesPass
    : peft::impl::CudaEmulateLaunchesBase<CudaEmulateLaunchesPass> {
  void runOnOperation() override {
    copyAtOnce(getOperation());
    SmallVector<gpu::LaunchOp> launches;
    getOperation().walk([&](gpu::LaunchOp launch) { launches.push_back(launch); });
    for (gpu::LaunchOp launch : launches) {
      if (launch.getAsyncToken() || launch.hasClusterSize() ||
          launch.getDynamicSharedMemorySize()) {
        launch.emitError("peft-cuda-emulate-launches: only synchronous launches without "
                         "clusters or dynamic shared memory run on the host");
        return signalPassFailure();
      }
      if (failed(LaunchEmulator(launch).emulate()))
        return signalPassFailure();
    }
    getOperation().walk([&](Operation *op) {
      OpBuilder b(op);
      if (auto alloc = dyn_cast<gpu::AllocOp>(op)) {
        auto host = memref::AllocOp::create(b, alloc.getLoc(), alloc.getType(),
                                            alloc.getDynamicSizes(), alloc.getSymbolOperands());
        alloc.getMemref().replaceAllUsesWith(host.getResult());
        alloc.erase();
      } else if (auto dealloc = dyn_cast<gpu::DeallocOp>(op)) {
        memref::DeallocOp::create(b, dealloc.getLoc(), dealloc.getMemref());
        dealloc.erase();
      } else if (auto copy = dyn_cast<gpu::MemcpyOp>(op)) {
        memref::CopyOp::create(b, copy.getLoc(), copy.getSrc(), copy.getDst());
        copy.erase();
      }
    });
  }
};

} // namespace
