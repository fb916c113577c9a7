//===- OnnxImporter.h - ONNX models to the peft dialect ---------*- C++ -*-===//
//
// Imports an ONNX model (as torch.onnx.export writes it) into one function,
// `forward`: MatMul/Gemm with a constant weight become `peft.linear` layers
// that keep the source module's path; the rest becomes linalg, tensor, arith
// and math on tensors. Large initializers stay in the ONNX file and are
// referenced by `peft.weight`.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_FRONTENDS_ONNX_ONNXIMPORTER_H
#define PEFT_FRONTENDS_ONNX_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

namespace peft {

/// Imports the model at `path`. Errors name the file, the node and its op.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importOnnxModel(mlir::MLIRContext *context, llvm::StringRef path);

/// Lets `peft.weight ... from "model.onnx"` read ONNX initializers.
void registerOnnxWeightFormat();

} // namespace peft

#endif // PEFT_FRONTENDS_ONNX_ONNXIMPORTER_H
