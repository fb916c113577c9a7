//===- npy_fuzzer.cpp - Fuzz readNpy ----------------------------------------===//
//
// An accepted array holds exactly the bytes its dtype and shape need; it is
// written back with writeNpy and must read back the same.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"

#include "support/Npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = peft::fuzz::writeInput(data, size, "input.npy");
  auto array = peft::readNpy(path);
  if (!array) {
    llvm::consumeError(array.takeError());
    return 0;
  }
  // checkedByteSize, not numElements: an empty array may have other
  // dimensions whose product does not fit in 64 bits.
  std::optional<uint64_t> bytes = peft::checkedByteSize(array->shape, array->dtype);
  if (!bytes || array->bytes.size() != *bytes)
    __builtin_trap();

  peft::TensorView view;
  view.dtype = array->dtype;
  view.shape = array->shape;
  view.data = array->bytes.data();
  view.byteSize = array->bytes.size();
  if (view.isFloat())
    (void)view.toFloat32();
  std::string copy = peft::fuzz::inputDir() + "/copy.npy";
  if (llvm::Error error = peft::writeNpy(copy, view)) {
    llvm::errs() << "writeNpy failed on an array readNpy accepted: "
                 << llvm::toString(std::move(error)) << "\n";
    __builtin_trap();
  }
  auto back = peft::readNpy(copy);
  if (!back) {
    llvm::errs() << "cannot read back what writeNpy wrote: "
                 << llvm::toString(back.takeError()) << "\n";
    __builtin_trap();
  }
  if (back->dtype != array->dtype || back->shape != array->shape ||
      back->bytes != array->bytes)
    __builtin_trap();
  return 0;
}
