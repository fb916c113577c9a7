//===- Targets.cpp - The targets this runtime runs ---------------------------===//
#include "runtime/Executable.h"

#include "runtime/cpu/CpuExecutable.h"
#include "runtime/cuda/CudaExecutable.h"

namespace peft {

Executable::~Executable() = default;
ExecutionContext::~ExecutionContext() = default;

std::unique_ptr<Executable> loadExecutable(const Manifest &manifest, const std::string &directory,
                                           std::string &error) {
  if (manifest.target == "cpu" || manifest.target == "cuda-emulated")
    return loadCpuExecutable(manifest, directory, error);
  if (manifest.target == "cuda")
    return loadCudaExecutable(manifest, directory, error);
  error = directory + "/manifest.json: target '" + manifest.target +
          "' cannot run in this runtime (supported: cpu, cuda, cuda-emulated)";
  return nullptr;
}

} // namespace peft
