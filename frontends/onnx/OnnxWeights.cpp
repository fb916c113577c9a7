//===- OnnxWeights.cpp - ONNX files and their initializers ------------------===//
#include "frontends/onnx/OnnxWeights.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/Twine.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/version_converter/convert.h"

#include <cstring>

namespace peft {

static llvm::Error onnxError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

namespace {

/// Copies a ModelProto's wire encoding, leaving out the raw_data of large
/// graph initializers and noting where they are. Only the path to them
/// (ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto.raw_data
/// = 9) is decoded; every other field is copied as it is.
class InitializerStripper {
public:
  static constexpr uint64_t kMinBytes = 64 * 1024; // Shape constants stay.

  std::vector<llvm::StringRef> rawData;

  /// Copies the message in [p, end), at `depth` 0 (model), 1 (graph) or 2
  /// (tensor), into `out`; false when the encoding is malformed (protobuf's
  /// own parse then says so).
  bool copy(const uint8_t *p, const uint8_t *end, int depth, std::string &out) {
    while (p < end) {
      const uint8_t *field = p;
      uint64_t key, value;
      if (!readVarint(p, end, key))
        return false;
      switch (key & 7) {
      case 0:
        if (!readVarint(p, end, value))
          return false;
        break;
      case 1:
      case 5: {
        uint64_t width = (key & 7) == 1 ? 8 : 4;
        if (uint64_t(end - p) < width)
          return false;
        p += width;
        break;
      }
      case 2: {
        if (!readVarint(p, end, value) || value > uint64_t(end - p))
          return false;
        const uint8_t *body = p;
        p += value;
        uint64_t number = key >> 3;
        if ((depth == 0 && number == 7) || (depth == 1 && number == 5)) {
          if (depth == 1)
            rawData.emplace_back();
          std::string inner;
          if (!copy(body, p, depth + 1, inner))
            return false;
          writeVarint(key, out);
          writeVarint(inner.size(), out);
          out += inner;
          continue;
        }
        if (depth == 2 && number == 9 && value >= kMinBytes) {
          rawData.back() = llvm::StringRef(reinterpret_cast<const char *>(body), value);
          continue;
        }
        break;
      }
      default: // Groups: not in ONNX.
        return false;
      }
      out.append(reinterpret_cast<const char *>(field), p - field);
    }
    return true;
  }

private:
  static bool readVarint(const uint8_t *&p, const uint8_t *end, uint64_t &value) {
    value = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      uint8_t byte = *p++;
      value |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80))
        return true;
    }
    return false;
  }
  static void writeVarint(uint64_t value, std::string &out) {
    do {
      uint8_t byte = value & 0x7f;
      value >>= 7;
      out.push_back(char(value ? byte | 0x80 : byte));
    } while (value);
  }
};

} // namespace

llvm::Expected<std::shared_ptr<onnx::ModelProto>>
loadOnnxModel(llvm::StringRef path, int64_t *upgradedFrom, OnnxMappedBytes *mapped) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return onnxError(path + ": cannot open: " + buffer.getError().message());
  std::shared_ptr<llvm::MemoryBuffer> file = std::move(*buffer);
  auto start = reinterpret_cast<const uint8_t *>(file->getBufferStart());
  auto model = std::make_shared<onnx::ModelProto>();
  InitializerStripper stripper;
  std::string stripped;
  bool strip = mapped && stripper.copy(start, start + file->getBufferSize(), 0, stripped) &&
               llvm::any_of(stripper.rawData, [](llvm::StringRef bytes) { return !bytes.empty(); });
  bool parsed = strip ? model->ParseFromString(stripped)
                      : model->ParseFromArray(start, file->getBufferSize());
  if (!parsed)
    return onnxError(path + ": not a valid ONNX model (protobuf parse failed)");
  if (!model->has_graph())
    return onnxError(path + ": not a valid ONNX model (no graph)");
  int64_t opset = defaultOpset(*model);
  if (opset == 0 || opset >= kMinOpset) {
    if (strip)
      *mapped = {std::move(file), std::move(stripper.rawData)};
    return model;
  }
  // The converter rewrites initializers: it gets them whole.
  if (strip && !model->ParseFromArray(start, file->getBufferSize()))
    return onnxError(path + ": not a valid ONNX model (protobuf parse failed)");
  // The converter assumes every op exists at the model's opset; name the
  // first that does not rather than let it fail inside.
  for (const onnx::NodeProto &node : model->graph().node()) {
    bool standard = node.domain().empty() || node.domain() == "ai.onnx";
    if (standard && !onnx::OpSchemaRegistry::Schema(node.op_type(), opset, ""))
      return onnxError(path + ": opset " + llvm::Twine(opset) + " cannot be upgraded to " +
                       llvm::Twine(kMinOpset) + ": node '" +
                       (node.name().empty() && node.output_size() ? node.output(0) : node.name()) +
                       "' (" +
                       node.op_type() + ") is not an op of opset " + llvm::Twine(opset));
  }
  // The converter trusts its input (an output without a type, or one no
  // node produces, crashes it): ONNX's checker goes first, then names.
  llvm::StringSet<> defined;
  for (const auto &input : model->graph().input())
    defined.insert(input.name());
  for (const auto &initializer : model->graph().initializer())
    defined.insert(initializer.name());
  for (const onnx::NodeProto &node : model->graph().node()) {
    for (const std::string &input : node.input())
      if (!input.empty() && !defined.contains(input))
        return onnxError(path + ": node '" + (node.name().empty() ? node.op_type() : node.name()) +
                         "' reads '" + input + "', which nothing before it defines");
    for (const std::string &output : node.output())
      defined.insert(output);
  }
  for (const auto &output : model->graph().output())
    if (!defined.contains(output.name()))
      return onnxError(path + ": graph output '" + output.name() + "' is never produced");
  try {
    onnx::checker::check_model(*model);
  } catch (const std::exception &failure) {
    llvm::StringRef reason = llvm::StringRef(failure.what()).split('\n').first.trim();
    return onnxError(path + ": opset " + llvm::Twine(opset) +
                     " model fails ONNX's checker, so it cannot be upgraded: " + reason);
  }
  try {
    auto upgraded = std::make_shared<onnx::ModelProto>(
        onnx::version_conversion::ConvertVersion(*model, kMinOpset));
    if (upgradedFrom)
      *upgradedFrom = opset;
    return upgraded;
  } catch (const std::exception &failure) {
    // The converter's messages may span lines; the first one names the op.
    llvm::StringRef reason = llvm::StringRef(failure.what()).split('\n').first.trim();
    return onnxError(path + ": opset " + llvm::Twine(opset) + " cannot be upgraded to " +
                     llvm::Twine(kMinOpset) + " by ONNX's version converter: " + reason);
  }
}

int64_t defaultOpset(const onnx::ModelProto &model) {
  int64_t opset = 0;
  for (const auto &import : model.opset_import())
    if (import.domain().empty() || import.domain() == "ai.onnx")
      opset = import.version();
  return opset;
}

std::optional<onnx::TensorProto> constantNodeValue(const onnx::NodeProto &node) {
  auto attribute = [&](llvm::StringRef name) -> const onnx::AttributeProto * {
    for (const auto &attr : node.attribute())
      if (attr.name() == name)
        return &attr;
    return nullptr;
  };
  onnx::TensorProto proto;
  if (const auto *attr = attribute("value"); attr && attr->has_t())
    return attr->t();
  if (const auto *attr = attribute("value_float")) {
    proto.set_data_type(onnx::TensorProto::FLOAT);
    proto.add_float_data(attr->f());
  } else if (const auto *attr = attribute("value_int")) {
    proto.set_data_type(onnx::TensorProto::INT64);
    proto.add_int64_data(attr->i());
  } else if (const auto *attr = attribute("value_floats")) {
    proto.set_data_type(onnx::TensorProto::FLOAT);
    proto.add_dims(attr->floats_size());
    *proto.mutable_float_data() = attr->floats();
  } else if (const auto *attr = attribute("value_ints")) {
    proto.set_data_type(onnx::TensorProto::INT64);
    proto.add_dims(attr->ints_size());
    *proto.mutable_int64_data() = attr->ints();
  } else {
    return std::nullopt;
  }
  return proto;
}

std::optional<DType> dtypeOfOnnx(int32_t elementType) {
  switch (elementType) {
  case onnx::TensorProto::FLOAT:
    return DType::F32;
  case onnx::TensorProto::FLOAT16:
    return DType::F16;
  case onnx::TensorProto::BFLOAT16:
    return DType::BF16;
  case onnx::TensorProto::DOUBLE:
    return DType::F64;
  case onnx::TensorProto::INT64:
    return DType::I64;
  case onnx::TensorProto::INT32:
    return DType::I32;
  case onnx::TensorProto::INT8:
    return DType::I8;
  case onnx::TensorProto::UINT8:
    return DType::U8;
  case onnx::TensorProto::INT16:
    return DType::I16;
  case onnx::TensorProto::UINT16:
    return DType::U16;
  case onnx::TensorProto::UINT32:
    return DType::U32;
  case onnx::TensorProto::UINT64:
    return DType::U64;
  case onnx::TensorProto::BOOL:
    return DType::Bool;
  default:
    return std::nullopt;
  }
}

/// Copies a typed repeated field into little-endian bytes of `dtype`.
template <typename Field>
static std::vector<uint8_t> fieldBytes(const Field &field, DType dtype) {
  std::vector<uint8_t> bytes(field.size() * dtypeBits(dtype) / 8);
  for (int i = 0; i < field.size(); ++i) {
    auto store = [&](auto value) { std::memcpy(&bytes[i * sizeof(value)], &value, sizeof(value)); };
    switch (dtype) {
    case DType::F32: store(static_cast<float>(field.Get(i))); break;
    case DType::F64: store(static_cast<double>(field.Get(i))); break;
    case DType::I64: store(static_cast<int64_t>(field.Get(i))); break;
    case DType::I32: store(static_cast<int32_t>(field.Get(i))); break;
    case DType::F16: case DType::BF16: store(static_cast<uint16_t>(field.Get(i))); break;
    default: store(static_cast<uint8_t>(field.Get(i))); break;
    }
  }
  return bytes;
}

static std::vector<uint8_t> typedFieldBytes(const onnx::TensorProto &tensor, DType dtype) {
  switch (dtype) {
  case DType::F32:
    return fieldBytes(tensor.float_data(), dtype);
  case DType::F64:
    return fieldBytes(tensor.double_data(), dtype);
  case DType::I64:
    return fieldBytes(tensor.int64_data(), dtype);
  default: // INT32, INT8, UINT8, BOOL, FLOAT16 and BFLOAT16 all use int32_data.
    return fieldBytes(tensor.int32_data(), dtype);
  }
}

/// The bytes of an initializer stored outside the model: `location` relative
/// to the model's folder and inside it (ONNX's rule: no absolute path, no
/// `..`, no symlink out), `offset` and `length` within the file.
static llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
readExternalData(llvm::StringRef modelPath, const std::string &name,
                 const onnx::TensorProto &tensor, uint64_t byteSize) {
  auto fail = [&](const llvm::Twine &message) {
    return onnxError(modelPath + ": initializer '" + name + "': external data " + message);
  };
  std::string location;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const auto &entry : tensor.external_data()) {
    uint64_t value;
    bool isNumber = entry.key() == "offset" || entry.key() == "length";
    if (isNumber && llvm::StringRef(entry.value()).getAsInteger(10, value))
      return fail("'" + entry.key() + "' is not a non-negative integer: '" +
                  llvm::StringRef(entry.value()).take_front(40) + "'");
    if (entry.key() == "location")
      location = entry.value();
    else if (entry.key() == "offset")
      offset = value;
    else if (entry.key() == "length")
      length = value;
  }
  if (location.empty())
    return fail("has no 'location'");
  llvm::StringRef shown = llvm::StringRef(location).take_front(200);
  if (llvm::sys::path::is_absolute(location) || llvm::sys::path::has_root_name(location) ||
      llvm::is_contained(llvm::make_range(llvm::sys::path::begin(location),
                                          llvm::sys::path::end(location)),
                         ".."))
    return fail("location '" + shown + "' is not inside the model's folder");
  if (length && *length != byteSize)
    return fail("has length " + llvm::Twine(*length) + ", its type needs " +
                llvm::Twine(byteSize));

  llvm::SmallString<256> folder(llvm::sys::path::parent_path(modelPath));
  if (folder.empty())
    folder = ".";
  llvm::SmallString<256> dataPath(folder);
  llvm::sys::path::append(dataPath, location);
  // Symlinks are resolved on both sides: a link inside that points out is out.
  llvm::SmallString<256> realFolder, realData;
  if (std::error_code error = llvm::sys::fs::real_path(dataPath, realData))
    return fail("'" + dataPath + "': cannot open: " + error.message());
  if (std::error_code error = llvm::sys::fs::real_path(folder, realFolder))
    return fail("'" + folder + "': cannot resolve: " + error.message());
  llvm::StringRef inside = realData.str();
  bool within = inside.consume_front(realFolder) && !inside.empty() &&
                (llvm::sys::path::is_separator(inside.front()) ||
                 llvm::sys::path::is_separator(realFolder.back()));
  if (!within)
    return fail("location '" + shown + "' leads out of the model's folder (to '" +
                realData.str().take_front(200) + "')");

  auto file = llvm::sys::fs::openNativeFileForRead(realData);
  if (!file)
    return fail("'" + dataPath + "': cannot open: " + llvm::toString(file.takeError()));
  llvm::sys::fs::file_status status;
  std::error_code statError = llvm::sys::fs::status(*file, status);
  auto closeFile = llvm::make_scope_exit([&] { llvm::sys::fs::closeFile(*file); });
  if (statError)
    return fail("'" + dataPath + "': cannot read: " + statError.message());
  if (status.type() != llvm::sys::fs::file_type::regular_file)
    return fail("'" + dataPath + "' is not a regular file");
  // A mapping past the file's end reads zeros, or faults (SIGBUS).
  if (offset > status.getSize() || byteSize > status.getSize() - offset)
    return fail("'" + dataPath + "' holds " + llvm::Twine(status.getSize()) +
                " bytes; the tensor needs " + llvm::Twine(byteSize) + " at offset " +
                llvm::Twine(offset));
  if (byteSize == 0)
    return llvm::MemoryBuffer::getMemBuffer("", dataPath, /*RequiresNullTerminator=*/false);
  auto slice = llvm::MemoryBuffer::getOpenFileSlice(*file, dataPath, byteSize, offset);
  if (!slice)
    return fail("'" + dataPath + "': cannot read: " + slice.getError().message());
  return std::move(*slice);
}

llvm::Error OnnxWeightSource::add(const std::string &name, const onnx::TensorProto &tensor,
                                  llvm::StringRef modelPath, llvm::StringRef mappedBytes) {
  std::optional<DType> dtype = dtypeOfOnnx(tensor.data_type());
  if (!dtype)
    return onnxError(modelPath + ": initializer '" + name +
                     "' has an unsupported element type " + llvm::Twine(tensor.data_type()));
  TensorView view;
  view.dtype = *dtype;
  view.shape.assign(tensor.dims().begin(), tensor.dims().end());
  std::optional<uint64_t> byteSize = checkedByteSize(view.shape, *dtype);
  if (!byteSize)
    return onnxError(modelPath + ": initializer '" + name + "' has an invalid shape " +
                     formatShape(view.shape));
  view.byteSize = *byteSize;
  size_t available; // Bytes the initializer actually holds.
  if (tensor.data_location() == onnx::TensorProto::EXTERNAL) {
    auto data = readExternalData(modelPath, name, tensor, view.byteSize);
    if (!data)
      return data.takeError();
    view.data = reinterpret_cast<const uint8_t *>((*data)->getBufferStart());
    available = (*data)->getBufferSize();
    externalData.push_back(std::move(*data));
  } else if (!mappedBytes.empty()) {
    view.data = reinterpret_cast<const uint8_t *>(mappedBytes.data());
    available = mappedBytes.size();
    inFile.insert(name);
  } else if (tensor.has_raw_data()) {
    view.data = reinterpret_cast<const uint8_t *>(tensor.raw_data().data());
    available = tensor.raw_data().size();
  } else {
    converted.push_back(typedFieldBytes(tensor, *dtype));
    view.data = converted.back().data();
    available = converted.back().size();
  }
  if (available != view.byteSize)
    return onnxError(modelPath + ": initializer '" + name + "' holds " +
                     llvm::Twine(available) + " bytes, but its type needs " +
                     llvm::Twine(view.byteSize));
  views.emplace(name, std::move(view));
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<OnnxWeightSource>>
OnnxWeightSource::create(std::shared_ptr<onnx::ModelProto> model, llvm::StringRef modelPath,
                         OnnxMappedBytes mapped) {
  auto source = std::unique_ptr<OnnxWeightSource>(new OnnxWeightSource());
  source->model = std::move(model);
  source->mapped = std::move(mapped);
  const onnx::GraphProto &graph = source->model->graph();
  for (auto [index, tensor] : llvm::enumerate(graph.initializer())) {
    llvm::StringRef bytes =
        index < source->mapped.rawData.size() ? source->mapped.rawData[index] : llvm::StringRef();
    if (llvm::Error error = source->add(tensor.name(), tensor, modelPath, bytes))
      return std::move(error);
  }
  // A Constant node's value is a tensor of the model like an initializer:
  // large ones (a causal-mask buffer) are read by name as weights are.
  for (const onnx::NodeProto &node : graph.node()) {
    if (node.op_type() != "Constant" || node.output_size() != 1 ||
        !(node.domain().empty() || node.domain() == "ai.onnx"))
      continue;
    const onnx::TensorProto *value = nullptr;
    for (const auto &attr : node.attribute())
      if (attr.name() == "value" && attr.has_t())
        value = &attr.t();
    if (!value) {
      std::optional<onnx::TensorProto> list = constantNodeValue(node);
      if (!list)
        continue; // Sparse values: the importer names the node.
      value = &source->listConstants.emplace_back(std::move(*list));
    }
    if (!dtypeOfOnnx(value->data_type()))
      continue; // Strings and the like: the importer names the node if it reads one.
    if (llvm::Error error = source->add(node.output(0), *value, modelPath))
      return std::move(error);
  }
  return source;
}

llvm::Expected<std::unique_ptr<OnnxWeightSource>>
OnnxWeightSource::open(llvm::StringRef path) {
  int64_t upgradedFrom = 0;
  OnnxMappedBytes mapped;
  auto model = loadOnnxModel(path, &upgradedFrom, &mapped);
  if (!model)
    return model.takeError();
  auto source = create(std::move(*model), path, std::move(mapped));
  if (source)
    (*source)->upgradedFrom = upgradedFrom;
  return source;
}

void OnnxWeightSource::release(llvm::StringRef name) const {
  if (!inFile.contains(name))
    return;
  if (const TensorView *view = find(name))
    dropMappedPages(view->data, view->byteSize);
}

const TensorView *OnnxWeightSource::find(llvm::StringRef name) const {
  auto found = views.find(name);
  return found == views.end() ? nullptr : &found->second;
}

} // namespace peft
