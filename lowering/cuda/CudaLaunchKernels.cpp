//===- CudaLaunchKernels.cpp - Loop nests that touch memory as kernels -----===//
//
// After this pass a host function allocates device buffers, takes views and
// launches kernels; it never reads or writes memory itself (Passes.td).
//===----------------------------------------------------------------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace peft {
#define GEN_PASS_DEF_CUDALAUNCHKERNELS
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// Whether `op`, or an op nested in it, reads or writes memory (allocating,
/// freeing, views and sizes do not).
static bool touchesMemory(Operation *op) {
  WalkResult result = op->walk<WalkOrder::PreOrder>([](Operation *nested) {
    if (isa<gpu::LaunchOp>(nested)) // Already a kernel (peft-cuda-launch-gemms).
      return WalkResult::skip();
    if (isa<memref::AllocOp, memref::AllocaOp, memref::DeallocOp, memref::DimOp,
            memref::ExtractStridedMetadataOp, ViewLikeOpInterface>(nested))
      return WalkResult::advance();
    if (auto effects = dyn_cast<MemoryEffectOpInterface>(nested))
      return effects.hasEffect<MemoryEffects::Read>() || effects.hasEffect<MemoryEffects::Write>()
                 ? WalkResult::interrupt()
                 : WalkResult::advance();
    // Without the interface: regions are looked into; a call or an unknown
    // op given a memref may touch it.
    if (nested->getNumRegions() > 0)
      return WalkResult::advance();
    return llvm::any_of(nested->getOperandTypes(), llvm::IsaPred<BaseMemRefType>)
               ? WalkResult::interrupt()
               : WalkResult::advance();
  });
  return result.wasInterrupted();
}

/// `copy` as an scf.parallel of loads and stores (a kernel's body next).
static void copyAsLoops(memref::CopyOp copy) {
  auto type = cast<MemRefType>(copy.getSource().getType());
  if (type.getRank() == 0)
    return; // One element: a kernel of one thread.
  OpBuilder b(copy);
  Location loc = copy.getLoc();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  SmallVector<Value> lower(type.getRank(), zero), upper, steps(type.getRank(), one);
  for (int64_t d = 0; d < type.getRank(); ++d)
    upper.push_back(memref::DimOp::create(b, loc, copy.getSource(), d));
  Value source = copy.getSource(), target = copy.getTarget();
  scf::ParallelOp::create(b, loc, lower, upper, steps,
                          [&](OpBuilder &nested, Location at, ValueRange indices) {
                            Value value = memref::LoadOp::create(nested, at, source, indices);
                            memref::StoreOp::create(nested, at, value, target, indices);
                          });
  copy.erase();
}

/// A launch of `blocks` blocks of `threads` threads (x only) before `at`,
/// its body ending in the terminator the builder is left before.
static gpu::LaunchOp createLaunch(OpBuilder &b, Location loc, Value blocks, Value threads) {
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  auto launch = gpu::LaunchOp::create(b, loc, blocks, one, one, threads, one, one);
  b.setInsertionPointToStart(&launch.getBody().front());
  auto terminator = gpu::TerminatorOp::create(b, loc);
  b.setInsertionPoint(terminator);
  return launch;
}

struct CudaLaunchKernelsPass : peft::impl::CudaLaunchKernelsBase<CudaLaunchKernelsPass> {
  using CudaLaunchKernelsBase::CudaLaunchKernelsBase;

  void runOnOperation() override {
    if (blockSize < 1 || blockSize > 1024) {
      getOperation().emitError("peft-cuda-launch-kernels: block-size must be in [1, 1024]");
      return signalPassFailure();
    }
    for (auto function : getOperation().getOps<func::FuncOp>())
      if (!function.isExternal() && failed(runOnFunction(function)))
        return signalPassFailure();
  }

  LogicalResult runOnFunction(func::FuncOp function) {
    SmallVector<memref::CopyOp> copies;
    function.walk([&](memref::CopyOp copy) { copies.push_back(copy); });
    for (memref::CopyOp copy : copies)
      copyAsLoops(copy);
    globalsToDevice(function);
    for (Block &block : function.getBody()) {
      SmallVector<Operation *> ops = llvm::map_to_vector(block, [](Operation &op) { return &op; });
      for (Operation *op : ops) {
        if (auto loop = dyn_cast<scf::ParallelOp>(op)) {
          if (failed(launchParallel(loop)))
            return failure();
        } else if (!isa<gpu::GPUDialect>(op->getDialect()) && touchesMemory(op)) {
          if (failed(launchSerial(op)))
            return failure();
        }
      }
    }
    allocateOnDevice(function);
    return success();
  }

  /// One thread per iteration of `loop`, the iterations linearized with the
  /// last dimension fastest.
  LogicalResult launchParallel(scf::ParallelOp loop) {
    if (!loop.getInitVals().empty())
      return loop.emitError("peft-cuda-launch-kernels: a parallel loop with reductions "
                            "cannot run as a kernel");
    OpBuilder b(loop);
    Location loc = loop.getLoc();
    SmallVector<Value> counts;
    Value total = arith::ConstantIndexOp::create(b, loc, 1);
    for (auto [lower, upper, step] :
         llvm::zip(loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
      Value span = arith::SubIOp::create(b, loc, upper, lower);
      counts.push_back(arith::CeilDivUIOp::create(b, loc, span, step));
      total = arith::MulIOp::create(b, loc, total, counts.back());
    }
    Value threads = arith::ConstantIndexOp::create(b, loc, blockSize);
    Value blocks = arith::CeilDivUIOp::create(b, loc, total, threads);
    // An empty space launches nothing (CUDA refuses a grid of 0 blocks).
    Value any = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, total,
                                      arith::ConstantIndexOp::create(b, loc, 0));
    auto nonEmpty = scf::IfOp::create(b, loc, any, /*withElseRegion=*/false);
    b.setInsertionPointToStart(&nonEmpty.getThenRegion().front());
    gpu::LaunchOp launch = createLaunch(b, loc, blocks, threads);
    Value id = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, launch.getBlockIds().x, threads),
        launch.getThreadIds().x);
    Value inside = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, id, total);
    auto guard = scf::IfOp::create(b, loc, inside, /*withElseRegion=*/false);
    b.setInsertionPointToStart(&guard.getThenRegion().front());
    IRMapping mapping;
    Value rest = id;
    for (int64_t d = counts.size() - 1; d >= 0; --d) {
      Value index = d == 0 ? rest : arith::RemUIOp::create(b, loc, rest, counts[d]).getResult();
      if (d > 0)
        rest = arith::DivUIOp::create(b, loc, rest, counts[d]);
      Value iv = arith::AddIOp::create(
          b, loc, loop.getLowerBound()[d],
          arith::MulIOp::create(b, loc, index, loop.getStep()[d]));
      mapping.map(loop.getInductionVars()[d], iv);
    }
    for (Operation &nested : loop.getBody()->without_terminator())
      b.clone(nested, mapping);
    loop.erase();
    return success();
  }

  /// `op` (a reduction to one element, a lone load and store) in a kernel of
  /// one thread.
  LogicalResult launchSerial(Operation *op) {
    for (Value result : op->getResults())
      if (!result.use_empty())
        return op->emitError("peft-cuda-launch-kernels: host code would use a value read "
                             "from device memory");
    OpBuilder b(op);
    Value one = arith::ConstantIndexOp::create(b, op->getLoc(), 1);
    createLaunch(b, op->getLoc(), one, one);
    op->moveBefore(b.getInsertionBlock(), b.getInsertionPoint());
    return success();
  }

  /// Each constant global the function reads: a device buffer filled from
  /// the host's copy at the start, freed before each return.
  void globalsToDevice(func::FuncOp function) {
    SmallVector<memref::GetGlobalOp> globals;
    function.walk([&](memref::GetGlobalOp global) { globals.push_back(global); });
    for (memref::GetGlobalOp global : globals) {
      OpBuilder b(global);
      b.setInsertionPointAfter(global);
      Location loc = global.getLoc();
      auto device = gpu::AllocOp::create(b, loc, global.getType(), Type(), ValueRange{},
                                         ValueRange{}, ValueRange{});
      Value buffer = device.getMemref();
      global.getResult().replaceAllUsesWith(buffer);
      gpu::MemcpyOp::create(b, loc, Type(), ValueRange{}, buffer, global.getResult());
      bool returned = false;
      for (OpOperand &use : buffer.getUses())
        returned |= isa<func::ReturnOp>(use.getOwner());
      if (returned)
        continue;
      function.walk([&](func::ReturnOp ret) {
        OpBuilder before(ret);
        gpu::DeallocOp::create(before, loc, Type(), ValueRange{}, buffer);
      });
    }
  }

  /// Allocations and frees on the host become the device's.
  void allocateOnDevice(func::FuncOp function) {
    SmallVector<Operation *> ops;
    function.walk([&](Operation *op) {
      if (op->getParentOfType<gpu::LaunchOp>())
        return;
      if (isa<memref::AllocOp, memref::DeallocOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      OpBuilder b(op);
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        auto device = gpu::AllocOp::create(b, alloc.getLoc(), alloc.getType(), Type(),
                                           ValueRange{}, alloc.getDynamicSizes(),
                                           alloc.getSymbolOperands());
        alloc.getResult().replaceAllUsesWith(device.getMemref());
      } else {
        gpu::DeallocOp::create(b, op->getLoc(), Type(), ValueRange{},
                               cast<memref::DeallocOp>(op).getMemref());
      }
      op->erase();
    }
  }
};

} // namespace
