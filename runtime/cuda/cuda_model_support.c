/*===- cuda_model_support.c - MLIR's GPU runtime calls, for our runtime -*- C -*-===*\
 *
 * Linked into every CUDA model.so by peftc. The host code upstream's GPU
 * lowering makes calls MLIR's runtime wrappers (mgpu*); these forward them to
 * the functions the runtime installs (gpu_api.h), so that an artifact needs
 * neither MLIR nor the CUDA toolkit, only the runtime and a driver.
 *
 * The library's constructors ask for its modules before the runtime has
 * installed anything: a module is loaded when a kernel of it is first looked
 * up, in a run (once, whichever session's run is first). Every launch, copy
 * and free goes to the stream of the session whose run makes it, in order, so
 * streams here are placeholders and synchronizing is the runtime's, at the
 * end of a run.
 *
\*===----------------------------------------------------------------------===*/
#include "gpu_api.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

static const PeftGpuApi *api = 0;

void peft_model_set_gpu_api(const PeftGpuApi *installed) { api = installed; }

/* What mgpuModuleLoad* returns: the PTX, and its module once loaded. */
typedef struct {
  const void *ptx;
  void *module;
} DeferredModule;

static void noRuntime(const char *call) {
  fprintf(stderr, "peft model: %s before the runtime installed its CUDA calls\n", call);
  abort();
}

void *mgpuModuleLoad(void *data, size_t size) {
  (void)size;
  DeferredModule *module = calloc(1, sizeof(DeferredModule));
  if (module)
    module->ptx = data;
  return module;
}

void *mgpuModuleLoadJIT(void *data, int optLevel) {
  (void)optLevel;
  return mgpuModuleLoad(data, 0);
}

void mgpuModuleUnload(void *handle) {
  DeferredModule *module = handle;
  if (!module)
    return;
  if (module->module && api)
    api->unloadModule(api->session, module->module);
  free(module);
}

/* Sessions on several threads may look up kernels at once. */
static pthread_mutex_t moduleLock = PTHREAD_MUTEX_INITIALIZER;

void *mgpuModuleGetFunction(void *handle, const char *name) {
  DeferredModule *module = handle;
  if (!api)
    noRuntime("a kernel lookup");
  if (!module)
    return 0;
  pthread_mutex_lock(&moduleLock);
  if (!module->module)
    module->module = api->loadModule(api->session, module->ptx);
  void *loaded = module->module;
  pthread_mutex_unlock(&moduleLock);
  return loaded ? api->getFunction(api->session, loaded, name) : 0;
}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY, intptr_t gridZ,
                      intptr_t blockX, intptr_t blockY, intptr_t blockZ, int32_t sharedBytes,
                      void *stream, void **params, void **extra, size_t paramsCount) {
  (void)stream, (void)extra, (void)paramsCount;
  if (!api)
    noRuntime("a launch");
  if (function)
    api->launch(api->session, function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes,
                params);
}

/* The runtime's stream stands for every stream. */
void *mgpuStreamCreate(void) { return (void *)1; }
void mgpuStreamDestroy(void *stream) { (void)stream; }
void mgpuStreamSynchronize(void *stream) { (void)stream; }
void mgpuStreamWaitEvent(void *stream, void *event) { (void)stream, (void)event; }
void *mgpuEventCreate(void) { return (void *)1; }
void mgpuEventDestroy(void *event) { (void)event; }
void mgpuEventSynchronize(void *event) { (void)event; }
void mgpuEventRecord(void *event, void *stream) { (void)event, (void)stream; }
void mgpuSetDefaultDevice(int32_t device) { (void)device; }

void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared) {
  (void)stream, (void)hostShared;
  if (!api)
    noRuntime("an allocation");
  return api->allocate(api->session, bytes);
}

void mgpuMemFree(void *pointer, void *stream) {
  (void)stream;
  if (api && pointer)
    api->release(api->session, pointer);
}

void mgpuMemcpy(void *target, void *source, size_t bytes, void *stream) {
  (void)stream;
  if (!api)
    noRuntime("a copy");
  api->copy(api->session, target, source, bytes);
}

void mgpuMemset32(void *target, unsigned int value, size_t count, void *stream) {
  (void)stream;
  if (!api)
    noRuntime("a fill");
  api->fill32(api->session, target, value, count);
}

void mgpuMemset16(void *target, unsigned short value, size_t count, void *stream) {
  (void)stream;
  if (!api)
    noRuntime("a fill");
  api->fill16(api->session, target, value, count);
}
