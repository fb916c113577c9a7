//===- onnx_importer_fuzzer.cpp - Fuzz the ONNX importer --------------------===//
//
// A model file is parsed (and upgraded from old opsets) by loadOnnxModel,
// its initializers indexed by OnnxWeightSource, then imported to the peft
// dialect by importOnnxModel. Each must turn a bad model into an error.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"

#include "frontends/onnx/OnnxImporter.h"
#include "frontends/onnx/OnnxWeights.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <memory>

/// One context for many inputs (loading the dialects costs more than most
/// imports), made anew now and then so that what it uniques cannot pile up.
static mlir::MLIRContext &context() {
  static std::unique_ptr<mlir::MLIRContext> context;
  static unsigned uses = 0;
  if (!context || ++uses % 1000 == 0) {
    context.reset(); // The old one goes first: no two at a time.
    // No thread pool: the verifier runs inline, as peftc's would on one core.
    context = std::make_unique<mlir::MLIRContext>(mlir::MLIRContext::Threading::DISABLED);
    // Remarks (an upgraded opset) and the verifier's diagnostics would flood
    // the log; the error that importOnnxModel returns is what matters.
    context->getDiagEngine().registerHandler(
        [](mlir::Diagnostic &) { return mlir::success(); });
  }
  return *context;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = peft::fuzz::writeInput(data, size, "model.onnx");
  {
    auto source = peft::OnnxWeightSource::open(path);
    if (!source) {
      // importOnnxModel opens the file the same way and would fail the same.
      llvm::consumeError(source.takeError());
      return 0;
    }
    const onnx::GraphProto &graph = (*source)->getModel()->graph();
    for (const onnx::TensorProto &init : graph.initializer())
      if (const peft::TensorView *view = (*source)->find(init.name()))
        peft::fuzz::touch(view->data, view->byteSize);
    for (const onnx::NodeProto &node : graph.node())
      if (node.op_type() == "Constant" && node.output_size())
        if (const peft::TensorView *view = (*source)->find(node.output(0)))
          peft::fuzz::touch(view->data, view->byteSize);
  }
  auto module = peft::importOnnxModel(&context(), path);
  if (!module)
    llvm::consumeError(module.takeError());
  return 0;
}
