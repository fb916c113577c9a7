//===- CpuBackend.h - Native code for the host CPU --------------*- C++ -*-===//
#ifndef PEFT_LOWERING_CPU_CPUBACKEND_H
#define PEFT_LOWERING_CPU_CPUBACKEND_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Error.h"

namespace peft {

/// peft -> linalg on tensors, fused, with weights packed for the GEMM kernels:
/// the entry's signature is final after it (what the artifact describes).
void buildCpuTensorPipeline(mlir::OpPassManager &pm);

/// Linalg on tensors -> the LLVM dialect, for the host CPU.
void buildCpuCodegenPipeline(mlir::OpPassManager &pm);

/// Both of the above: peft + linalg on tensors -> the LLVM dialect.
void buildCpuLoweringPipeline(mlir::OpPassManager &pm);

/// Runs buildCpuTensorPipeline on `module` (whose entries went through
/// peft-externalize-weights), before the artifact is described.
llvm::Error lowerCpuTensors(mlir::ModuleOp module);

/// Registers `peft-cpu-lowering`, the pipeline above.
void registerCpuPipeline();

/// Lowers `module` (after lowerCpuTensors), optimizes it for the host CPU and links it into the shared library
/// `libraryPath`. Errors say which step failed.
llvm::Error compileCpuLibrary(mlir::ModuleOp module, llvm::StringRef libraryPath);

} // namespace peft

#endif // PEFT_LOWERING_CPU_CPUBACKEND_H
