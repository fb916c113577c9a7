//===- Npy.cpp - NumPy .npy files -------------------------------------------===//
#include "support/Npy.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <regex>

namespace peft {

static constexpr char kMagic[] = "\x93NUMPY";

/// NumPy's type strings for the element types we exchange.
static const std::pair<const char *, DType> kDescriptors[] = {
    {"<f4", DType::F32}, {"<f8", DType::F64}, {"<f2", DType::F16}, {"<i8", DType::I64},
    {"<i4", DType::I32}, {"|i1", DType::I8},  {"|u1", DType::U8},  {"|b1", DType::Bool},
    {"<i2", DType::I16}, {"<u2", DType::U16}, {"<u4", DType::U32}, {"<u8", DType::U64}};

static llvm::Error npyError(llvm::StringRef path, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), path + ": " + message);
}

llvm::Expected<NpyArray> readNpy(llvm::StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return npyError(path, "cannot open: " + buffer.getError().message());
  llvm::StringRef data = (*buffer)->getBuffer();
  if (data.size() < 10 || !data.starts_with(llvm::StringRef(kMagic, 6)))
    return npyError(path, "not a .npy file");
  unsigned major = static_cast<uint8_t>(data[6]);
  size_t headerStart = major == 1 ? 10 : 12;
  if (major < 1 || major > 3 || data.size() < headerStart)
    return npyError(path, "unsupported .npy version " + llvm::Twine(major));
  uint32_t headerSize = 0;
  std::memcpy(&headerSize, data.data() + 8, major == 1 ? 2 : 4);
  if (headerStart + headerSize > data.size())
    return npyError(path, "truncated header");
  std::string header = data.substr(headerStart, headerSize).str();

  std::smatch descr, order, shape;
  if (!std::regex_search(header, descr, std::regex("'descr':\\s*'([^']*)'")) ||
      !std::regex_search(header, order, std::regex("'fortran_order':\\s*(True|False)")) ||
      !std::regex_search(header, shape, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    return npyError(path, "malformed header");
  if (order[1] == "True")
    return npyError(path, "Fortran-ordered arrays are not supported");
  NpyArray array;
  bool known = false;
  for (const auto &[name, dtype] : kDescriptors)
    if (descr[1] == name)
      array.dtype = dtype, known = true;
  if (!known)
    return npyError(path, "unsupported dtype '" + descr[1].str() + "'");
  std::string dims = shape[1];
  std::regex number("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number);
       it != std::sregex_iterator(); ++it)
    array.shape.push_back(std::stoll(it->str()));
  size_t byteSize = numElements(array.shape) * dtypeBits(array.dtype) / 8;
  size_t dataStart = headerStart + headerSize;
  if (data.size() - dataStart != byteSize)
    return npyError(path, "holds " + llvm::Twine(data.size() - dataStart) + " data bytes, " +
                              "its header needs " + llvm::Twine(byteSize));
  array.bytes.assign(data.begin() + dataStart, data.end());
  return array;
}

llvm::Error writeNpy(llvm::StringRef path, const TensorView &tensor) {
  // NumPy has no bfloat16: store its bit patterns as uint16, as ONNX's
  // numpy_helper does.
  const char *descr = tensor.dtype == DType::BF16 ? "<u2" : nullptr;
  for (const auto &[name, dtype] : kDescriptors)
    if (dtype == tensor.dtype)
      descr = name;
  if (!descr)
    return npyError(path, "cannot store dtype " + dtypeName(tensor.dtype) + " in .npy");
  std::string shape; // NumPy writes (2, 3), (2,) and ().
  for (size_t i = 0; i < tensor.shape.size(); ++i)
    shape += (i ? ", " : "") + std::to_string(tensor.shape[i]);
  if (tensor.shape.size() == 1)
    shape += ",";
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': (" + shape + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  return llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
    uint16_t headerSize = header.size();
    os.write(kMagic, 6);
    os << '\x01' << '\x00';
    os.write(reinterpret_cast<const char *>(&headerSize), 2);
    os << header;
    os.write(reinterpret_cast<const char *>(tensor.data), tensor.byteSize);
    return llvm::Error::success();
  });
}

} // namespace peft
