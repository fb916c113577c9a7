//===- OnnxExporter.h - Merged models back to ONNX --------------*- C++ -*-===//
//
// Writes the model a module was imported from with the weights the module now
// holds: after merging, a standard ONNX model with the adapters folded in,
// the same graph, inputs and outputs, and no custom ops. Adapters left
// unmerged (LoRA, IA3, SSF; fresh ones for training) become standard ops beside
// their layers, their tensors named initializers (OnnxAdapterExport.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_FRONTENDS_ONNX_ONNXEXPORTER_H
#define PEFT_FRONTENDS_ONNX_ONNXEXPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace onnx {
class ModelProto;
} // namespace onnx

namespace peft {

/// Serializes the source model of `module` (see `kSourceModelAttr`) with every
/// initializer replaced by the value of the `peft.weight` of the same name and
/// the unmerged adapters added. Fails, naming the adapter and module, on an
/// adapter without an ONNX form, and when the result does not pass ONNX's
/// checker.
llvm::Error exportOnnx(mlir::ModuleOp module, llvm::raw_ostream &os);

/// Adds the unmerged adapters of `module` to `model`: their ops after the
/// nodes of their layers, their tensors as initializers named as PEFT names
/// them in memory (`base_model.model.<module>.lora_A.<adapter>.weight`), and
/// per adapter the metadata `peft_mlir.adapter.<name>.config` (its
/// adapter_config.json) and `peft_mlir.adapter.<name>.tensors` (initializer ->
/// adapter_model.safetensors name).
llvm::Error exportAdapters(mlir::ModuleOp module, onnx::ModelProto &model);

/// Writes back the adapters of a model exportAdapters wrote (trained since,
/// perhaps): OUTPUT_DIR/<name>/adapter_config.json and
/// adapter_model.safetensors, the tensors under their file names, each
/// directory complete or absent.
llvm::Error extractAdapters(llvm::StringRef modelPath, llvm::StringRef outputDir);

} // namespace peft

#endif // PEFT_FRONTENDS_ONNX_ONNXEXPORTER_H
