//===- Tensor.cpp - Element types and tensor views --------------------------===//
#include "support/Tensor.h"

#include <cstring>
#include <limits>

namespace peft {

namespace {
struct DTypeInfo {
  DType dtype;
  const char *name;
  unsigned bits;
};
constexpr DTypeInfo dtypeTable[] = {
    {DType::Bool, "BOOL", 8},      {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},          {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},       {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},     {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},       {DType::F32, "F32", 32},
    {DType::F64, "F64", 64},       {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},       {DType::C64, "C64", 64},
    {DType::F8E4M3, "F8_E4M3", 8}, {DType::F8E5M2, "F8_E5M2", 8},
};
} // namespace

std::optional<DType> parseDType(llvm::StringRef name) {
  for (const DTypeInfo &info : dtypeTable)
    if (name == info.name)
      return info.dtype;
  return std::nullopt;
}

llvm::StringRef dtypeName(DType dtype) {
  return dtypeTable[static_cast<int>(dtype)].name;
}

unsigned dtypeBits(DType dtype) {
  return dtypeTable[static_cast<int>(dtype)].bits;
}

int64_t numElements(llvm::ArrayRef<int64_t> shape) {
  // An empty tensor is empty, however large its other sizes: their product
  // alone may overflow. Readers check shapes with checkedByteSize first.
  if (llvm::is_contained(shape, 0))
    return 0;
  int64_t count = 1;
  for (int64_t size : shape)
    if (__builtin_mul_overflow(count, size, &count))
      return std::numeric_limits<int64_t>::max();
  return count;
}

std::optional<uint64_t> checkedByteSize(llvm::ArrayRef<int64_t> shape, DType dtype) {
  uint64_t bytes = dtypeBits(dtype) / 8;
  for (int64_t size : shape) {
    if (size < 0)
      return std::nullopt;
    if (size == 0)
      return 0;
  }
  // Checked before each multiplication, so the product never wraps.
  for (int64_t size : shape) {
    if (bytes > kMaxTensorBytes / static_cast<uint64_t>(size))
      return std::nullopt;
    bytes *= static_cast<uint64_t>(size);
  }
  return bytes;
}

std::string formatShape(llvm::ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return text + "]";
}

static float halfToFloat(uint16_t half) {
  uint32_t sign = (half & 0x8000u) << 16;
  uint32_t exponent = (half >> 10) & 0x1f;
  uint32_t mantissa = half & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else { // Subnormal: renormalize.
    exponent = 113;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
  }
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

bool TensorView::isFloat() const {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 ||
         dtype == DType::F64;
}

std::vector<float> TensorView::toFloat32() const {
  int64_t count = numElements();
  std::vector<float> values(count);
  for (int64_t i = 0; i < count; ++i) {
    switch (dtype) {
    case DType::F32:
      std::memcpy(&values[i], data + 4 * i, 4);
      break;
    case DType::F64: {
      double wide;
      std::memcpy(&wide, data + 8 * i, 8);
      values[i] = static_cast<float>(wide);
      break;
    }
    case DType::F16: {
      uint16_t half;
      std::memcpy(&half, data + 2 * i, 2);
      values[i] = halfToFloat(half);
      break;
    }
    case DType::BF16: {
      uint16_t brain;
      std::memcpy(&brain, data + 2 * i, 2);
      uint32_t bits = static_cast<uint32_t>(brain) << 16;
      std::memcpy(&values[i], &bits, 4);
      break;
    }
    default:
      return {};
    }
  }
  return values;
}

} // namespace peft
