//===- CpuExecutable.cpp - model.so, loaded and called ----------------------===//
#include "runtime/cpu/CpuExecutable.h"

#include "runtime/ModelLibrary.h"
#include "runtime/ThreadPool.h"

#include <cstdlib>
#include <cstring>

namespace peft {
namespace {

/// A host library; for cuda-emulated, a device whose memory is the host's.
/// Its code keeps no state between calls (the allocator's cache is locked),
/// so contexts only call it.
class CpuExecutable final : public Executable {
public:
  explicit CpuExecutable(Memory memory) : kind(memory) {}
  ~CpuExecutable() override { library.close(); }

  Memory memory() const override { return kind; }
  std::unique_ptr<ExecutionContext> newContext(std::string &) override {
    return std::make_unique<Context>(*this);
  }

  Memory kind;
  ModelLibrary library;
  /// The library's allocator caches buffers (model_support.c); artifacts
  /// from before it malloc'ed them.
  void (*release)(void *) = std::free;

private:
  class Context final : public ExecutionContext {
  public:
    explicit Context(const CpuExecutable &executable) : executable(executable) {}
    bool run(void **args, const RunPlacement &, std::string &) override {
      executable.library.entry(args);
      return true;
    }
    void freeBuffer(void *buffer, bool) override { executable.release(buffer); }
    bool copyToHost(void *host, const void *device, size_t bytes, std::string &) override {
      std::memcpy(host, device, bytes);
      return true;
    }

  private:
    const CpuExecutable &executable;
  };
};

} // namespace

std::unique_ptr<Executable> loadCpuExecutable(const Manifest &manifest,
                                              const std::string &directory, std::string &error) {
  // cuda-emulated: the CUDA lowering's kernels as host code (tests), its
  // device memory the host's.
  auto executable = std::make_unique<CpuExecutable>(
      manifest.target == "cuda-emulated" ? Memory::EmulatedDevice : Memory::Host);
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
