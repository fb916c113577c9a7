//===- CudaExecutable.h - A CUDA model.so, run on the GPU -------*- C++ -*-===//
#ifndef PEFT_RUNTIME_CUDA_CUDAEXECUTABLE_H
#define PEFT_RUNTIME_CUDA_CUDAEXECUTABLE_H

#include "runtime/Executable.h"

namespace peft {

/// Opens the CUDA driver and the first GPU (a clear error where there is
/// none), loads the artifact's model.so and installs the driver calls its
/// launches make (gpu_api.h). A run copies the inputs to the device, uploads
/// the weights the first time it sees them, and copies the outputs back.
std::unique_ptr<Executable> loadCudaExecutable(const Manifest &manifest,
                                               const std::string &directory, std::string &error);

} // namespace peft

#endif // PEFT_RUNTIME_CUDA_CUDAEXECUTABLE_H
