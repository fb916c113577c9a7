//===- Safetensors.h - Read and write safetensors files ---------*- C++ -*-===//
//
// The reader memory-maps the file and validates it as the reference
// implementation does; tensors are views into the mapping, never copies.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_SUPPORT_SAFETENSORS_H
#define PEFT_SUPPORT_SAFETENSORS_H

#include "support/Tensor.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/raw_ostream.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <map>
#include <memory>
#include <string>

namespace peft {

class SafetensorsFile {
public:
  /// Maps and validates `path`; errors name the file and the offending tensor.
  /// `writable`: a private mapping, whose pages the system copies when
  /// first written (the file never changes): tensors that may be written in
  /// place (writableBytes).
  static llvm::Expected<std::unique_ptr<SafetensorsFile>> open(llvm::StringRef path,
                                                               bool writable = false);

  /// `data` (`bytes` of it) as writable memory when it lies in a writable
  /// mapping of this file, else null.
  void *writableBytes(const void *data, size_t bytes) const;

  /// The tensor called `name`, or null.
  const TensorView *find(llvm::StringRef name) const;
  const std::map<std::string, TensorView> &tensors() const { return tensorsByName; }
  const std::map<std::string, std::string> &metadata() const { return metadataByKey; }
  llvm::StringRef path() const { return filePath; }

private:
  std::string filePath;
  std::unique_ptr<llvm::MemoryBuffer> mapping;
  bool writableMapping = false;
  std::map<std::string, TensorView> tensorsByName;
  std::map<std::string, std::string> metadataByKey;
};

/// Writes `tensors` (name -> view) as a safetensors file, atomically: the file
/// appears complete or not at all.
llvm::Error writeSafetensors(llvm::StringRef path,
                             const std::map<std::string, TensorView> &tensors);

/// The same for tensors made one at a time, so that one is in memory at
/// once: `layout` gives each one's dtype, shape and byteSize (not its data),
/// and `write(name, os)` writes exactly byteSize bytes of it, called in name
/// order.
llvm::Error writeSafetensors(
    llvm::StringRef path, const std::map<std::string, TensorView> &layout,
    llvm::function_ref<llvm::Error(const std::string &name, llvm::raw_ostream &os)> write);

} // namespace peft

#endif // PEFT_SUPPORT_SAFETENSORS_H
