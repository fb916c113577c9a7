//===- Tensor.h - Element types and non-owning tensor views -----*- C++ -*-===//
#ifndef PEFT_SUPPORT_TENSOR_H
#define PEFT_SUPPORT_TENSOR_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace peft {

/// Element types as safetensors names them.
enum class DType { Bool, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64,
                   C64, F8E4M3, F8E5M2 };

std::optional<DType> parseDType(llvm::StringRef name);
llvm::StringRef dtypeName(DType dtype);
unsigned dtypeBits(DType dtype);

int64_t numElements(llvm::ArrayRef<int64_t> shape);

/// The most bytes a tensor read from a file may have (256 TiB): far beyond any
/// memory, and small enough that no later size computation overflows.
constexpr uint64_t kMaxTensorBytes = uint64_t(1) << 48;

/// The byte size of a `dtype` tensor of `shape`, or nullopt where a size is
/// negative or the size exceeds kMaxTensorBytes: what a reader checks before it
/// trusts a shape from a file.
std::optional<uint64_t> checkedByteSize(llvm::ArrayRef<int64_t> shape, DType dtype);
std::string formatShape(llvm::ArrayRef<int64_t> shape);

/// A tensor's bytes in memory owned elsewhere (a file mapping, a buffer).
struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t byteSize = 0;

  int64_t numElements() const { return peft::numElements(shape); }
  /// True for the element types `toFloat32` converts.
  bool isFloat() const;
  /// The values widened to fp32 (F32, F16, BF16, F64).
  std::vector<float> toFloat32() const;
};

} // namespace peft

#endif // PEFT_SUPPORT_TENSOR_H
