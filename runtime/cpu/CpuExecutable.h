//===- CpuExecutable.h - model.so, loaded and called ------------*- C++ -*-===//
#ifndef PEFT_RUNTIME_CPU_CPUEXECUTABLE_H
#define PEFT_RUNTIME_CPU_CPUEXECUTABLE_H

#include "runtime/Executable.h"

namespace peft {

/// Loads the artifact's shared library (the CPU back end's model.so), checks
/// that it was compiled for this manifest, and hands its parallel loops to
/// the runtime's thread pool.
std::unique_ptr<Executable> loadCpuExecutable(const Manifest &manifest,
                                              const std::string &directory, std::string &error);

} // namespace peft

#endif // PEFT_RUNTIME_CPU_CPUEXECUTABLE_H
