//===- CudaGatherKernels.cpp - Every kernel in one gpu.module ---------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/SymbolTable.h"

namespace peft {
#define GEN_PASS_DEF_CUDAGATHERKERNELS
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// Bytes: what ldmatrix's rows and 16-byte asynchronous copies need.
constexpr int64_t kSharedAlignment = 16;

/// Declares the symbol the NVVM lowering of gpu.dynamic_shared_memory takes
/// (an empty i8 array in shared memory, 16-byte aligned: it reuses one it
/// finds) as external. The lowering's own is internal, which NVPTX prints as
/// a one-byte `.shared` variable (or demotes into the kernel) rather than
/// the `.extern .shared ... []` that names the launch's dynamic block.
static void declareDynamicSharedMemory(gpu::GPUModuleOp kernels) {
  if (!kernels.walk([](gpu::DynamicSharedMemoryOp) { return WalkResult::interrupt(); })
           .wasInterrupted())
    return;
  OpBuilder builder = OpBuilder::atBlockBegin(kernels.getBody());
  auto type = LLVM::LLVMArrayType::get(builder.getI8Type(), 0);
  LLVM::GlobalOp::create(builder, kernels.getLoc(), type, /*isConstant=*/false,
                         LLVM::Linkage::External, "__dynamic_shmem__", Attribute(),
                         kSharedAlignment, static_cast<unsigned>(NVVM::NVVMMemorySpace::Shared));
}

struct CudaGatherKernelsPass : peft::impl::CudaGatherKernelsBase<CudaGatherKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<gpu::GPUModuleOp> outlined = llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
    if (outlined.empty())
      return;
    OpBuilder builder(outlined.front());
    auto kernels = gpu::GPUModuleOp::create(builder, module.getLoc(), "kernels");
    SymbolTable symbols(module);
    symbols.insert(kernels); // Unique: `kernels`, or `kernels_N` beside a function of that name.
    SymbolTable kernelSymbols(kernels);
    // Where each (module, kernel) went.
    llvm::DenseMap<std::pair<StringAttr, StringAttr>, StringAttr> moved;
    for (gpu::GPUModuleOp source : outlined) {
      for (Operation &op : llvm::make_early_inc_range(source.getBody()->getOperations())) {
        auto function = dyn_cast<gpu::GPUFuncOp>(op);
        if (!function)
          continue;
        StringAttr from = function.getNameAttr();
        function->moveBefore(kernels.getBody(), kernels.getBody()->end());
        function.setName(source.getName());
        // ldmatrix reads 16-byte rows; NVVM would align the buffer to its element.
        for (unsigned i = 0; i < function.getNumWorkgroupAttributions(); ++i)
          function.setWorkgroupAttributionAttr(i, LLVM::LLVMDialect::getAlignAttrName(),
                                               builder.getI64IntegerAttr(kSharedAlignment));
        kernelSymbols.insert(function); // Renames on a clash.
        moved[{source.getNameAttr(), from}] = function.getNameAttr();
      }
      if (!source.getBody()->without_terminator().empty()) {
        source.emitError("peft-cuda-gather-kernels: a kernel module holds more than kernels");
        return signalPassFailure();
      }
      source.erase();
    }
    declareDynamicSharedMemory(kernels);
    module.walk([&](gpu::LaunchFuncOp launch) {
      auto it = moved.find({launch.getKernelModuleName(), launch.getKernelName()});
      if (it == moved.end())
        return;
      launch.setKernelAttr(SymbolRefAttr::get(kernels.getNameAttr(),
                                              {FlatSymbolRefAttr::get(it->second)}));
    });
  }
};

} // namespace
