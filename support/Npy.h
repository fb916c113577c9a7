//===- Npy.h - NumPy .npy files ---------------------------------*- C++ -*-===//
#ifndef PEFT_SUPPORT_NPY_H
#define PEFT_SUPPORT_NPY_H

#include "support/Tensor.h"

#include "llvm/Support/Error.h"

namespace peft {

/// A tensor read from a .npy file, owning its bytes.
struct NpyArray {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// Reads a little-endian, C-ordered .npy file (version 1 to 3).
llvm::Expected<NpyArray> readNpy(llvm::StringRef path);

/// Writes `tensor` as a version 1 .npy file, atomically.
llvm::Error writeNpy(llvm::StringRef path, const TensorView &tensor);

} // namespace peft

#endif // PEFT_SUPPORT_NPY_H
