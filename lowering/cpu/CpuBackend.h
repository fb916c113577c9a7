//===- CpuBackend.h - Native code for the host CPU --------------*- C++ -*-===//
#ifndef PEFT_LOWERING_CPU_CPUBACKEND_H
#define PEFT_LOWERING_CPU_CPUBACKEND_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/Error.h"

namespace peft {

/// Registers the CPU target ("cpu": native code for the host, model.so) and
/// the CPU back end's passes.
void registerCpuTarget();

/// After the shared tensor pipeline: GEMM weights packed for the kernels.
void buildCpuTensorPipeline(mlir::OpPassManager &pm);

/// Linalg on tensors (after buildCpuTensorPipeline) -> the LLVM dialect, for
/// the host CPU.
void buildCpuCodegenPipeline(mlir::OpPassManager &pm);

/// The CPU pipeline's tail: memrefs and loops (what is left of linalg,
/// vector, scf, math) to the LLVM dialect for the host, with the packed entry.
void buildCpuLoopsToLlvmPipeline(mlir::OpPassManager &pm);

} // namespace peft

#endif // PEFT_LOWERING_CPU_CPUBACKEND_H
