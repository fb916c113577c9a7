//===- Executable.h - A target's compiled code, as the core runs it -*- C++ -*-===//
//
// The runtime's core (Runtime.cpp: manifest, inputs, weights, outputs) is
// the same for every target; what differs is how the compiled code is loaded
// and called. A target provides an Executable: runtime/cpu loads model.so,
// runtime/cuda loads model.so and runs its kernels on the GPU. Each session
// runs through an ExecutionContext of its own, so sessions on different
// threads may run at once.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_RUNTIME_EXECUTABLE_H
#define PEFT_RUNTIME_EXECUTABLE_H

#include "runtime/Manifest.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace peft {

/// The memory a target's code runs on.
enum class Memory {
  Host,           ///< cpu.
  Device,         ///< cuda: the GPU's, apart from the host's.
  EmulatedDevice, ///< cuda-emulated: a device whose memory is the host's.
};

/// Where a run finds its inputs and leaves its outputs.
struct RunPlacement {
  std::vector<bool> inputsOnDevice; ///< By input; none when empty.
  /// Each output left on the device in a dense buffer of its own (freed by
  /// freeBuffer(buffer, true)), rather than copied to the host.
  bool outputsOnDevice = false;
  /// By weight, a number that changes whenever its data does (a file bound,
  /// an adapter loaded): a device keeps its copy while the number stays,
  /// since a buffer's address may be reused after it is freed.
  std::vector<uint64_t> weightVersions;
};

/// One session's state on the target (a CUDA stream, what its run has
/// allocated): runs in different contexts of one executable may overlap.
class ExecutionContext {
public:
  virtual ~ExecutionContext();

  /// Runs the entry. `args` as lowering/EmitPackedEntry.cpp lays them out:
  /// args[0] points to the result descriptors, then one memref descriptor
  /// per input and per weight, all in host memory, their buffers in host
  /// memory or, as `placement` says for inputs, the device's; the results'
  /// buffers are in host memory after it, or the device's as `placement`
  /// says. False with `error` set when the run failed (a GPU's error).
  virtual bool run(void **args, const RunPlacement &placement, std::string &error) = 0;

  /// Frees a buffer that a run returned (an output the core adopted), in
  /// device memory when `onDevice`.
  virtual void freeBuffer(void *buffer, bool onDevice) = 0;

  /// Copies `bytes` at `device` (device memory) to `host`; false with `error`
  /// set when the device refuses.
  virtual bool copyToHost(void *host, const void *device, size_t bytes, std::string &error) = 0;
};

/// A target's loaded code, shared by every session of a model: it holds no
/// state of a run.
class Executable {
public:
  virtual ~Executable();

  /// The memory the code runs on.
  virtual Memory memory() const { return Memory::Host; }

  /// A context for one session; null with `error` set. Contexts must be
  /// destroyed before their executable.
  virtual std::unique_ptr<ExecutionContext> newContext(std::string &error) = 0;
};

/// The executable of the artifact in `directory` that `manifest` describes,
/// for the manifest's target; null with `error` set ("PATH: why") when the
/// target is unknown here or its code does not load.
std::unique_ptr<Executable> loadExecutable(const Manifest &manifest, const std::string &directory,
                                           std::string &error);

} // namespace peft

#endif // PEFT_RUNTIME_EXECUTABLE_H
