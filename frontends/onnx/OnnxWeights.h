//===- OnnxWeights.h - ONNX files and their initializers --------*- C++ -*-===//
#ifndef PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H
#define PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H

#include "support/WeightStore.h"

#include "llvm/Support/MemoryBuffer.h"

#include "onnx/onnx_pb.h"

#include <map>
#include <memory>

namespace peft {

/// Parses the model at `path`; errors name the file.
llvm::Expected<std::shared_ptr<onnx::ModelProto>> loadOnnxModel(llvm::StringRef path);

/// The safetensors dtype of an ONNX element type, if it has one.
std::optional<DType> dtypeOfOnnx(int32_t elementType);

/// The initializers of an ONNX model as named tensors: views into the parsed
/// protobuf (raw_data) or into mapped external-data files.
class OnnxWeightSource : public WeightSource {
public:
  static llvm::Expected<std::unique_ptr<OnnxWeightSource>>
  create(std::shared_ptr<onnx::ModelProto> model, llvm::StringRef modelPath);
  /// Parses the model at `path` and indexes its initializers.
  static llvm::Expected<std::unique_ptr<OnnxWeightSource>> open(llvm::StringRef path);

  std::shared_ptr<onnx::ModelProto> getModel() const { return model; }

  const TensorView *find(llvm::StringRef name) const override;

private:
  llvm::Error add(const onnx::TensorProto &tensor, llvm::StringRef modelPath);

  std::shared_ptr<onnx::ModelProto> model;
  std::map<std::string, TensorView, std::less<>> views;
  /// Bytes that could not be viewed in place: typed fields, external data.
  std::vector<std::vector<uint8_t>> converted;
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> externalData;
};

} // namespace peft

#endif // PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H
