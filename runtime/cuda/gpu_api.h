/*===- gpu_api.h - What a CUDA model.so asks of the runtime -------*- C -*-===*\
 *
 * The host code of a CUDA artifact calls MLIR's GPU runtime functions
 * (mgpuLaunchKernel, mgpuMemAlloc, ...: cuda_model_support.c implements them)
 * and they call these, which the runtime (CudaExecutable.cpp) installs with
 * peft_model_set_gpu_api once it has a CUDA context. `session` is the loaded
 * model's; each call goes to the stream of the session whose run (on the
 * calling thread) makes it, the first error kept for that run to report.
 *
\*===----------------------------------------------------------------------===*/
#ifndef PEFT_RUNTIME_CUDA_GPU_API_H
#define PEFT_RUNTIME_CUDA_GPU_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct PeftGpuApi {
  void *session;
  /* A module from PTX text (NUL-terminated); null after an error. */
  void *(*loadModule)(void *session, const void *ptx);
  void (*unloadModule)(void *session, void *module);
  void *(*getFunction)(void *session, void *module, const char *name);
  void (*launch)(void *session, void *function, int64_t gridX, int64_t gridY, int64_t gridZ,
                 int64_t blockX, int64_t blockY, int64_t blockZ, int32_t sharedBytes,
                 void **params);
  void *(*allocate)(void *session, uint64_t bytes);
  void (*release)(void *session, void *pointer);
  void (*copy)(void *session, void *target, const void *source, uint64_t bytes);
  void (*fill32)(void *session, void *target, uint32_t value, uint64_t count);
  void (*fill16)(void *session, void *target, uint16_t value, uint64_t count);
} PeftGpuApi;

/* Exported by every CUDA model.so. */
typedef void (*PeftSetGpuApi)(const PeftGpuApi *api);

#ifdef __cplusplus
}
#endif

#endif /* PEFT_RUNTIME_CUDA_GPU_API_H */
