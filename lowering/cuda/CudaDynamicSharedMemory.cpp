//===- CudaDynamicSharedMemory.cpp - Large shared buffers, dynamically ------===//
//
// Kernels keep their shared buffers as workgroup attributions, which the NVVM
// lowering makes static `.shared` arrays; past 48 KiB a kernel's must be
// dynamic instead (Passes.td). Launches that need more are rebuilt here, at
// the end of the launch pipeline, so that everything before (and the
// emulation) deals with attributions only.
//===----------------------------------------------------------------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace peft {
#define GEN_PASS_DEF_CUDADYNAMICSHAREDMEMORY
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// What a kernel may declare statically.
constexpr int64_t kStaticSharedLimit = 48 * 1024;
/// Where each buffer starts in the dynamic block: more than any access
/// (ldmatrix rows and cp.async chunks are 16 bytes) needs.
constexpr int64_t kBufferAlignment = 128;

/// Each workgroup buffer's offset in one block, and the block's size; none
/// when a buffer's size is not known at compile time.
static std::optional<std::pair<SmallVector<int64_t>, int64_t>>
layOut(gpu::LaunchOp launch) {
  SmallVector<int64_t> offsets;
  int64_t total = 0;
  for (BlockArgument buffer : launch.getWorkgroupAttributions()) {
    auto type = cast<MemRefType>(buffer.getType());
    if (!type.hasStaticShape() || !type.getElementType().isIntOrFloat())
      return std::nullopt;
    total = llvm::alignTo(total, kBufferAlignment);
    offsets.push_back(total);
    total += type.getNumElements() * llvm::divideCeil(type.getElementTypeBitWidth(), 8);
  }
  return std::make_pair(offsets, total);
}

/// `launch` again, with its workgroup buffers views of its dynamic shared
/// memory at `offsets`, `total` bytes in all.
static void moveToDynamicSharedMemory(gpu::LaunchOp launch, ArrayRef<int64_t> offsets,
                                      int64_t total) {
  Location loc = launch.getLoc();
  OpBuilder b(launch);
  gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
  gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
  SmallVector<Type> privateTypes;
  for (BlockArgument buffer : launch.getPrivateAttributions())
    privateTypes.push_back(buffer.getType());
  Value bytes = arith::ConstantIntOp::create(b, loc, b.getI32Type(), total);
  Type token = launch.getAsyncToken() ? launch.getAsyncToken().getType() : Type();
  auto rebuilt = gpu::LaunchOp::create(b, loc, grid.x, grid.y, grid.z, block.x, block.y, block.z,
                                       bytes, token, launch.getAsyncDependencies(), TypeRange{},
                                       privateTypes);

  Block &from = launch.getBody().front(), &to = rebuilt.getBody().front();
  OpBuilder inside = OpBuilder::atBlockBegin(&to);
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  Value shared = gpu::DynamicSharedMemoryOp::create(
      inside, loc,
      MemRefType::get({ShapedType::kDynamic}, inside.getI8Type(), nullptr, workgroup));
  // The launch's ids and sizes, then its buffers, as the old body's
  // arguments are ordered.
  unsigned configuration = launch.getBody().getNumArguments() -
                           launch.getNumWorkgroupAttributions() -
                           launch.getNumPrivateAttributions();
  SmallVector<Value> replacements(to.getArguments().take_front(configuration));
  for (auto [buffer, offset] : llvm::zip(launch.getWorkgroupAttributions(), offsets)) {
    Value at = arith::ConstantIndexOp::create(inside, loc, offset);
    replacements.push_back(
        memref::ViewOp::create(inside, loc, buffer.getType(), shared, at, ValueRange{}));
  }
  llvm::append_range(replacements, rebuilt.getPrivateAttributions());
  for (auto [argument, replacement] : llvm::zip_equal(from.getArguments(), replacements))
    argument.replaceAllUsesWith(replacement);
  to.getOperations().splice(to.end(), from.getOperations());
  if (launch.getAsyncToken())
    launch.getAsyncToken().replaceAllUsesWith(rebuilt.getAsyncToken());
  launch.erase();
}

struct CudaDynamicSharedMemoryPass
    : peft::impl::CudaDynamicSharedMemoryBase<CudaDynamicSharedMemoryPass> {
  void runOnOperation() override {
    SmallVector<gpu::LaunchOp> launches;
    getOperation().walk([&](gpu::LaunchOp launch) { launches.push_back(launch); });
    for (gpu::LaunchOp launch : launches) {
      auto layout = layOut(launch);
      if (!layout || layout->second <= kStaticSharedLimit)
        continue;
      if (launch.getDynamicSharedMemorySize() || launch.hasClusterSize()) {
        launch.emitError("peft-cuda-dynamic-shared-memory: a launch with ")
            << layout->second
            << " bytes of workgroup buffers already has dynamic shared memory or clusters";
        return signalPassFailure();
      }
      moveToDynamicSharedMemory(launch, layout->first, layout->second);
    }
  }
};

} // namespace
