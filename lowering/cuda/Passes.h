//===- Passes.h - The CUDA back end's passes --------------------*- C++ -*-===//
#ifndef PEFT_LOWERING_CUDA_PASSES_H
#define PEFT_LOWERING_CUDA_PASSES_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace peft {

#define GEN_PASS_DECL
#include "lowering/cuda/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "lowering/cuda/Passes.h.inc"

} // namespace peft

#endif // PEFT_LOWERING_CUDA_PASSES_H
