/*===- FakeCudaDriver.c - A libcuda.so.1 without a GPU, for tests --------===*\
 *
 * The CUDA driver calls the runtime makes (runtime/cuda/CudaDriver.h), on a
 * pretend device whose memory is the host's: allocations are calloc'd,
 * copies and fills are memcpy and loops, streams are synchronous. Kernels are
 * not run (there is nothing to run PTX), so a model's outputs are whatever
 * its buffers held; what the tests check is how the runtime drives the
 * driver (cuda-fake-driver.test), which a real driver would refuse as this
 * one does:
 *
 *   - a launch asking for more than 48 KiB of dynamic shared memory fails
 *     unless cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES) allowed it
 *     first; that attribute fails past the device's opt-in limit;
 *   - FAKE_CUDA_SHARED_OPTIN sets that limit (default 232448, an H100's);
 *   - FAKE_CUDA_LOG names a file each module load, attribute and launch is
 *     appended to, one line each.
 *
 * Loaded instead of the real driver by putting its directory first in
 * LD_LIBRARY_PATH (the runtime dlopens "libcuda.so.1").
\*===----------------------------------------------------------------------===*/
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

enum {
  kSuccess = 0,
  kInvalidValue = 1,
  kNotFound = 500,
  kSharedWithoutOptIn = 48 * 1024,
  kAttributeSharedOptIn = 97,    /* CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN */
  kAttributeMaxDynamicShared = 8 /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES */
};

typedef struct Function {
  char name[256];
  int maxDynamicShared;
  struct Function *next;
} Function;

typedef struct Module {
  Function *functions;
} Module;

__attribute__((format(printf, 1, 2))) static void logLine(const char *format, ...) {
  const char *path = getenv("FAKE_CUDA_LOG");
  if (!path)
    return;
  FILE *file = fopen(path, "a");
  if (!file)
    return;
  va_list args;
  va_start(args, format);
  vfprintf(file, format, args);
  va_end(args);
  fputc('\n', file);
  fclose(file);
}

static int sharedOptIn(void) {
  const char *value = getenv("FAKE_CUDA_SHARED_OPTIN");
  return value ? atoi(value) : 232448;
}

CUresult cuInit(unsigned flags) { return flags ? kInvalidValue : kSuccess; }

CUresult cuDeviceGetCount(int *count) {
  *count = 1;
  return kSuccess;
}

CUresult cuDeviceGet(int *device, int ordinal) {
  *device = ordinal;
  return ordinal == 0 ? kSuccess : kInvalidValue;
}

CUresult cuDeviceGetName(char *name, int length, int device) {
  (void)device;
  snprintf(name, (size_t)length, "fake GPU");
  return kSuccess;
}

CUresult cuDeviceGetAttribute(int *value, int attribute, int device) {
  (void)device;
  if (attribute != kAttributeSharedOptIn)
    return kInvalidValue;
  *value = sharedOptIn();
  return kSuccess;
}

static int context;

CUresult cuDevicePrimaryCtxRetain(void **result, int device) {
  (void)device;
  *result = &context;
  return kSuccess;
}

CUresult cuDevicePrimaryCtxRelease_v2(int device) {
  (void)device;
  return kSuccess;
}

CUresult cuCtxSetCurrent(void *current) { return current == &context ? kSuccess : kInvalidValue; }

static int stream;

CUresult cuStreamCreate(void **result, unsigned flags) {
  (void)flags;
  *result = &stream;
  return kSuccess;
}

CUresult cuStreamDestroy_v2(void *handle) {
  (void)handle;
  return kSuccess;
}

CUresult cuStreamSynchronize(void *handle) {
  (void)handle;
  return kSuccess;
}

/* Kernels are named in the PTX as `.entry NAME(`. */
CUresult cuModuleLoadData(void **result, const void *image) {
  Module *module = calloc(1, sizeof(Module));
  if (!module)
    return kInvalidValue;
  int count = 0;
  for (const char *at = image; (at = strstr(at, ".entry ")); ++count) {
    at += strlen(".entry ");
    Function *function = calloc(1, sizeof(Function));
    if (!function)
      return kInvalidValue;
    size_t length = strcspn(at, "( \n");
    if (length >= sizeof(function->name))
      length = sizeof(function->name) - 1;
    memcpy(function->name, at, length);
    function->next = module->functions;
    module->functions = function;
  }
  logLine("cuModuleLoadData: %d kernels", count);
  *result = module;
  return kSuccess;
}

CUresult cuModuleUnload(void *handle) {
  Module *module = handle;
  while (module->functions) {
    Function *next = module->functions->next;
    free(module->functions);
    module->functions = next;
  }
  free(module);
  return kSuccess;
}

CUresult cuModuleGetFunction(void **result, void *handle, const char *name) {
  for (Function *function = ((Module *)handle)->functions; function; function = function->next)
    if (strcmp(function->name, name) == 0) {
      *result = function;
      return kSuccess;
    }
  return kNotFound;
}

CUresult cuFuncSetAttribute(void *handle, int attribute, int value) {
  Function *function = handle;
  if (attribute != kAttributeMaxDynamicShared || value < 0 || value > sharedOptIn())
    return kInvalidValue;
  function->maxDynamicShared = value;
  logLine("cuFuncSetAttribute: %s dynamic shared memory %d", function->name, value);
  return kSuccess;
}

CUresult cuLaunchKernel(void *handle, unsigned gridX, unsigned gridY, unsigned gridZ,
                        unsigned blockX, unsigned blockY, unsigned blockZ, unsigned sharedBytes,
                        void *launchStream, void **params, void **extra) {
  (void)launchStream, (void)params, (void)extra;
  Function *function = handle;
  if (sharedBytes > kSharedWithoutOptIn && (int)sharedBytes > function->maxDynamicShared)
    return kInvalidValue;
  logLine("cuLaunchKernel: %s grid %ux%ux%u block %ux%ux%u shared %u", function->name, gridX,
          gridY, gridZ, blockX, blockY, blockZ, sharedBytes);
  return kSuccess;
}

CUresult cuMemAllocAsync(CUdeviceptr *pointer, size_t bytes, void *handle) {
  (void)handle;
  void *memory = calloc(1, bytes ? bytes : 1);
  *pointer = (CUdeviceptr)(uintptr_t)memory;
  return memory ? kSuccess : 2 /* CUDA_ERROR_OUT_OF_MEMORY */;
}

CUresult cuMemFreeAsync(CUdeviceptr pointer, void *handle) {
  (void)handle;
  free((void *)(uintptr_t)pointer);
  return kSuccess;
}

CUresult cuMemcpyAsync(CUdeviceptr target, CUdeviceptr source, size_t bytes, void *handle) {
  (void)handle;
  memmove((void *)(uintptr_t)target, (const void *)(uintptr_t)source, bytes);
  return kSuccess;
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr target, const void *source, size_t bytes, void *handle) {
  (void)handle;
  memcpy((void *)(uintptr_t)target, source, bytes);
  return kSuccess;
}

CUresult cuMemcpyDtoHAsync_v2(void *target, CUdeviceptr source, size_t bytes, void *handle) {
  (void)handle;
  memcpy(target, (const void *)(uintptr_t)source, bytes);
  return kSuccess;
}

CUresult cuMemsetD32Async(CUdeviceptr target, unsigned value, size_t count, void *handle) {
  (void)handle;
  uint32_t *words = (uint32_t *)(uintptr_t)target;
  for (size_t i = 0; i < count; ++i)
    words[i] = value;
  return kSuccess;
}

CUresult cuMemsetD16Async(CUdeviceptr target, unsigned short value, size_t count, void *handle) {
  (void)handle;
  uint16_t *halves = (uint16_t *)(uintptr_t)target;
  for (size_t i = 0; i < count; ++i)
    halves[i] = value;
  return kSuccess;
}

CUresult cuGetErrorString(CUresult result, const char **message) {
  *message = result == kInvalidValue ? "invalid argument (fake driver)" : "error (fake driver)";
  return kSuccess;
}
