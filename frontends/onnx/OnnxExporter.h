//===- OnnxExporter.h - Merged models back to ONNX --------------*- C++ -*-===//
//
// Writes the model a module was imported from with the weights the module now
// holds: after merging, a standard ONNX model with the adapters folded in,
// the same graph, inputs and outputs, and no custom ops.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_FRONTENDS_ONNX_ONNXEXPORTER_H
#define PEFT_FRONTENDS_ONNX_ONNXEXPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace peft {

/// Serializes the source model of `module` (see `kSourceModelAttr`) with every
/// initializer replaced by the value of the `peft.weight` of the same name.
/// Fails, naming the layer, when an adapter is still unmerged, and when the
/// result does not pass ONNX's checker.
llvm::Error exportMergedOnnx(mlir::ModuleOp module, llvm::raw_ostream &os);

} // namespace peft

#endif // PEFT_FRONTENDS_ONNX_ONNXEXPORTER_H
