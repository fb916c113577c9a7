//===- Safetensors.cpp - Read and write safetensors files -------------------===//
#include "support/Safetensors.h"
#include "support/OutputFile.h"

#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>

namespace peft {

/// The reference implementation's bound on the header size.
static constexpr uint64_t kMaxHeaderSize = 100'000'000;

static llvm::Error fail(llvm::StringRef path, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 path + ": " + message);
}

/// Parses the JSON header, refusing duplicate tensor names (the JSON library
/// itself would silently keep the last one).
static llvm::Expected<nlohmann::json> parseHeader(llvm::StringRef path,
                                                  llvm::StringRef text) {
  std::set<std::string> keys;
  std::string duplicate;
  auto onEvent = [&](int depth, nlohmann::json::parse_event_t event,
                     nlohmann::json &parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key &&
        !keys.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  nlohmann::json header =
      nlohmann::json::parse(text.begin(), text.end(), onEvent,
                            /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return fail(path, "header is not a JSON object");
  if (!duplicate.empty())
    return fail(path, "tensor '" + duplicate + "' appears twice in the header");
  return header;
}

/// Reads one header entry into `view` (its data pointer is set later).
static llvm::Error parseEntry(llvm::StringRef path, const std::string &name,
                              const nlohmann::json &entry, TensorView &view,
                              std::pair<uint64_t, uint64_t> &offsets) {
  auto bad = [&](const llvm::Twine &what) {
    return fail(path, "tensor '" + name + "': " + what);
  };
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets"))
    return bad("entry needs dtype, shape and data_offsets");
  const auto &dtype = entry["dtype"];
  if (!dtype.is_string())
    return bad("dtype is not a string");
  std::optional<DType> parsed = parseDType(dtype.get<std::string>());
  if (!parsed)
    return bad("unknown dtype '" + dtype.get<std::string>() + "'");
  view.dtype = *parsed;
  const auto &shape = entry["shape"];
  if (!shape.is_array())
    return bad("shape is not a list");
  for (const auto &size : shape) {
    if (!size.is_number_unsigned())
      return bad("shape holds a value that is not a non-negative integer");
    if (size.get<uint64_t>() > kMaxTensorBytes)
      return bad("shape holds the size " + llvm::Twine(size.get<uint64_t>()) + ", which is too large");
    view.shape.push_back(size.get<int64_t>());
  }
  const auto &range = entry["data_offsets"];
  if (!range.is_array() || range.size() != 2 || !range[0].is_number_unsigned() ||
      !range[1].is_number_unsigned())
    return bad("data_offsets must be two non-negative integers");
  offsets = {range[0].get<uint64_t>(), range[1].get<uint64_t>()};
  if (offsets.second < offsets.first)
    return bad("data_offsets end before they begin");
  std::optional<uint64_t> size = checkedByteSize(view.shape, view.dtype);
  if (!size)
    return bad("shape " + formatShape(view.shape) + " is too large");
  uint64_t expected = *size;
  if (offsets.second - offsets.first != expected)
    return bad("holds " + llvm::Twine(offsets.second - offsets.first) +
               " bytes, but " + dtypeName(view.dtype) + " " +
               formatShape(view.shape) + " needs " + llvm::Twine(expected));
  view.byteSize = expected;
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<SafetensorsFile>>
SafetensorsFile::open(llvm::StringRef path, bool writable) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  if (writable) {
    // LLVM maps a WritableMemoryBuffer's file private (copy on write).
    auto buffer = llvm::WritableMemoryBuffer::getFile(path);
    if (!buffer)
      return fail(path, "cannot open: " + buffer.getError().message());
    file->mapping = std::move(*buffer);
    file->writableMapping = true;
  } else {
    auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                              /*RequiresNullTerminator=*/false);
    if (!buffer)
      return fail(path, "cannot open: " + buffer.getError().message());
    file->mapping = std::move(*buffer);
  }
  file->filePath = path.str();
  const uint8_t *bytes =
      reinterpret_cast<const uint8_t *>(file->mapping->getBufferStart());
  uint64_t fileSize = file->mapping->getBufferSize();

  if (fileSize < 8)
    return fail(path, "too short to hold the 8-byte header length");
  uint64_t headerSize;
  std::memcpy(&headerSize, bytes, 8); // Little-endian on every host we target.
  if (headerSize > kMaxHeaderSize)
    return fail(path, "header length " + llvm::Twine(headerSize) +
                          " exceeds the limit of 100000000 bytes");
  if (8 + headerSize > fileSize)
    return fail(path, "header length " + llvm::Twine(headerSize) +
                          " runs past the end of the file");
  llvm::StringRef headerText(reinterpret_cast<const char *>(bytes + 8), headerSize);
  if (!headerText.starts_with("{"))
    return fail(path, "header does not start with '{'");
  auto header = parseHeader(path, headerText);
  if (!header)
    return header.takeError();

  const uint8_t *dataStart = bytes + 8 + headerSize;
  uint64_t dataSize = fileSize - 8 - headerSize;
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> spans;
  for (auto &[name, entry] : header->items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        return fail(path, "__metadata__ is not an object");
      for (auto &[key, value] : entry.items()) {
        if (!value.is_string())
          return fail(path, "__metadata__ value of '" + key + "' is not a string");
        file->metadataByKey[key] = value.get<std::string>();
      }
      continue;
    }
    TensorView view;
    std::pair<uint64_t, uint64_t> offsets;
    if (llvm::Error error = parseEntry(path, name, entry, view, offsets))
      return std::move(error);
    view.data = dataStart + offsets.first;
    file->tensorsByName.emplace(name, std::move(view));
    spans.push_back({offsets, name});
  }

  // Entries sorted by offset must tile the data buffer exactly.
  std::sort(spans.begin(), spans.end());
  uint64_t cursor = 0;
  for (auto &[offsets, name] : spans) {
    if (offsets.first != cursor)
      return fail(path, "tensor '" + name + "' starts at byte " +
                            llvm::Twine(offsets.first) + ", expected " +
                            llvm::Twine(cursor) +
                            " (tensors must tile the data buffer)");
    cursor = offsets.second;
  }
  if (cursor != dataSize)
    return fail(path, "tensors cover " + llvm::Twine(cursor) +
                          " bytes of a data buffer of " + llvm::Twine(dataSize));
  return file;
}

const TensorView *SafetensorsFile::find(llvm::StringRef name) const {
  auto found = tensorsByName.find(name.str());
  return found == tensorsByName.end() ? nullptr : &found->second;
}

llvm::Error writeSafetensors(
    llvm::StringRef path, const std::map<std::string, TensorView> &layout,
    llvm::function_ref<llvm::Error(const std::string &name, llvm::raw_ostream &os)> write) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto &[name, view] : layout) {
    header[name] = {{"dtype", dtypeName(view.dtype).str()},
                    {"shape", view.shape},
                    {"data_offsets", {offset, offset + view.byteSize}}};
    offset += view.byteSize;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' '); // Keep the data 8-byte aligned.
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) -> llvm::Error {
    uint64_t headerSize = text.size();
    os.write(reinterpret_cast<const char *>(&headerSize), 8);
    os << text;
    for (const auto &[name, view] : layout) {
      uint64_t before = os.tell();
      if (llvm::Error error = write(name, os))
        return error;
      if (os.tell() - before != view.byteSize)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       path + ": tensor '" + name + "' came out " +
                                           llvm::Twine(os.tell() - before) + " bytes, not " +
                                           llvm::Twine(view.byteSize));
    }
    return llvm::Error::success();
  });
}

llvm::Error writeSafetensors(llvm::StringRef path,
                             const std::map<std::string, TensorView> &tensors) {
  return writeSafetensors(path, tensors, [&](const std::string &name, llvm::raw_ostream &os) -> llvm::Error {
    const TensorView &view = tensors.at(name);
    os.write(reinterpret_cast<const char *>(view.data), view.byteSize);
    return llvm::Error::success();
  });
}

void *SafetensorsFile::writableBytes(const void *data, size_t bytes) const {
  auto at = reinterpret_cast<uintptr_t>(data);
  auto start = reinterpret_cast<uintptr_t>(mapping->getBufferStart());
  auto end = reinterpret_cast<uintptr_t>(mapping->getBufferEnd());
  if (!writableMapping || at < start || at > end || bytes > end - at)
    return nullptr;
  return const_cast<void *>(data);
}

} // namespace peft
