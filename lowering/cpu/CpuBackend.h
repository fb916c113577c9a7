//===- CpuBackend.h - Native code for the host CPU --------------*- C++ -*-===//
#ifndef PEFT_LOWERING_CPU_CPUBACKEND_H
#define PEFT_LOWERING_CPU_CPUBACKEND_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Error.h"

namespace peft {

/// peft + linalg on tensors -> the LLVM dialect, for the host CPU.
void buildCpuLoweringPipeline(mlir::OpPassManager &pm);

/// Registers `peft-cpu-lowering`, the pipeline above.
void registerCpuPipeline();

/// Lowers `module` (whose entries went through peft-externalize-weights),
/// optimizes it for the host CPU and links it into the shared library
/// `libraryPath`. Errors say which step failed.
llvm::Error compileCpuLibrary(mlir::ModuleOp module, llvm::StringRef libraryPath);

} // namespace peft

#endif // PEFT_LOWERING_CPU_CPUBACKEND_H
