//===- CudaExecutable.cpp - A CUDA model.so, loaded and run on the GPU ------===//
#include "runtime/cuda/CudaExecutable.h"

#include "runtime/ModelLibrary.h"
#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/gpu_api.h"
#include "support/Tensor.h"

#include <cstdlib>
#include <cstring>
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

/// A model.so of the CUDA target with its context, stream and weights on
/// the device. Its calls (gpu_api.h) go to the one stream; the first
/// failure is kept and reported by the run.
class CudaExecutable final : public Executable {
public:
  explicit CudaExecutable(const CudaDriver &driver, Manifest manifest)
      : driver(driver), manifest(std::move(manifest)) {
    api.session = this;
    api.loadModule = [](void *session, const void *ptx) -> void * {
      auto *self = static_cast<CudaExecutable *>(session);
      CUmodule module = nullptr;
      if (self->ok() && !self->check(self->driver.cuModuleLoadData(&module, ptx),
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
      CUfunction function = nullptr;
      if (self->ok())
        self->check(self->driver.cuModuleGetFunction(&function, static_cast<CUmodule>(module), name),
                    ("cuModuleGetFunction (" + std::string(name) + ")").c_str());
      return function;
    };
    api.launch = [](void *session, void *function, int64_t gridX, int64_t gridY, int64_t gridZ,
                    int64_t blockX, int64_t blockY, int64_t blockZ, int32_t sharedBytes,
                    void **params) {
      auto *self = static_cast<CudaExecutable *>(session);
      if (self->ok())
        self->check(self->driver.cuLaunchKernel(static_cast<CUfunction>(function), gridX, gridY,
                                                gridZ, blockX, blockY, blockZ, sharedBytes,
                                                self->stream, params, nullptr),
                    "cuLaunchKernel");
    };
    api.allocate = [](void *session, uint64_t bytes) -> void * {
      auto *self = static_cast<CudaExecutable *>(session);
      return reinterpret_cast<void *>(self->allocate(bytes));
    };
    api.release = [](void *session, void *pointer) {
      auto *self = static_cast<CudaExecutable *>(session);
      self->release(reinterpret_cast<CUdeviceptr>(pointer));
    };
    api.copy = [](void *session, void *target, const void *source, uint64_t bytes) {
      auto *self = static_cast<CudaExecutable *>(session);
      if (self->ok())
        self->check(self->driver.cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(target),
                                               reinterpret_cast<CUdeviceptr>(source), bytes,
                                               self->stream),
                    "cuMemcpyAsync");
    };
    api.fill32 = [](void *session, void *target, uint32_t value, uint64_t count) {
      auto *self = static_cast<CudaExecutable *>(session);
      if (self->ok())
        self->check(self->driver.cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(target), value,
                                                  count, self->stream),
                    "cuMemsetD32Async");
    };
    api.fill16 = [](void *session, void *target, uint16_t value, uint64_t count) {
      auto *self = static_cast<CudaExecutable *>(session);
      if (self->ok())
        self->check(self->driver.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(target), value,
                                                  count, self->stream),
                    "cuMemsetD16Async");
    };
  }

  ~CudaExecutable() override {
    if (context)
      driver.cuCtxSetCurrent(context);
    for (WeightOnDevice &weight : weights)
      if (weight.device)
        driver.cuMemFreeAsync(weight.device, stream);
    if (stream)
      driver.cuStreamSynchronize(stream);
    library.close(); // Its modules unload through the API.
    if (stream)
      driver.cuStreamDestroy(stream);
    if (context)
      driver.cuDevicePrimaryCtxRelease(device);
  }

  /// The device's context and stream; false with `error` set.
  bool start(std::string &error) {
    if (!check(driver.cuDeviceGet(&device, 0), "cuDeviceGet") ||
        !check(driver.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain") ||
        !check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent") ||
        !check(driver.cuStreamCreate(&stream, 0), "cuStreamCreate")) {
      error = failure;
      return false;
    }
    return true;
  }

  Memory memory() const override { return Memory::Device; }

  /// Inputs copied to the device (or used there), weights uploaded once, the
  /// entry called, the outputs copied back into host buffers or left in
  /// dense device buffers (freed by freeBuffer).
  bool run(void **args, const RunPlacement &placement, std::string &error) override {
    failure.clear();
    driver.cuCtxSetCurrent(context);
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
    weights.resize(manifest.weights.size());
    for (size_t i = 0; i < manifest.weights.size(); ++i) {
      auto *words = static_cast<const int64_t *>(args[next++]);
      size_t rank = manifest.weights[i].shape.size();
      uint64_t bytes = spanOf(words, rank) * elementBytes(manifest.weights[i].dtype);
      const void *host = hostStart(words, manifest.weights[i].dtype);
      WeightOnDevice &weight = weights[i];
      if (weight.host != host || weight.bytes != bytes) { // First run, or rebound.
        if (weight.device)
          driver.cuMemFreeAsync(weight.device, stream);
        weight = {host, bytes, upload(host, bytes)};
      }
      descriptors.push_back(onDevice(words, rank, weight.device));
      deviceArgs.push_back(descriptors.back().data());
    }
    allocations.clear();
    if (ok())
      library.entry(deviceArgs.data());
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

  void freeBuffer(void *buffer, bool onDevice) override {
    if (!onDevice) {
      std::free(buffer);
      return;
    }
    driver.cuCtxSetCurrent(context);
    driver.cuMemFreeAsync(reinterpret_cast<CUdeviceptr>(buffer), stream);
  }

  bool copyToHost(void *host, const void *device, size_t bytes, std::string &error) override {
    driver.cuCtxSetCurrent(context);
    CUresult result = driver.cuMemcpyDtoHAsync(host, reinterpret_cast<CUdeviceptr>(device),
                                               bytes, stream);
    if (result == 0)
      result = driver.cuStreamSynchronize(stream);
    if (result != 0)
      error = "on the GPU: " + driver.describe("cuMemcpyDtoHAsync (an input's indices)", result);
    return result == 0;
  }

  const CudaDriver &driver;
  Manifest manifest;
  PeftGpuApi api{};
  ModelLibrary library;

private:
  struct WeightOnDevice {
    const void *host = nullptr;
    uint64_t bytes = 0;
    CUdeviceptr device = 0;
  };

  bool ok() const { return failure.empty(); }

  /// Keeps the first failure; false when `result` is one.
  bool check(CUresult result, const char *call) {
    if (result != 0 && failure.empty())
      failure = driver.describe(call, result);
    return result == 0;
  }

  CUdeviceptr allocate(uint64_t bytes) {
    CUdeviceptr pointer = 0;
    if (ok() && check(driver.cuMemAllocAsync(&pointer, bytes ? bytes : 1, stream),
                      "cuMemAllocAsync"))
      allocations.insert(pointer);
    return pointer;
  }

  void release(CUdeviceptr pointer) {
    if (!pointer)
      return;
    allocations.erase(pointer);
    check(driver.cuMemFreeAsync(pointer, stream), "cuMemFreeAsync");
  }

  /// The output `words` (a result descriptor of `rank`) as a dense device
  /// buffer: its own when `adoptable` and dense, else a copy (through the
  /// host when it is strided, which outputs rarely are). Rewrites the strides
  /// to the dense ones.
  CUdeviceptr keepOnDevice(int64_t *words, size_t rank, uint64_t elementSize, bool adoptable) {
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

  static const void *hostStart(const int64_t *words, const std::string &dtype) {
    return reinterpret_cast<const uint8_t *>(words[1]) + words[2] * elementBytes(dtype);
  }

  /// A device copy of `bytes` from `host` (a view's first element: the
  /// copy's descriptor has offset 0, onDevice).
  CUdeviceptr upload(const void *host, uint64_t bytes) {
    CUdeviceptr buffer = allocate(bytes);
    allocations.erase(buffer); // Ours, not the model's.
    if (ok() && bytes)
      check(driver.cuMemcpyHtoDAsync(buffer, host, bytes, stream), "cuMemcpyHtoDAsync");
    return buffer;
  }

  /// `words` (a host descriptor of `rank`) pointing at `buffer` instead.
  static std::vector<int64_t> onDevice(const int64_t *words, size_t rank, CUdeviceptr buffer) {
    std::vector<int64_t> device(words, words + 3 + 2 * rank);
    device[0] = device[1] = static_cast<int64_t>(buffer);
    device[2] = 0;
    return device;
  }

  CUdevice device = 0;
  CUcontext context = nullptr;
  CUstream stream = nullptr;
  std::string failure;
  std::vector<WeightOnDevice> weights;
  /// Live buffers the model allocated in this run.
  std::set<CUdeviceptr> allocations;
};

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
