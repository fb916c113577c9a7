//===- CudaExecutable.cpp - A CUDA model.so, loaded and run on the GPU ------===//
#include "runtime/cuda/CudaExecutable.h"

#include "runtime/ModelLibrary.h"
#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/gpu_api.h"
#include "support/Tensor.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>

namespace peft {
namespace {

/// Elements from a descriptor's aligned pointer + offset to its last element.
static uint64_t spanOf(const int64_t *words, size_t rank) {
  uint64_t span = 1;
  for (size_t d = 0; d < rank; ++d) {
    int64_t size = words[3 + d], stride = words[3 + rank + d];
    if (size == 0)
      return 0;
    span += uint64_t(size - 1) * uint64_t(stride < 0 ? -stride : stride);
  }
  return span;
}

static uint64_t elementBytes(const std::string &dtype) {
  std::optional<DType> parsed = parseDType(dtype);
  return parsed ? (dtypeBits(*parsed) + 7) / 8 : 1;
}

class CudaExecutable;

/// One session on the GPU: its stream, the buffers its run has allocated,
/// and the run's first failure. The model.so's calls (gpu_api.h) during a
/// run come back to the context running on that thread.
class CudaContext final : public ExecutionContext {
public:
  explicit CudaContext(CudaExecutable &executable);
  ~CudaContext() override;

  /// Its stream; false with `error` set.
  bool start(std::string &error);

  /// Inputs copied to the device (or used there), weights uploaded once for
  /// every context, the entry called, the outputs copied back into host
  /// buffers or left in dense device buffers (freed by freeBuffer).
  bool run(void **args, const RunPlacement &placement, std::string &error) override;
  void freeBuffer(void *buffer, bool onDevice) override;
  bool copyToHost(void *host, const void *device, size_t bytes, std::string &error) override;

  /// What the model.so's calls do in this context's run.
  void launch(CUfunction function, int64_t gridX, int64_t gridY, int64_t gridZ, int64_t blockX,
              int64_t blockY, int64_t blockZ, int32_t sharedBytes, void **params);
  void copy(CUdeviceptr target, CUdeviceptr source, uint64_t bytes);
  void fill32(CUdeviceptr target, uint32_t value, uint64_t count);
  void fill16(CUdeviceptr target, uint16_t value, uint64_t count);
  CUdeviceptr allocate(uint64_t bytes);
  void release(CUdeviceptr pointer);

  bool ok() const { return failure.empty(); }
  /// Keeps the first failure; false when `result` is one.
  bool check(CUresult result, const char *call);
  /// Keeps `reason` as the run's failure, unless it has one.
  void fail(std::string reason) {
    if (failure.empty())
      failure = std::move(reason);
  }

private:
  /// The output `words` as a dense device buffer (see the definition).
  CUdeviceptr keepOnDevice(int64_t *words, size_t rank, uint64_t elementSize, bool adoptable);
  /// A device copy of `bytes` from `host`, not counted as the model's.
  CUdeviceptr upload(const void *host, uint64_t bytes);

  CudaExecutable &executable;
  const CudaDriver &driver;
  CUstream stream = nullptr;
  std::string failure;
  /// Live buffers the model allocated in this run.
  std::set<CUdeviceptr> allocations;
};

/// The context whose run is calling into the model.so on this thread.
thread_local CudaContext *activeContext = nullptr;

/// A model.so of the CUDA target: the device's primary context, the loaded
/// library, and the weights on the device, which every session's runs share.
class CudaExecutable final : public Executable {
public:
  explicit CudaExecutable(const CudaDriver &driver, Manifest manifest)
      : driver(driver), manifest(std::move(manifest)) {
    api.session = this;
    api.loadModule = [](void *session, const void *ptx) -> void * {
      auto *self = static_cast<CudaExecutable *>(session);
      CudaContext *run = activeContext;
      CUmodule module = nullptr;
      if (run && run->ok() &&
          !run->check(self->driver.cuModuleLoadData(&module, ptx),
                      "cuModuleLoadData (the PTX of a kernel module)"))
        return nullptr;
      return module;
    };
    api.unloadModule = [](void *session, void *module) {
      auto *self = static_cast<CudaExecutable *>(session);
      self->driver.cuModuleUnload(static_cast<CUmodule>(module));
    };
    api.getFunction = [](void *session, void *module, const char *name) -> void * {
      auto *self = static_cast<CudaExecutable *>(session);
      CudaContext *run = activeContext;
      CUfunction function = nullptr;
      if (run && run->ok() &&
          run->check(self->driver.cuModuleGetFunction(&function, static_cast<CUmodule>(module),
                                                       name),
                     ("cuModuleGetFunction (" + std::string(name) + ")").c_str())) {
        std::lock_guard<std::mutex> lock(self->optInMutex);
        self->kernelNames.try_emplace(function, name);
      }
      return function;
    };
    api.launch = [](void *, void *function, int64_t gridX, int64_t gridY, int64_t gridZ,
                    int64_t blockX, int64_t blockY, int64_t blockZ, int32_t sharedBytes,
                    void **params) {
      if (CudaContext *run = activeContext)
        run->launch(static_cast<CUfunction>(function), gridX, gridY, gridZ, blockX, blockY, blockZ,
                    sharedBytes, params);
    };
    api.allocate = [](void *, uint64_t bytes) -> void * {
      CudaContext *run = activeContext;
      return run ? reinterpret_cast<void *>(run->allocate(bytes)) : nullptr;
    };
    api.release = [](void *, void *pointer) {
      if (CudaContext *run = activeContext)
        run->release(reinterpret_cast<CUdeviceptr>(pointer));
    };
    api.copy = [](void *, void *target, const void *source, uint64_t bytes) {
      if (CudaContext *run = activeContext)
        run->copy(reinterpret_cast<CUdeviceptr>(target), reinterpret_cast<CUdeviceptr>(source),
                  bytes);
    };
    api.fill32 = [](void *, void *target, uint32_t value, uint64_t count) {
      if (CudaContext *run = activeContext)
        run->fill32(reinterpret_cast<CUdeviceptr>(target), value, count);
    };
    api.fill16 = [](void *, void *target, uint16_t value, uint64_t count) {
      if (CudaContext *run = activeContext)
        run->fill16(reinterpret_cast<CUdeviceptr>(target), value, count);
    };
  }

  ~CudaExecutable() override {
    if (context)
      driver.cuCtxSetCurrent(context);
    weights.clear(); // Freed on `stream`.
    if (stream)
      driver.cuStreamSynchronize(stream);
    library.close(); // Its modules unload through the API.
    if (stream)
      driver.cuStreamDestroy(stream);
    if (context)
      driver.cuDevicePrimaryCtxRelease(device);
  }

  /// The device's context, and the stream weights are freed on; false with
  /// `error` set.
  bool start(std::string &error) {
    CUresult result = 0;
    const char *call = "cuDeviceGet";
    if ((result = driver.cuDeviceGet(&device, 0)) ||
        (call = "cuDevicePrimaryCtxRetain", result = driver.cuDevicePrimaryCtxRetain(&context, device)) ||
        (call = "cuCtxSetCurrent", result = driver.cuCtxSetCurrent(context)) ||
        (call = "cuStreamCreate", result = driver.cuStreamCreate(&stream, 0)) ||
        (call = "cuDeviceGetAttribute (shared memory per block, opted in)",
         result = driver.cuDeviceGetAttribute(&sharedMemoryOptIn, kDeviceMaxSharedMemoryOptIn,
                                              device))) {
      error = driver.describe(call, result);
      return false;
    }
    return true;
  }

  /// Lets `function` launch with `bytes` of dynamic shared memory: past 48
  /// KiB a kernel must opt in (once; CUDA keeps it per function). False,
  /// with the reason kept by `run`, where the GPU has too little.
  bool allowSharedMemory(CUfunction function, int32_t bytes, CudaContext &run) {
    if (bytes <= kSharedMemoryWithoutOptIn)
      return true;
    std::lock_guard<std::mutex> lock(optInMutex);
    if (bytes > sharedMemoryOptIn) {
      auto name = kernelNames.find(function);
      run.fail("kernel " + (name == kernelNames.end() ? std::string("?") : name->second) +
               " needs " + std::to_string(bytes) +
               " bytes of shared memory per block and this GPU allows " +
               std::to_string(sharedMemoryOptIn) + " (compile with --gpu-gemm-tiles 64)");
      return false;
    }
    int32_t &allowed = optedIn[function];
    if (allowed >= bytes)
      return true;
    if (!run.check(driver.cuFuncSetAttribute(function, kFunctionMaxDynamicSharedBytes, bytes),
                   "cuFuncSetAttribute (dynamic shared memory)"))
      return false;
    allowed = bytes;
    return true;
  }

  Memory memory() const override { return Memory::Device; }

  std::unique_ptr<ExecutionContext> newContext(std::string &error) override {
    auto session = std::make_unique<CudaContext>(*this);
    if (!session->start(error))
      return nullptr;
    return session;
  }

  /// A weight's copy on the device, freed when no run holds it any more.
  struct DeviceWeight {
    CudaExecutable &owner;
    uint64_t version; ///< RunPlacement::weightVersions.
    uint64_t bytes;
    CUdeviceptr device;
    ~DeviceWeight() {
      owner.driver.cuCtxSetCurrent(owner.context);
      owner.driver.cuMemFreeAsync(device, owner.stream);
    }
  };

  /// Weight `index` on the device as `host` holds it (`bytes` from its first
  /// element) at `version`: uploaded by `run` on its stream the first time
  /// any context needs this version (the first run, or a binding changed),
  /// then shared. Null after a failure, which `run` keeps.
  std::shared_ptr<DeviceWeight> weightOnDevice(size_t index, const void *host, uint64_t bytes,
                                               uint64_t version, CudaContext &run,
                                               CUstream runStream) {
    std::lock_guard<std::mutex> lock(weightsMutex);
    if (weights.size() < manifest.weights.size())
      weights.resize(manifest.weights.size());
    std::shared_ptr<DeviceWeight> &cached = weights[index];
    if (cached && cached->version == version && cached->bytes == bytes)
      return cached;
    CUdeviceptr buffer = 0;
    if (!run.ok() || !run.check(driver.cuMemAllocAsync(&buffer, bytes ? bytes : 1, runStream),
                                "cuMemAllocAsync (a weight)"))
      return nullptr;
    auto weight = std::shared_ptr<DeviceWeight>(new DeviceWeight{*this, version, bytes, buffer});
    // Complete before another context can take it from the cache.
    if ((bytes && !run.check(driver.cuMemcpyHtoDAsync(buffer, host, bytes, runStream),
                             "cuMemcpyHtoDAsync (a weight)")) ||
        !run.check(driver.cuStreamSynchronize(runStream), "cuStreamSynchronize (a weight)"))
      return nullptr;
    cached = weight;
    return weight;
  }

  const CudaDriver &driver;
  Manifest manifest;
  PeftGpuApi api{};
  ModelLibrary library;
  CUdevice device = 0;
  CUcontext context = nullptr;

private:
  CUstream stream = nullptr;
  int sharedMemoryOptIn = kSharedMemoryWithoutOptIn;
  std::mutex optInMutex;
  std::map<CUfunction, int32_t> optedIn; ///< Dynamic shared memory each may use.
  std::map<CUfunction, std::string> kernelNames; ///< For errors.
  std::mutex weightsMutex;
  std::vector<std::shared_ptr<DeviceWeight>> weights; ///< By manifest weight.
};

CudaContext::CudaContext(CudaExecutable &executable)
    : executable(executable), driver(executable.driver) {}

CudaContext::~CudaContext() {
  if (!stream)
    return;
  driver.cuCtxSetCurrent(executable.context);
  driver.cuStreamSynchronize(stream);
  driver.cuStreamDestroy(stream);
}

bool CudaContext::start(std::string &error) {
  if (!check(driver.cuCtxSetCurrent(executable.context), "cuCtxSetCurrent") ||
      !check(driver.cuStreamCreate(&stream, 0), "cuStreamCreate")) {
    error = failure;
    return false;
  }
  return true;
}

bool CudaContext::check(CUresult result, const char *call) {
  if (result != 0 && failure.empty())
    failure = driver.describe(call, result);
  return result == 0;
}

void CudaContext::launch(CUfunction function, int64_t gridX, int64_t gridY, int64_t gridZ,
                         int64_t blockX, int64_t blockY, int64_t blockZ, int32_t sharedBytes,
                         void **params) {
  if (ok() && executable.allowSharedMemory(function, sharedBytes, *this))
    check(driver.cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY, blockZ,
                                sharedBytes, stream, params, nullptr),
          "cuLaunchKernel");
}

void CudaContext::copy(CUdeviceptr target, CUdeviceptr source, uint64_t bytes) {
  if (ok())
    check(driver.cuMemcpyAsync(target, source, bytes, stream), "cuMemcpyAsync");
}

void CudaContext::fill32(CUdeviceptr target, uint32_t value, uint64_t count) {
  if (ok())
    check(driver.cuMemsetD32Async(target, value, count, stream), "cuMemsetD32Async");
}

void CudaContext::fill16(CUdeviceptr target, uint16_t value, uint64_t count) {
  if (ok())
    check(driver.cuMemsetD16Async(target, value, count, stream), "cuMemsetD16Async");
}

CUdeviceptr CudaContext::allocate(uint64_t bytes) {
  CUdeviceptr pointer = 0;
  if (ok() && check(driver.cuMemAllocAsync(&pointer, bytes ? bytes : 1, stream),
                    "cuMemAllocAsync"))
    allocations.insert(pointer);
  return pointer;
}

void CudaContext::release(CUdeviceptr pointer) {
  if (!pointer)
    return;
  allocations.erase(pointer);
  check(driver.cuMemFreeAsync(pointer, stream), "cuMemFreeAsync");
}

static const void *hostStart(const int64_t *words, const std::string &dtype) {
  return reinterpret_cast<const uint8_t *>(words[1]) + words[2] * elementBytes(dtype);
}

/// `words` (a host descriptor of `rank`) pointing at `buffer` instead.
static std::vector<int64_t> onDevice(const int64_t *words, size_t rank, CUdeviceptr buffer) {
  std::vector<int64_t> device(words, words + 3 + 2 * rank);
  device[0] = device[1] = static_cast<int64_t>(buffer);
  device[2] = 0;
  return device;
}

bool CudaContext::run(void **args, const RunPlacement &placement, std::string &error) {
  const Manifest &manifest = executable.manifest;
  failure.clear();
  driver.cuCtxSetCurrent(executable.context);
  std::vector<std::vector<int64_t>> descriptors;
  descriptors.reserve(manifest.inputs.size() + manifest.weights.size());
  std::vector<void *> deviceArgs = {args[0]};
  std::vector<CUdeviceptr> temporaries;
  size_t next = 1;
  for (size_t i = 0; i < manifest.inputs.size(); ++i) {
    const ManifestTensor &input = manifest.inputs[i];
    auto *words = static_cast<const int64_t *>(args[next++]);
    if (i < placement.inputsOnDevice.size() && placement.inputsOnDevice[i]) {
      deviceArgs.push_back(const_cast<int64_t *>(words)); // The caller's buffer.
      continue;
    }
    size_t rank = input.shape.size();
    uint64_t bytes = spanOf(words, rank) * elementBytes(input.dtype);
    CUdeviceptr buffer = upload(hostStart(words, input.dtype), bytes);
    temporaries.push_back(buffer);
    descriptors.push_back(onDevice(words, rank, buffer));
    deviceArgs.push_back(descriptors.back().data());
  }
  // The weights this run reads, held until it ends.
  std::vector<std::shared_ptr<CudaExecutable::DeviceWeight>> weights;
  for (size_t i = 0; i < manifest.weights.size(); ++i) {
    auto *words = static_cast<const int64_t *>(args[next++]);
    size_t rank = manifest.weights[i].shape.size();
    uint64_t bytes = spanOf(words, rank) * elementBytes(manifest.weights[i].dtype);
    uint64_t version = i < placement.weightVersions.size() ? placement.weightVersions[i] : 0;
    auto weight = executable.weightOnDevice(i, hostStart(words, manifest.weights[i].dtype), bytes,
                                            version, *this, stream);
    descriptors.push_back(onDevice(words, rank, weight ? weight->device : 0));
    deviceArgs.push_back(descriptors.back().data());
    weights.push_back(std::move(weight));
  }
  allocations.clear();
  activeContext = this;
  if (ok())
    executable.library.entry(deviceArgs.data());
  activeContext = nullptr;
  check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize (the kernels)");
  if (!ok()) {
    // What the model allocated and the inputs' copies go; no output is made.
    std::set<CUdeviceptr> live = allocations;
    for (CUdeviceptr buffer : live)
      release(buffer);
    for (CUdeviceptr buffer : temporaries)
      release(buffer);
    driver.cuStreamSynchronize(stream);
    error = "on the GPU: " + failure;
    return false;
  }
  // The outputs: each copied into a host buffer of its own, or left in a
  // dense device buffer of its own.
  auto *results = static_cast<int64_t *>(args[0]);
  std::set<CUdeviceptr> returned;
  std::vector<void *> hosts;
  std::vector<CUdeviceptr> handedOver; // Outputs left on the device.
  for (const ManifestTensor &output : manifest.outputs) {
    size_t rank = output.shape.size();
    uint64_t elementSize = elementBytes(output.dtype);
    uint64_t bytes = spanOf(results, rank) * elementSize;
    CUdeviceptr start = CUdeviceptr(results[1]) + CUdeviceptr(results[2]) * elementSize;
    bool owned = allocations.count(CUdeviceptr(results[0]));
    if (placement.outputsOnDevice) {
      bool adoptable = owned && !returned.count(CUdeviceptr(results[0]));
      CUdeviceptr dense = keepOnDevice(results, rank, elementSize, adoptable);
      if (owned)
        returned.insert(CUdeviceptr(results[0]));
      handedOver.push_back(dense);
      results[0] = results[1] = static_cast<int64_t>(dense);
      results[2] = 0;
      results += 3 + 2 * rank;
      continue;
    }
    auto *host = static_cast<uint8_t *>(std::malloc(bytes ? bytes : 1));
    hosts.push_back(host);
    if (!host && failure.empty())
      failure = "out of host memory for output '" + output.name + "'";
    if (ok() && bytes)
      check(driver.cuMemcpyDtoHAsync(host, start, bytes, stream), "cuMemcpyDtoHAsync");
    if (owned)
      returned.insert(CUdeviceptr(results[0]));
    results[0] = results[1] = reinterpret_cast<int64_t>(host);
    results[2] = 0;
    results += 3 + 2 * rank;
  }
  if (placement.outputsOnDevice) {
    // The model's buffers that outputs are now are the caller's.
    for (CUdeviceptr buffer : returned)
      allocations.erase(buffer);
    returned.clear();
  }
  for (CUdeviceptr buffer : returned)
    release(buffer);
  for (CUdeviceptr buffer : temporaries)
    release(buffer);
  check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize (the outputs)");
  if (!ok()) {
    for (void *host : hosts)
      std::free(host);
    for (CUdeviceptr buffer : handedOver)
      driver.cuMemFreeAsync(buffer, stream);
    error = "on the GPU: " + failure;
    return false;
  }
  return true;
}

void CudaContext::freeBuffer(void *buffer, bool onDevice) {
  if (!onDevice) {
    std::free(buffer);
    return;
  }
  driver.cuCtxSetCurrent(executable.context);
  driver.cuMemFreeAsync(reinterpret_cast<CUdeviceptr>(buffer), stream);
}

bool CudaContext::copyToHost(void *host, const void *device, size_t bytes, std::string &error) {
  driver.cuCtxSetCurrent(executable.context);
  CUresult result =
      driver.cuMemcpyDtoHAsync(host, reinterpret_cast<CUdeviceptr>(device), bytes, stream);
  if (result == 0)
    result = driver.cuStreamSynchronize(stream);
  if (result != 0)
    error = "on the GPU: " + driver.describe("cuMemcpyDtoHAsync (an input's indices)", result);
  return result == 0;
}

/// The output `words` (a result descriptor of `rank`) as a dense device
/// buffer: its own when `adoptable` and dense, else a copy (through the
/// host when it is strided, which outputs rarely are). Rewrites the strides
/// to the dense ones.
CUdeviceptr CudaContext::keepOnDevice(int64_t *words, size_t rank, uint64_t elementSize, bool adoptable) {
  int64_t *sizes = words + 3, *strides = words + 3 + rank;
  uint64_t count = 1;
  bool dense = true;
  for (size_t d = rank; d-- > 0;) {
    if (sizes[d] != 1 && strides[d] != int64_t(count))
      dense = false;
    count *= uint64_t(sizes[d]);
  }
  CUdeviceptr start = CUdeviceptr(words[1]) + CUdeviceptr(words[2]) * elementSize;
  if (!(adoptable && dense && words[2] == 0 && words[0] == words[1])) {
    CUdeviceptr copy = allocate(count * elementSize);
    allocations.erase(copy); // The caller's, not the model's.
    if (dense) {
      if (ok() && count)
        check(driver.cuMemcpyAsync(copy, start, count * elementSize, stream), "cuMemcpyAsync");
    } else if (ok() && count) {
      std::vector<uint8_t> span(spanOf(words, rank) * elementSize), packed(count * elementSize);
      check(driver.cuMemcpyDtoHAsync(span.data(), start, span.size(), stream),
            "cuMemcpyDtoHAsync");
      check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize (a strided output)");
      std::vector<int64_t> index(rank, 0);
      for (uint64_t element = 0; element < count; ++element) {
        int64_t offset = 0;
        for (size_t d = 0; d < rank; ++d)
          offset += index[d] * strides[d];
        std::memcpy(&packed[element * elementSize], &span[offset * elementSize], elementSize);
        for (size_t d = rank; d-- > 0;) {
          if (++index[d] < sizes[d])
            break;
          index[d] = 0;
        }
      }
      if (ok())
        check(driver.cuMemcpyHtoDAsync(copy, packed.data(), packed.size(), stream),
              "cuMemcpyHtoDAsync");
      check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize (a strided output)");
    }
    start = copy;
  }
  uint64_t stride = 1;
  for (size_t d = rank; d-- > 0;) {
    strides[d] = int64_t(stride);
    stride *= uint64_t(sizes[d]);
  }
  return start;
}

/// A device copy of `bytes` from `host` (a view's first element: the
/// copy's descriptor has offset 0, onDevice).
CUdeviceptr CudaContext::upload(const void *host, uint64_t bytes) {
  CUdeviceptr buffer = allocate(bytes);
  allocations.erase(buffer); // Ours, not the model's.
  if (ok() && bytes)
    check(driver.cuMemcpyHtoDAsync(buffer, host, bytes, stream), "cuMemcpyHtoDAsync");
  return buffer;
}

} // namespace

std::unique_ptr<Executable> loadCudaExecutable(const Manifest &manifest,
                                               const std::string &directory, std::string &error) {
  std::string reason;
  const CudaDriver *driver = openCudaDriver(reason);
  if (!driver) {
    error = directory + ": a CUDA artifact, and " + reason;
    return nullptr;
  }
  auto executable = std::make_unique<CudaExecutable>(*driver, manifest);
  if (!executable->start(reason)) {
    error = directory + ": " + reason;
    return nullptr;
  }
  if (!openModelLibrary(manifest, directory, executable->library, error))
    return nullptr;
  auto *install = reinterpret_cast<PeftSetGpuApi>(executable->library.find("peft_model_set_gpu_api"));
  if (!install) {
    error = directory + "/" + manifest.library +
            ": no GPU calls (peft_model_set_gpu_api); it was not compiled for --target cuda";
    return nullptr;
  }
  install(&executable->api);
  return executable;
}

} // namespace peft
