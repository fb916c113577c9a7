//===- safetensors_fuzzer.cpp - Fuzz SafetensorsFile::open ------------------===//
//
// Every tensor the reader accepts must lie inside the file with the size its
// dtype and shape need; ASan checks the bytes by reading them all. Accepted
// files are written back with writeSafetensors and must read back the same.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"

#include "support/Safetensors.h"

#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = peft::fuzz::writeInput(data, size, "input.safetensors");
  auto file = peft::SafetensorsFile::open(path);
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  for (const auto &[name, view] : (*file)->tensors()) {
    if ((*file)->find(name) != &view)
      __builtin_trap();
    // checkedByteSize, not numElements: an empty tensor may have other
    // dimensions whose product does not fit in 64 bits.
    std::optional<uint64_t> bytes = peft::checkedByteSize(view.shape, view.dtype);
    if (!bytes || view.byteSize != *bytes)
      __builtin_trap();
    peft::fuzz::touch(view.data, view.byteSize);
    if (view.isFloat())
      (void)view.toFloat32();
  }
  for (const auto &[key, value] : (*file)->metadata())
    peft::fuzz::touch(reinterpret_cast<const uint8_t *>(value.data()), value.size());

  // The writer on what the reader accepted: the same tensors must come back.
  std::string copy = peft::fuzz::inputDir() + "/copy.safetensors";
  if (llvm::Error error = peft::writeSafetensors(copy, (*file)->tensors())) {
    llvm::errs() << "writeSafetensors failed on tensors the reader accepted: "
                 << llvm::toString(std::move(error)) << "\n";
    __builtin_trap();
  }
  auto reread = peft::SafetensorsFile::open(copy);
  if (!reread) {
    llvm::errs() << "cannot read back what writeSafetensors wrote: "
                 << llvm::toString(reread.takeError()) << "\n";
    __builtin_trap();
  }
  if ((*reread)->tensors().size() != (*file)->tensors().size())
    __builtin_trap();
  for (const auto &[name, view] : (*file)->tensors()) {
    const peft::TensorView *back = (*reread)->find(name);
    if (!back || back->dtype != view.dtype || back->shape != view.shape ||
        back->byteSize != view.byteSize ||
        (view.byteSize && std::memcmp(back->data, view.data, view.byteSize)))
      __builtin_trap();
  }
  return 0;
}
