//===- OnnxWeights.h - ONNX files and their initializers --------*- C++ -*-===//
#ifndef PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H
#define PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H

#include "support/WeightStore.h"

#include "llvm/Support/MemoryBuffer.h"

#include "onnx/onnx_pb.h"

#include <deque>
#include <map>
#include <optional>
#include <memory>

namespace peft {

/// The opsets the importer reads; older models are upgraded on loading.
inline constexpr int64_t kMinOpset = 13, kMaxOpset = 21;

/// The default-domain opset a model imports (0 when it names none).
int64_t defaultOpset(const onnx::ModelProto &model);

/// Parses the model at `path` and, when its opset is below kMinOpset,
/// upgrades it to kMinOpset with ONNX's version converter (as `onnx.version_converter`
/// would), setting `upgradedFrom` to the declared opset; errors name the
/// file, and the op a conversion fails on.
llvm::Expected<std::shared_ptr<onnx::ModelProto>> loadOnnxModel(llvm::StringRef path,
                                                                 int64_t *upgradedFrom = nullptr);

/// The tensor a Constant node holds, whichever attribute carries it; nothing
/// for sparse and string values.
std::optional<onnx::TensorProto> constantNodeValue(const onnx::NodeProto &node);

/// The safetensors dtype of an ONNX element type, if it has one.
std::optional<DType> dtypeOfOnnx(int32_t elementType);

/// The initializers and Constant node values of an ONNX model as named
/// tensors: views into the parsed protobuf (raw_data) or into mapped
/// external-data files.
class OnnxWeightSource : public WeightSource {
public:
  static llvm::Expected<std::unique_ptr<OnnxWeightSource>>
  create(std::shared_ptr<onnx::ModelProto> model, llvm::StringRef modelPath);
  /// Parses (and upgrades) the model at `path` and indexes its tensors.
  static llvm::Expected<std::unique_ptr<OnnxWeightSource>> open(llvm::StringRef path);

  std::shared_ptr<onnx::ModelProto> getModel() const { return model; }
  /// The opset the file declared, when loading upgraded it; 0 otherwise.
  int64_t getUpgradedFrom() const { return upgradedFrom; }

  const TensorView *find(llvm::StringRef name) const override;

private:
  /// Indexes `tensor` under `name`; `tensor` must outlive the source.
  llvm::Error add(const std::string &name, const onnx::TensorProto &tensor,
                  llvm::StringRef modelPath);

  std::shared_ptr<onnx::ModelProto> model;
  std::map<std::string, TensorView, std::less<>> views;
  /// Bytes that could not be viewed in place: typed fields, external data.
  std::vector<std::vector<uint8_t>> converted;
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> externalData;
  /// Constant values given as lists (value_floats, value_ints, ...).
  std::deque<onnx::TensorProto> listConstants;
  int64_t upgradedFrom = 0;
};

} // namespace peft

#endif // PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H
