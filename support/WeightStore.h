//===- WeightStore.h - Weights kept in files, mapped on demand --*- C++ -*-===//
//
// `peft.weight` ops name a tensor inside a file. The store opens each file once
// (safetensors natively; other formats, like ONNX, through openers that their
// front ends register) and hands out views into the mapped bytes.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_SUPPORT_WEIGHTSTORE_H
#define PEFT_SUPPORT_WEIGHTSTORE_H

#include "support/Tensor.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <memory>
#include <mutex>

namespace peft {

/// A file of named tensors.
class WeightSource {
public:
  virtual ~WeightSource() = default;
  virtual const TensorView *find(llvm::StringRef name) const = 0;
  /// Done with `name` for now: a source that maps its file lets the pages go
  /// (they are read again if the tensor is). Views stay valid.
  virtual void release(llvm::StringRef name) const {}
};

/// Lets the kernel drop the pages wholly inside [data, data + size) of a
/// read-only file mapping from this process (they are read again from the
/// page cache on the next access). Only for bytes of a mapped file: on
/// anonymous memory it would zero them.
void dropMappedPages(const uint8_t *data, uint64_t size);

class WeightStore {
public:
  using Opener =
      std::function<llvm::Expected<std::unique_ptr<WeightSource>>(llvm::StringRef)>;

  /// Makes files whose name ends in `extension` readable by every store.
  static void registerFormat(llvm::StringRef extension, Opener opener);

  /// The tensor `name` in `file`; the view lives as long as the store.
  llvm::Expected<TensorView> lookup(llvm::StringRef file, llvm::StringRef name);

  /// See WeightSource::release; nothing when `file` is not open.
  void release(llvm::StringRef file, llvm::StringRef name);
  /// Registers an already-open source under `path`, so that it is not re-read.
  void adopt(llvm::StringRef path, std::unique_ptr<WeightSource> source);

private:
  llvm::Expected<WeightSource *> open(llvm::StringRef path);

  std::mutex mutex;
  llvm::StringMap<std::unique_ptr<WeightSource>> sources;
};

} // namespace peft

#endif // PEFT_SUPPORT_WEIGHTSTORE_H
