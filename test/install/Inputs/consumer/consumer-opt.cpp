//===- consumer-opt.cpp - Another compiler's opt tool, with peft's passes ---===//
//
// What an MLIR compiler adds to its own driver to use peft-mlir: the peft
// dialect, its passes, and the pipelines peftc runs (peft-apply-adapters,
// peft-lower-to-linalg, peft-cpu-lowering).
//===----------------------------------------------------------------------===//
#include "dialects/peft/PeftDialect.h"
#include "lowering/Passes.h"
#include "lowering/Target.h"
#include "lowering/cpu/CpuBackend.h"
#include "passes/AdapterPipeline.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  peft::registerPeftPasses();
  peft::registerAdapterPipeline();
  peft::registerLoweringPasses();
  peft::registerCpuTarget();
  peft::registerLoweringPipelines();

  mlir::DialectRegistry registry;
  registry.insert<peft::PeftDialect, mlir::func::FuncDialect, mlir::arith::ArithDialect,
                  mlir::tensor::TensorDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "a compiler using peft-mlir's passes\n", registry));
}
