//===- KernelBuilding.h - What the kernel-generating passes share -*- C++ -*-===//
//
// The CPU kernels (panel and window GEMMs, pooling windows) are functions the
// passes build as scf + vector IR; these are the pieces they all use.
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_CPU_KERNELBUILDING_H
#define PEFT_LOWERING_CPU_KERNELBUILDING_H

#include "lowering/BufferUses.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace peft {

/// Whether `op`'s body is out + a · b over its three f32 operands (what a
/// GEMM kernel computes).
bool isF32MultiplyAccumulate(mlir::linalg::GenericOp op);

/// Whether the innermost dimension of `type` is contiguous.
bool hasUnitInnerStride(mlir::MemRefType type);

/// `type` with any offset and strides but a unit innermost one: a kernel's
/// operand type that takes any view with contiguous rows.
mlir::MemRefType withDynamicStrides(mlir::MemRefType type);

/// A vector load, masked (zeros in the lanes off) when `mask` is set.
mlir::Value loadVector(mlir::OpBuilder &builder, mlir::Location loc, mlir::VectorType type,
                       mlir::Value memref, mlir::ValueRange indices, mlir::Value mask);

/// A vector store, masked when `mask` is set.
void storeVector(mlir::OpBuilder &builder, mlir::Location loc, mlir::Value value,
                 mlir::Value memref, mlir::ValueRange indices, mlir::Value mask);

/// The module's private function `name`, or a new one of `arguments` whose
/// body `buildBody(builder, entry block)` writes (the return is added).
mlir::func::FuncOp
getOrCreateKernelFunction(mlir::ModuleOp module, llvm::StringRef name,
                          mlir::TypeRange arguments,
                          llvm::function_ref<void(mlir::OpBuilder &, mlir::Block *)> buildBody);

} // namespace peft

#endif // PEFT_LOWERING_CPU_KERNELBUILDING_H
