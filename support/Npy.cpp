//===- Npy.cpp - NumPy .npy files -------------------------------------------===//
#include "support/Npy.h"
#include "support/OutputFile.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>

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

/// NumPy's own limit (numpy.lib.format's max_header_size): a longer header
/// is refused as unsafe to parse.
static constexpr size_t kMaxHeaderSize = 10000;

namespace {
/// The header of a .npy file: a Python dict literal of exactly 'descr',
/// 'fortran_order' and 'shape', as numpy.lib.format reads it
/// (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`).
class NpyHeaderParser {
public:
  explicit NpyHeaderParser(llvm::StringRef text) : rest(text) {}

  /// Parses the whole header; on failure returns a message naming the field.
  std::optional<std::string> parse(std::string &descr, bool &fortranOrder,
                                   std::vector<int64_t> &shape) {
    bool seenDescr = false, seenOrder = false, seenShape = false;
    if (!consume('{'))
      return std::string("header is not a dict");
    while (!consume('}')) {
      std::string key;
      if (!quoted(key) || !consume(':'))
        return std::string("header is not a dict of quoted keys");
      if (key == "descr" && !seenDescr) {
        if (!quoted(descr))
          return std::string("'descr' is not a string");
        seenDescr = true;
      } else if (key == "fortran_order" && !seenOrder) {
        skipSpace();
        if (rest.consume_front("True"))
          fortranOrder = true;
        else if (rest.consume_front("False"))
          fortranOrder = false;
        else
          return std::string("'fortran_order' is not True or False");
        seenOrder = true;
      } else if (key == "shape" && !seenShape) {
        if (std::optional<std::string> error = tuple(shape))
          return error;
        seenShape = true;
      } else {
        return "unexpected key '" + llvm::StringRef(key).take_front(40).str() + "'";
      }
      if (!consume(',')) {
        if (!consume('}'))
          return std::string("header is not a dict");
        break;
      }
    }
    skipSpace();
    if (!rest.empty())
      return std::string("text after the header's dict");
    if (!seenDescr || !seenOrder || !seenShape)
      return std::string("header lacks 'descr', 'fortran_order' or 'shape'");
    return std::nullopt;
  }

private:
  void skipSpace() { rest = rest.ltrim(" \t\n\r"); }

  bool consume(char c) {
    skipSpace();
    return rest.consume_front(llvm::StringRef(&c, 1));
  }

  bool quoted(std::string &out) {
    skipSpace();
    if (rest.empty() || (rest.front() != '\'' && rest.front() != '"'))
      return false;
    char quote = rest.front();
    size_t end = rest.find(quote, 1);
    if (end == llvm::StringRef::npos)
      return false;
    out = rest.substr(1, end - 1).str();
    rest = rest.drop_front(end + 1);
    return true;
  }

  /// `(2, 3)`, `(2,)` or `()`: non-negative integers, each within int64.
  std::optional<std::string> tuple(std::vector<int64_t> &out) {
    if (!consume('('))
      return std::string("'shape' is not a tuple");
    while (!consume(')')) {
      skipSpace();
      size_t digits = rest.find_first_not_of("0123456789");
      llvm::StringRef number = rest.take_front(digits);
      int64_t size;
      // A sign is refused with the rest: NumPy has no negative dimensions.
      if (number.empty() || number.getAsInteger(10, size))
        return std::string("'shape' holds something other than non-negative integers");
      out.push_back(size);
      rest = rest.drop_front(number.size());
      if (!consume(',')) {
        if (!consume(')'))
          return std::string("'shape' is not a tuple");
        break;
      }
    }
    return std::nullopt;
  }

  llvm::StringRef rest;
};
} // namespace

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
  if (headerSize > kMaxHeaderSize)
    return npyError(path, "header of " + llvm::Twine(headerSize) + " bytes is longer than " +
                              llvm::Twine(kMaxHeaderSize) + ", NumPy's limit");
  if (headerStart + headerSize > data.size())
    return npyError(path, "truncated header");

  std::string descr;
  bool fortranOrder = false;
  NpyArray array;
  NpyHeaderParser parser(data.substr(headerStart, headerSize));
  if (std::optional<std::string> error = parser.parse(descr, fortranOrder, array.shape))
    return npyError(path, "malformed header: " + *error);
  if (fortranOrder)
    return npyError(path, "Fortran-ordered arrays are not supported");
  bool known = false;
  for (const auto &[name, dtype] : kDescriptors)
    if (descr == name)
      array.dtype = dtype, known = true;
  if (!known)
    return npyError(path, "unsupported dtype '" + llvm::StringRef(descr).take_front(20) + "'");
  std::optional<uint64_t> byteSize = checkedByteSize(array.shape, array.dtype);
  if (!byteSize)
    return npyError(path, "shape " + formatShape(array.shape) + " is too large");
  size_t dataStart = headerStart + headerSize;
  if (data.size() - dataStart != *byteSize)
    return npyError(path, "holds " + llvm::Twine(data.size() - dataStart) + " data bytes, " +
                              "its header needs " + llvm::Twine(*byteSize));
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
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
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
