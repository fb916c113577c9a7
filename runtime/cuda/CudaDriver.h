//===- CudaDriver.h - The CUDA driver API, opened at run time ---*- C++ -*-===//
//
// The runtime calls the driver through dlopen("libcuda.so.1"), so that it
// builds without the CUDA toolkit and runs, CPU artifacts included, where
// there is no GPU; a CUDA artifact then fails to load with a clear reason.
// Only the calls and types we use are declared, as the driver API defines
// them (cuda.h, CUDA 12).
//===----------------------------------------------------------------------===//
#ifndef PEFT_RUNTIME_CUDA_CUDADRIVER_H
#define PEFT_RUNTIME_CUDA_CUDADRIVER_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace peft {

using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUdeviceptr = unsigned long long;

/// cuDeviceGetAttribute's CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN.
constexpr int kDeviceMaxSharedMemoryOptIn = 97;
/// cuFuncSetAttribute's CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
constexpr int kFunctionMaxDynamicSharedBytes = 8;
/// The shared memory a kernel may have without opting in.
constexpr int kSharedMemoryWithoutOptIn = 48 * 1024;

/// The driver's entry points, or the reason there are none.
struct CudaDriver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamDestroy)(CUstream);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, CUstream, void **, void **);
  CUresult (*cuMemAllocAsync)(CUdeviceptr *, size_t, CUstream);
  CUresult (*cuMemFreeAsync)(CUdeviceptr, CUstream);
  CUresult (*cuMemcpyAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream);
  CUresult (*cuMemsetD16Async)(CUdeviceptr, unsigned short, size_t, CUstream);
  CUresult (*cuGetErrorString)(CUresult, const char **);

  /// "cuFoo: message (code)" for a failed call.
  std::string describe(const char *call, CUresult result) const;
};

/// The driver, opened and initialized once per process, or null with
/// `error` saying why not (no libcuda.so.1, no device).
const CudaDriver *openCudaDriver(std::string &error);

} // namespace peft

#endif // PEFT_RUNTIME_CUDA_CUDADRIVER_H
