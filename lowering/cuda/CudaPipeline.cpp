//===- CudaPipeline.cpp - The CUDA target: linalg on tensors to PTX ---------===//
#include "lowering/cuda/CudaBackend.h"

#include "lowering/HostLibrary.h"
#include "lowering/Passes.h"
#include "lowering/Target.h"
#include "lowering/cpu/CpuBackend.h"
#include "lowering/cuda/Passes.h"
#include "support/OutputFile.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/Pipelines/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"

using namespace mlir;

namespace peft {

/// PTX 8.0: what sm_80 and sm_90 (and sm_90a) need, and what CUDA 12 and
/// later drivers load.
static constexpr llvm::StringLiteral kPtxFeatures = "+ptx80";

/// The artifact's copy of the PTX that model.so embeds.
static constexpr llvm::StringLiteral kKernelsFile = "kernels.ptx";

/// Bufferized, as loops, the kernels launched: what the GPU and the
/// emulation share. `sm80`: GEMMs use what sm_80 brought, mma.sync for half
/// types and cp.async; `gemmTile` as buildCudaCodegenPipeline's.
static void buildLaunchPipeline(OpPassManager &pm, bool sm80, int64_t gemmTile) {
  buildBufferizationPipeline(pm);
  pm.addPass(createCudaLaunchGemms(CudaLaunchGemmsOptions{/*tensorCores=*/sm80,
                                                          /*asyncCopies=*/sm80, gemmTile}));
  pm.addPass(createCudaLaunchReductions());
  // Every other map, reduction and GEMM as loops: parallel over the parallel
  // dimensions, serial over the reductions; each nest one kernel.
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCudaLaunchKernels());
}

void buildCudaEmulationPipeline(OpPassManager &pm, int64_t gemmTile) {
  buildLaunchPipeline(pm, /*sm80=*/true, gemmTile);
  pm.addPass(createCudaEmulateLaunches());
  buildCpuLoopsToLlvmPipeline(pm);
}

/// Whether `gpuArch` (sm_XY, sm_XYa) is sm_80 or later.
static bool isSm80OrLater(llvm::StringRef gpuArch) {
  unsigned version = 0;
  gpuArch.drop_front(3).take_while(llvm::isDigit).getAsInteger(10, version);
  return version >= 80;
}

void buildCudaCodegenPipeline(OpPassManager &pm, llvm::StringRef gpuArch, int64_t gemmTile) {
  buildLaunchPipeline(pm, isSm80OrLater(gpuArch), gemmTile);
  pm.addPass(createCudaDynamicSharedMemory());
  // Constants and index arithmetic into the kernels (canonicalization hoisted
  // them to the function), so that they are not kernel arguments.
  pm.addPass(createGpuLaunchSinkIndexComputationsPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createCudaGatherKernels());
  pm.addNestedPass<gpu::GPUModuleOp>(createCudaLowerMath());
  pm.addNestedPass<gpu::GPUModuleOp>(createCudaLowerMma());
  // Launches, allocations and copies as one chain of asynchronous ops (the
  // form the GPU runtime calls take), waited for at the end.
  pm.addNestedPass<func::FuncOp>(createGpuAsyncRegionPass());
  pm.addPass(createExpandShapeToReinterpretCast());
  // Kernels to NVVM and PTX (LLVM's NVPTX back end), the host to the LLVM
  // dialect with its launches.
  gpu::GPUToNVVMPipelineOptions nvvm;
  nvvm.cubinChip = gpuArch.str();
  nvvm.cubinFeatures = kPtxFeatures.str();
  nvvm.cubinFormat = "isa";
  nvvm.optLevel = 3;
  gpu::buildLowerToNVVMPassPipeline(pm, nvvm);
  pm.addPass(createEmitPackedEntry());
}

/// The kernels' PTX (one gpu.binary, peft-cuda-gather-kernels) as
/// `kernels.ptx` in `directory`; a comment where the model launches none.
static llvm::Error writePtxFile(ModuleOp module, llvm::StringRef directory) {
  auto binaries = llvm::to_vector(module.getOps<gpu::BinaryOp>());
  if (binaries.size() > 1)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the kernels are in more than one gpu.binary");
  llvm::StringRef ptx = "// This model launches no kernels.\n";
  if (!binaries.empty()) {
    gpu::BinaryOp binary = binaries.front();
    auto object = binary.getObjects().size() == 1
                      ? dyn_cast<gpu::ObjectAttr>(binary.getObjects()[0])
                      : gpu::ObjectAttr();
    if (!object || object.getFormat() != gpu::CompilationTarget::Assembly)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "gpu.binary @" + binary.getName() + " holds no PTX");
    ptx = object.getObject().getValue();
  }
  llvm::SmallString<256> path(directory);
  llvm::sys::path::append(path, kKernelsFile);
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    os << ptx;
    return llvm::Error::success();
  });
}

/// Sets `gemmTile` from `--gpu-gemm-tiles`: 64 or 128, or 0 for "auto" (or
/// none); an error for anything else.
static llvm::Error configureGemmTiles(const TargetOptions &options, int64_t &gemmTile) {
  llvm::StringRef tiles = options.gpuGemmTiles;
  if (tiles.empty() || tiles == "auto" || tiles == "64" || tiles == "128") {
    gemmTile = tiles == "64" ? 64 : tiles == "128" ? 128 : 0;
    return llvm::Error::success();
  }
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "--gpu-gemm-tiles must be auto, 64 or 128, got '" + tiles + "'");
}

namespace {

/// `--target cuda [--gpu-arch sm_80|sm_90]`: kernels in PTX, a host library
/// (model.so) that launches them through the runtime's CUDA driver calls.
class CudaTarget final : public Target {
public:
  llvm::StringRef name() const override { return "cuda"; }
  llvm::StringRef description() const override { return "NVIDIA GPUs (PTX through NVPTX)"; }

  llvm::Error configure(const TargetOptions &options) override {
    if (llvm::Error error = configureGemmTiles(options, gemmTile))
      return error;
    if (options.gpuArch.empty())
      return llvm::Error::success();
    if (!llvm::Regex("^sm_[0-9]+a?$").match(options.gpuArch))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "--gpu-arch must name an NVIDIA architecture such as "
                                     "sm_80 or sm_90, got '" +
                                         options.gpuArch + "'");
    gpuArch = options.gpuArch;
    return llvm::Error::success();
  }

  void registerDialects(DialectRegistry &registry) const override {
    registerBuiltinDialectTranslation(registry);
    registerLLVMDialectTranslation(registry);
    registerGPUDialectTranslation(registry);
    gpu::registerOffloadingLLVMTranslationInterfaceExternalModels(registry);
    registerNVVMDialectTranslation(registry);
    NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  }
  void buildTensorPipeline(OpPassManager &) const override {}
  void buildCodegenPipeline(OpPassManager &pm) const override {
    buildCudaCodegenPipeline(pm, gpuArch, gemmTile);
  }
  llvm::StringRef libraryFile() const override { return "model.so"; }
  std::vector<std::string> sourceFiles() const override { return {kKernelsFile.str()}; }
  llvm::Error writeLibrary(ModuleOp module, llvm::StringRef path,
                           TimingScope &timing) const override {
    if (llvm::Error error = writePtxFile(module, llvm::sys::path::parent_path(path)))
      return error;
    return compileHostLibrary(module, path, {"libpeft_cuda_model_support.a", kModelSupportLibrary},
                              timing);
  }

private:
  std::string gpuArch = "sm_80";
  int64_t gemmTile = 0;
};

/// `--target cuda-emulated`: the CUDA lowering with its kernels run serially
/// on the host (peft-cuda-emulate-launches), as a CPU library: the GPU
/// lowering's tests where there is no GPU.
class CudaEmulatedTarget final : public Target {
public:
  llvm::StringRef name() const override { return "cuda-emulated"; }
  llvm::StringRef description() const override {
    return "the CUDA lowering, its kernels run serially on the host (tests)";
  }
  llvm::Error configure(const TargetOptions &options) override {
    if (llvm::Error error = configureGemmTiles(options, gemmTile))
      return error;
    return Target::configure({options.gpuArch, ""}); // No GPU architecture.
  }
  void buildTensorPipeline(OpPassManager &) const override {}
  void buildCodegenPipeline(OpPassManager &pm) const override {
    buildCudaEmulationPipeline(pm, gemmTile);
  }
  llvm::StringRef libraryFile() const override { return "model.so"; }
  llvm::Error writeLibrary(ModuleOp module, llvm::StringRef path,
                           TimingScope &timing) const override {
    return compileHostLibrary(module, path, {kModelSupportLibrary}, timing);
  }

private:
  int64_t gemmTile = 0;
};

} // namespace

void registerCudaTarget() {
  registerPeftCudaPasses();
  registerTarget(std::make_unique<CudaTarget>());
  registerTarget(std::make_unique<CudaEmulatedTarget>());
}

} // namespace peft
