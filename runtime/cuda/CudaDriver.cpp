//===- CudaDriver.cpp - The CUDA driver API, opened at run time -------------===//
#include "runtime/cuda/CudaDriver.h"

#include <dlfcn.h>

#include <mutex>

namespace peft {

std::string CudaDriver::describe(const char *call, CUresult result) const {
  const char *message = nullptr;
  if (cuGetErrorString)
    cuGetErrorString(result, &message);
  return std::string(call) + ": " + (message ? message : "error") + " (" +
         std::to_string(result) + ")";
}

/// Binds `slot` to the driver's `name`; false if the driver lacks it.
template <typename Function>
static bool bind(void *library, Function &slot, const char *name) {
  slot = reinterpret_cast<Function>(dlsym(library, name));
  return slot != nullptr;
}

static const CudaDriver *open(std::string &error) {
  void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    error = "no CUDA driver: libcuda.so.1 cannot be loaded (" + std::string(dlerror()) + ")";
    return nullptr;
  }
  static CudaDriver driver;
  const char *missing = nullptr;
  auto need = [&](auto &slot, const char *name) {
    if (!missing && !bind(library, slot, name))
      missing = name;
  };
  need(driver.cuInit, "cuInit");
  need(driver.cuDeviceGetCount, "cuDeviceGetCount");
  need(driver.cuDeviceGet, "cuDeviceGet");
  need(driver.cuDeviceGetName, "cuDeviceGetName");
  need(driver.cuDeviceGetAttribute, "cuDeviceGetAttribute");
  need(driver.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  need(driver.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  need(driver.cuCtxSetCurrent, "cuCtxSetCurrent");
  need(driver.cuStreamCreate, "cuStreamCreate");
  need(driver.cuStreamDestroy, "cuStreamDestroy_v2");
  need(driver.cuStreamSynchronize, "cuStreamSynchronize");
  need(driver.cuModuleLoadData, "cuModuleLoadData");
  need(driver.cuModuleUnload, "cuModuleUnload");
  need(driver.cuModuleGetFunction, "cuModuleGetFunction");
  need(driver.cuFuncSetAttribute, "cuFuncSetAttribute");
  need(driver.cuLaunchKernel, "cuLaunchKernel");
  need(driver.cuMemAllocAsync, "cuMemAllocAsync");
  need(driver.cuMemFreeAsync, "cuMemFreeAsync");
  need(driver.cuMemcpyAsync, "cuMemcpyAsync");
  need(driver.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
  need(driver.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
  need(driver.cuMemsetD32Async, "cuMemsetD32Async");
  need(driver.cuMemsetD16Async, "cuMemsetD16Async");
  need(driver.cuGetErrorString, "cuGetErrorString");
  if (missing) {
    error = "the CUDA driver (libcuda.so.1) has no " + std::string(missing) +
            " (a driver for CUDA 11.2 or later is needed)";
    return nullptr;
  }
  if (CUresult result = driver.cuInit(0)) {
    error = "no usable GPU: " + driver.describe("cuInit", result);
    return nullptr;
  }
  int count = 0;
  if (CUresult result = driver.cuDeviceGetCount(&count)) {
    error = "no usable GPU: " + driver.describe("cuDeviceGetCount", result);
    return nullptr;
  }
  if (count == 0) {
    error = "no GPU: the CUDA driver finds no device";
    return nullptr;
  }
  return &driver;
}

const CudaDriver *openCudaDriver(std::string &error) {
  static std::once_flag once;
  static const CudaDriver *driver = nullptr;
  static std::string reason;
  std::call_once(once, [] { driver = open(reason); });
  if (!driver)
    error = reason;
  return driver;
}

} // namespace peft
