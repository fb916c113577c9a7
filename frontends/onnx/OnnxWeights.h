//===- OnnxWeights.h - ONNX files and their initializers --------*- C++ -*-===//
#ifndef PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H
#define PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H

#include "support/WeightStore.h"

#include "llvm/ADT/StringSet.h"
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

/// Initializer bytes left in the mapped model file instead of copied into
/// the parsed model: a 110M-parameter model would otherwise hold its 420 MB
/// of weights in memory for the whole compile.
struct OnnxMappedBytes {
  std::shared_ptr<llvm::MemoryBuffer> file;
  /// The raw_data of graph.initializer(i), or empty when the model holds it.
  std::vector<llvm::StringRef> rawData;
};

/// Parses the model at `path` and, when its opset is below kMinOpset,
/// upgrades it to kMinOpset with ONNX's version converter (as `onnx.version_converter`
/// would), setting `upgradedFrom` to the declared opset; errors name the
/// file, and the op a conversion fails on. With `mapped`, large initializers
/// of a model that needs no upgrade are parsed without their raw_data, which
/// `mapped` points to in the mapped file.
llvm::Expected<std::shared_ptr<onnx::ModelProto>>
loadOnnxModel(llvm::StringRef path, int64_t *upgradedFrom = nullptr,
              OnnxMappedBytes *mapped = nullptr);

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
  create(std::shared_ptr<onnx::ModelProto> model, llvm::StringRef modelPath,
         OnnxMappedBytes mapped = {});
  /// Parses (and upgrades) the model at `path` and indexes its tensors.
  static llvm::Expected<std::unique_ptr<OnnxWeightSource>> open(llvm::StringRef path);

  std::shared_ptr<onnx::ModelProto> getModel() const { return model; }
  /// The opset the file declared, when loading upgraded it; 0 otherwise.
  int64_t getUpgradedFrom() const { return upgradedFrom; }

  const TensorView *find(llvm::StringRef name) const override;
  void release(llvm::StringRef name) const override;

  /// Whether the initializer `name`'s bytes are in the mapped file, not in
  /// getModel()'s proto (which has no raw_data for it).
  bool keepsInFile(llvm::StringRef name) const { return inFile.contains(name); }

private:
  /// Indexes `tensor` under `name`; `tensor` must outlive the source.
  /// `mappedBytes`: its raw_data, left in the mapped file.
  llvm::Error add(const std::string &name, const onnx::TensorProto &tensor,
                  llvm::StringRef modelPath, llvm::StringRef mappedBytes = {});

  std::shared_ptr<onnx::ModelProto> model;
  std::map<std::string, TensorView, std::less<>> views;
  /// Bytes that could not be viewed in place: typed fields, external data.
  std::vector<std::vector<uint8_t>> converted;
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> externalData;
  /// Constant values given as lists (value_floats, value_ints, ...).
  std::deque<onnx::TensorProto> listConstants;
  OnnxMappedBytes mapped;
  llvm::StringSet<> inFile;
  int64_t upgradedFrom = 0;
};

} // namespace peft

#endif // PEFT_FRONTENDS_ONNX_ONNXWEIGHTS_H
