//===- CudaBackend.h - PTX for NVIDIA GPUs ----------------------*- C++ -*-===//
#ifndef PEFT_LOWERING_CUDA_CUDABACKEND_H
#define PEFT_LOWERING_CUDA_CUDABACKEND_H

#include "mlir/Pass/PassManager.h"

namespace peft {

/// Registers the CUDA target ("cuda": PTX kernels and the host library that
/// launches them), its emulation on the host ("cuda-emulated") and the CUDA
/// back end's passes.
void registerCudaTarget();

/// Linalg on tensors (after the shared tensor pipeline) -> the LLVM dialect:
/// the host's code, and the kernels as PTX for `gpuArch` in gpu.binary ops.
/// `gemmTile`: the tiles of C tensor-core GEMMs take (64 or 128), or 0 to
/// choose by C's size.
void buildCudaCodegenPipeline(mlir::OpPassManager &pm, llvm::StringRef gpuArch,
                              int64_t gemmTile = 0);

/// The same lowering with the kernels run serially on the host, to the LLVM
/// dialect of a CPU library (--target cuda-emulated: tests without a GPU).
void buildCudaEmulationPipeline(mlir::OpPassManager &pm, int64_t gemmTile = 0);

} // namespace peft

#endif // PEFT_LOWERING_CUDA_CUDABACKEND_H
