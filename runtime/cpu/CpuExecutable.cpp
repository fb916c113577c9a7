//===- CpuExecutable.cpp - model.so, loaded and called ----------------------===//
#include "runtime/cpu/CpuExecutable.h"

#include "runtime/ThreadPool.h"

#include <dlfcn.h>

#include <cstdlib>

namespace peft {
namespace {

class CpuExecutable final : public Executable {
public:
  ~CpuExecutable() override {
    if (library)
      dlclose(library);
  }

  void run(void **args) override { entry(args); }
  void freeBuffer(void *buffer) override { release(buffer); }

  void *library = nullptr;
  void (*entry)(void **) = nullptr;
  /// The library's allocator caches buffers (model_support.c); artifacts
  /// from before it malloc'ed them.
  void (*release)(void *) = std::free;
};

} // namespace

std::unique_ptr<Executable> loadCpuExecutable(const Manifest &manifest,
                                              const std::string &directory, std::string &error) {
  auto executable = std::make_unique<CpuExecutable>();
  std::string libraryPath = directory + "/" + manifest.library;
  executable->library = dlopen(libraryPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!executable->library) {
    error = libraryPath + ": cannot load: " + dlerror();
    return nullptr;
  }
  void *library = executable->library;
  executable->entry = reinterpret_cast<void (*)(void **)>(dlsym(library, manifest.entry.c_str()));
  if (!executable->entry) {
    error = libraryPath + ": no entry symbol '" + manifest.entry + "'";
    return nullptr;
  }
  if (void *release = dlsym(library, "peft_model_free_buffer"))
    executable->release = reinterpret_cast<void (*)(void *)>(release);
  // Parallel loops run on the runtime's pool (serial in a library without it).
  if (void *setter = dlsym(library, "peft_model_set_parallel_for"))
    reinterpret_cast<void (*)(void (*)(ParallelTask, void *, int64_t))>(setter)(&parallelFor);
  // The code trusts the shapes and the order of its arguments: a manifest
  // edited or paired with another library would make it read past buffers.
  std::string signatureSymbol = manifest.entry + "_signature";
  auto *signature = static_cast<const char *>(dlsym(library, signatureSymbol.c_str()));
  if (!signature) {
    error = libraryPath + ": no '" + signatureSymbol +
            "' symbol; it was not compiled by this peftc";
    return nullptr;
  }
  if (manifest.signature() != signature) {
    error = directory + "/manifest.json: describes other inputs, outputs or weights than " +
            libraryPath + " was compiled for; recompile the artifact";
    return nullptr;
  }
  return executable;
}

} // namespace peft
