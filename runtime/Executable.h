//===- Executable.h - A target's compiled code, as the core runs it -*- C++ -*-===//
//
// The runtime's core (Runtime.cpp: manifest, inputs, weights, outputs) is
// the same for every target; what differs is how the compiled code is loaded
// and called. A target provides an Executable: runtime/cpu loads model.so,
// runtime/cuda loads model.so and runs its kernels on the GPU.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_RUNTIME_EXECUTABLE_H
#define PEFT_RUNTIME_EXECUTABLE_H

#include "runtime/Manifest.h"

#include <memory>
#include <string>

namespace peft {

class Executable {
public:
  virtual ~Executable();

  /// Runs the entry. `args` as lowering/EmitPackedEntry.cpp lays them out:
  /// args[0] points to the result descriptors, then one memref descriptor
  /// per input and per weight, all in host memory; the results' buffers are
  /// in host memory after it too. False with `error` set when the run failed
  /// (a GPU's error).
  virtual bool run(void **args, std::string &error) = 0;

  /// Frees a buffer that a run returned (an output the core adopted).
  virtual void freeBuffer(void *buffer) = 0;
};

/// The executable of the artifact in `directory` that `manifest` describes,
/// for the manifest's target; null with `error` set ("PATH: why") when the
/// target is unknown here or its code does not load.
std::unique_ptr<Executable> loadExecutable(const Manifest &manifest, const std::string &directory,
                                           std::string &error);

} // namespace peft

#endif // PEFT_RUNTIME_EXECUTABLE_H
