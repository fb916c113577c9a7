//===- Safetensors.h - Read and write safetensors files ---------*- C++ -*-===//
//
// The reader memory-maps the file and validates it as the reference
// implementation does; tensors are views into the mapping, never copies.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_SUPPORT_SAFETENSORS_H
#define PEFT_SUPPORT_SAFETENSORS_H

#include "support/Tensor.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <map>
#include <memory>
#include <string>

namespace peft {

class SafetensorsFile {
public:
  /// Maps and validates `path`; errors name the file and the offending tensor.
  static llvm::Expected<std::unique_ptr<SafetensorsFile>> open(llvm::StringRef path);

  /// The tensor called `name`, or null.
  const TensorView *find(llvm::StringRef name) const;
  const std::map<std::string, TensorView> &tensors() const { return tensorsByName; }
  const std::map<std::string, std::string> &metadata() const { return metadataByKey; }
  llvm::StringRef path() const { return filePath; }

private:
  std::string filePath;
  std::unique_ptr<llvm::MemoryBuffer> mapping;
  std::map<std::string, TensorView> tensorsByName;
  std::map<std::string, std::string> metadataByKey;
};

/// Writes `tensors` (name -> view) as a safetensors file, atomically: the file
/// appears complete or not at all.
llvm::Error writeSafetensors(llvm::StringRef path,
                             const std::map<std::string, TensorView> &tensors);

} // namespace peft

#endif // PEFT_SUPPORT_SAFETENSORS_H
