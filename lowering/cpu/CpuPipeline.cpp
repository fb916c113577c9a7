//===- CpuPipeline.cpp - The CPU target: linalg on tensors to model.so ------===//
#include "lowering/cpu/CpuBackend.h"

#include "lowering/HostLibrary.h"
#include "lowering/Target.h"
#include "lowering/cpu/Passes.h"

#include "mlir/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;

namespace peft {

/// After the shared tensor pipeline, in order: weights packed for the GEMM
/// kernels (the entry's signature is final from here); rows of maps and
/// reductions for the threads; the GEMM schedule (tiling, vectorization);
/// maps and reductions vectorized; bufferization with ownership-based
/// deallocation; the GEMM, convolution and pooling kernels; bufferization's
/// copies and fills in rows; parallel loops on the threads; conversion
/// of every dialect to LLVM; the packed entry.
static constexpr llvm::StringLiteral kToLoops =
    "convert-linalg-to-loops,convert-vector-to-scf{full-unroll=true},lower-affine,convert-scf-to-cf,"
    "canonicalize";
static constexpr llvm::StringLiteral kToLlvm =
    "convert-math-to-funcs,arith-expand{include-bf16=true},expand-strided-metadata,lower-affine,"
    "finalize-memref-to-llvm{use-generic-functions=true},"
    "convert-math-to-libm,convert-vector-to-llvm,convert-math-to-llvm,"
    "convert-arith-to-llvm,convert-func-to-llvm,"
    "convert-cf-to-llvm,convert-index-to-llvm,convert-ub-to-llvm,reconcile-unrealized-casts";

/// Appends an upstream pipeline spelled as text.
static void addUpstream(OpPassManager &pm, llvm::StringRef pipeline) {
  if (failed(parsePassPipeline(pipeline, pm, llvm::errs())))
    llvm::report_fatal_error("peft-mlir: the built-in CPU pipeline does not parse");
}

static bool hostHasAvx512() { return llvm::sys::getHostCPUFeatures().lookup("avx512f"); }

void buildCpuTensorPipeline(OpPassManager &pm) {
  // GEMMs on weights read them in panels of three AVX-512 vectors, or two
  // AVX2 vectors (bench/: the best of the shapes tried on Zen 4).
  CpuPackWeightsOptions packing;
  packing.tile = hostHasAvx512() ? 48 : 16;
  pm.addPass(createCpuPackWeights(packing));
}

void buildCpuCodegenPipeline(OpPassManager &pm) {
  registerUpstreamPasses();
  bool avx512 = hostHasAvx512();
  pm.addPass(createCpuDistributeLoops());
  // Other GEMMs: register tiles of one AVX-512 vector, or two AVX2 vectors, per row.
  CpuTileAndVectorizeOptions tiles;
  tiles.microCols = avx512 ? 32 : 16;
  pm.addPass(createCpuTileAndVectorize(tiles));
  CpuVectorizeElementwiseOptions vectors;
  vectors.vectorWidth = avx512 ? 16 : 8;
  pm.addPass(createCpuVectorizeElementwise(vectors));
  buildBufferizationPipeline(pm);
  // Panel GEMMs: register tiles of 8 rows (24 of AVX-512's 32 registers)
  // or 6 (12 of AVX2's 16). AVX2's 16-wide panels take a K block of 1024
  // (64 KB, in L2): a K of 1024 in one block, without storing and reloading
  // the sums (bench/gemm_bench.py, AMD EPYC: 1-3 % on 512x1024xN, the same
  // on BERT's K of 768 and 3072).
  CpuLowerPanelGemmsOptions kernels;
  kernels.microRows = avx512 ? 8 : 6;
  if (!avx512)
    kernels.kBlock = 1024;
  kernels.vectorWidth = avx512 ? 16 : 8;
  kernels.rowTile = avx512 ? 48 : 16;
  pm.addPass(createCpuLowerPanelGemms(kernels));
  // Convolutions read through a window: the same register tiles.
  CpuLowerWindowGemmsOptions windows;
  windows.microRows = kernels.microRows;
  windows.vectorWidth = kernels.vectorWidth;
  windows.tile = kernels.rowTile;
  pm.addPass(createCpuLowerWindowGemms(windows));
  CpuLowerWindowReductionsOptions pooling;
  pooling.vectorWidth = kernels.vectorWidth;
  pm.addPass(createCpuLowerWindowReductions(pooling));
  // After the kernels: their epilogues may compute erf, tanh or exp.
  pm.addPass(createCpuApproximateMath());
  pm.addPass(createCpuDistributeCopies());
  pm.addPass(createCpuLowerForall());
  buildCpuLoopsToLlvmPipeline(pm);
}

void buildCpuLoopsToLlvmPipeline(OpPassManager &pm) {
  registerUpstreamPasses();
  addUpstream(pm, kToLoops);
  pm.addPass(createExpandShapeToReinterpretCast());
  addUpstream(pm, kToLlvm);
  pm.addPass(createEmitPackedEntry());
}

namespace {

class CpuTarget final : public Target {
public:
  llvm::StringRef name() const override { return "cpu"; }
  llvm::StringRef description() const override { return "host CPU"; }
  void buildTensorPipeline(OpPassManager &pm) const override { buildCpuTensorPipeline(pm); }
  void buildCodegenPipeline(OpPassManager &pm) const override { buildCpuCodegenPipeline(pm); }
  llvm::StringRef libraryFile() const override { return "model.so"; }
  llvm::Error writeLibrary(ModuleOp module, llvm::StringRef path,
                           TimingScope &timing) const override {
    return compileHostLibrary(module, path, {kModelSupportLibrary}, timing);
  }
};

} // namespace

void registerCpuTarget() {
  registerPeftCpuPasses();
  registerTarget(std::make_unique<CpuTarget>());
}

} // namespace peft
