//===- CudaEmulateLaunches.cpp - Kernels as loops on the host ---------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/IRMapping.h"

namespace peft {
#define GEN_PASS_DEF_CUDAEMULATELAUNCHES
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

struct CudaEmulateLaunchesPass
    : peft::impl::CudaEmulateLaunchesBase<CudaEmulateLaunchesPass> {
  void runOnOperation() override {
    SmallVector<gpu::LaunchOp> launches;
    getOperation().walk([&](gpu::LaunchOp launch) { launches.push_back(launch); });
    for (gpu::LaunchOp launch : launches) {
      if (launch.getAsyncToken() || launch.hasClusterSize() ||
          launch.getDynamicSharedMemorySize() || launch.getNumWorkgroupAttributions() ||
          launch.getNumPrivateAttributions()) {
        launch.emitError("peft-cuda-emulate-launches: only plain synchronous launches run "
                         "on the host");
        return signalPassFailure();
      }
      emulate(launch);
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

  /// for bz, by, bx, tz, ty, tx: the body, its ids and sizes mapped.
  static void emulate(gpu::LaunchOp launch) {
    OpBuilder b(launch);
    Location loc = launch.getLoc();
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
    gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
    IRMapping mapping;
    gpu::KernelDim3 gridArgs = launch.getGridSize(), blockArgs = launch.getBlockSize();
    for (auto [arg, value] : llvm::zip(SmallVector<Value>{gridArgs.x, gridArgs.y, gridArgs.z,
                                                         blockArgs.x, blockArgs.y, blockArgs.z},
                                       SmallVector<Value>{grid.x, grid.y, grid.z, block.x,
                                                          block.y, block.z}))
      mapping.map(arg, value);
    gpu::KernelDim3 blockIds = launch.getBlockIds(), threadIds = launch.getThreadIds();
    SmallVector<std::pair<Value, Value>> loops = {
        {blockIds.z, grid.z},     {blockIds.y, grid.y},   {blockIds.x, grid.x},
        {threadIds.z, block.z}, {threadIds.y, block.y}, {threadIds.x, block.x}};
    for (auto [id, size] : loops) {
      auto loop = scf::ForOp::create(b, loc, zero, size, one);
      mapping.map(id, loop.getInductionVar());
      b.setInsertionPoint(loop.getBody()->getTerminator());
    }
    Block &body = launch.getBody().front();
    for (Operation &op : body.without_terminator())
      b.clone(op, mapping);
    launch.erase();
  }
};

} // namespace
