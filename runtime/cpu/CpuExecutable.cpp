//===- CpuExecutable.cpp - model.so, loaded and called ----------------------===//
#include "runtime/cpu/CpuExecutable.h"

#include "runtime/ModelLibrary.h"
#include "runtime/ThreadPool.h"

#include <cstdlib>

namespace peft {
namespace {

class CpuExecutable final : public Executable {
public:
  ~CpuExecutable() override { library.close(); }

  bool run(void **args, std::string &) override {
    library.entry(args);
    return true;
  }
  void freeBuffer(void *buffer) override { release(buffer); }

  ModelLibrary library;
  /// The library's allocator caches buffers (model_support.c); artifacts
  /// from before it malloc'ed them.
  void (*release)(void *) = std::free;
};

} // namespace

std::unique_ptr<Executable> loadCpuExecutable(const Manifest &manifest,
                                              const std::string &directory, std::string &error) {
  auto executable = std::make_unique<CpuExecutable>();
  if (!openModelLibrary(manifest, directory, executable->library, error))
    return nullptr;
  if (void *release = executable->library.find("peft_model_free_buffer"))
    executable->release = reinterpret_cast<void (*)(void *)>(release);
  // Parallel loops run on the runtime's pool (serial in a library without it).
  if (void *setter = executable->library.find("peft_model_set_parallel_for"))
    reinterpret_cast<void (*)(void (*)(ParallelTask, void *, int64_t))>(setter)(&parallelFor);
  return executable;
}

} // namespace peft
