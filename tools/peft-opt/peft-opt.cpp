//===- peft-opt.cpp - mlir-opt with the peft dialect and passes -------------===//
#include "dialects/peft/PeftDialect.h"
#include "frontends/onnx/OnnxImporter.h"
#include "lowering/Passes.h"
#include "lowering/Target.h"
#include "lowering/cpu/CpuBackend.h"
#include "lowering/cuda/CudaBackend.h"
#include "passes/AdapterPipeline.h"
#include "passes/Passes.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  peft::registerPeftPasses();
  peft::registerAdapterPipeline();
  peft::registerLoweringPasses();
  peft::registerCpuTarget();
  peft::registerCudaTarget();
  peft::registerLoweringPipelines();
  peft::registerOnnxWeightFormat(); // peft.weight ... from "model.onnx"

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  peft::registerTargetDialects(registry);
  registry.insert<peft::PeftDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "peft-mlir optimizer driver\n", registry));
}
