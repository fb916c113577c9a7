#!/usr/bin/env python3
"""Runs an artifact through the C API's device-memory entries.

    device_io.py LIBPEFT_RUNTIME ARTIFACT INPUTS_DIR OUT_DIR

Binds every INPUTS_DIR/NAME.npy with peft_model_set_input_device, asks for the
outputs on the device (peft_model_set_output_location), runs, and writes each
output to OUT_DIR/NAME.npy. Device memory is the GPU's for target cuda (through
the CUDA driver, opened here as the runtime opens it), and host memory for
cuda-emulated. A refusal or a failed run prints the runtime's message and
exits 1.

Needs only python3 with numpy: it runs on the GPU machine too.
"""
import ctypes
import os
import sys

import numpy as np

DTYPES = {"float32": 0, "float16": 1, "float64": 3, "int64": 4, "int32": 5, "int8": 6,
          "uint8": 7, "bool": 8, "int16": 9, "uint16": 10, "uint32": 11, "uint64": 12}
NUMPY = {code: np.dtype(name) for name, code in DTYPES.items()}
PEFT_HOST, PEFT_DEVICE = 0, 1


class PeftTensor(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("rank", ctypes.c_int64),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("data", ctypes.c_void_p)]


class HostMemory:
    """cuda-emulated: the device's memory is the host's."""

    def __init__(self):
        self.keep = []

    def upload(self, array):
        array = np.ascontiguousarray(array)
        self.keep.append(array)
        return array.ctypes.data

    def download(self, pointer, shape, dtype):
        count = int(np.prod(shape))
        buffer = (ctypes.c_char * (count * dtype.itemsize)).from_address(pointer)
        return np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape)


class CudaMemory:
    """target cuda: buffers of the primary context of device 0, the runtime's."""

    def __init__(self):
        self.cuda = ctypes.CDLL("libcuda.so.1")
        self.check(self.cuda.cuInit(0), "cuInit")
        device = ctypes.c_int()
        self.check(self.cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
        context = ctypes.c_void_p()
        self.check(self.cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device),
                   "cuDevicePrimaryCtxRetain")
        self.check(self.cuda.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        self.buffers = []

    @staticmethod
    def check(result, call):
        if result != 0:
            sys.exit(f"device_io.py: {call} failed ({result})")

    def upload(self, array):
        array = np.ascontiguousarray(array)
        pointer = ctypes.c_uint64()
        self.check(self.cuda.cuMemAlloc_v2(ctypes.byref(pointer), max(array.nbytes, 1)),
                   "cuMemAlloc")
        self.buffers.append(pointer.value)
        self.check(self.cuda.cuMemcpyHtoD_v2(pointer, array.ctypes.data_as(ctypes.c_void_p),
                                             ctypes.c_size_t(array.nbytes)), "cuMemcpyHtoD")
        return pointer.value

    def download(self, pointer, shape, dtype):
        array = np.empty(shape, dtype=dtype)
        self.check(self.cuda.cuCtxSynchronize(), "cuCtxSynchronize")
        self.check(self.cuda.cuMemcpyDtoH_v2(array.ctypes.data_as(ctypes.c_void_p),
                                             ctypes.c_uint64(pointer),
                                             ctypes.c_size_t(array.nbytes)), "cuMemcpyDtoH")
        return array


def bind(library):
    """libpeft_runtime.so, its C API's entries typed for ctypes."""
    peft = ctypes.CDLL(library)
    peft.peft_model_load.restype = ctypes.c_void_p
    peft.peft_model_load.argtypes = [ctypes.c_char_p]
    peft.peft_last_error.restype = ctypes.c_char_p
    peft.peft_model_location.argtypes = [ctypes.c_void_p]
    peft.peft_model_set_input_device.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int64,
        ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p]
    peft.peft_model_set_output_location.argtypes = [ctypes.c_void_p, ctypes.c_int]
    peft.peft_model_run.argtypes = [ctypes.c_void_p]
    peft.peft_model_num_outputs.argtypes = [ctypes.c_void_p]
    peft.peft_model_num_outputs.restype = ctypes.c_size_t
    peft.peft_model_output_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    peft.peft_model_output_name.restype = ctypes.c_char_p
    peft.peft_model_output.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    peft.peft_model_output.restype = ctypes.POINTER(PeftTensor)
    peft.peft_model_free.argtypes = [ctypes.c_void_p]
    return peft


def main():
    library, artifact, inputs, out = sys.argv[1:5]
    peft = bind(library)

    def fail():
        sys.exit("error: " + peft.peft_last_error().decode())

    model = peft.peft_model_load(artifact.encode())
    if not model:
        fail()
    with open(os.path.join(artifact, "manifest.json")) as manifest:
        emulated = '"cuda-emulated"' in manifest.read()
    print("location:", "device" if peft.peft_model_location(model) == PEFT_DEVICE else "host")
    memory = HostMemory() if emulated or peft.peft_model_location(model) == PEFT_HOST \
        else CudaMemory()
    for name in sorted(os.listdir(inputs)):
        if not name.endswith(".npy"):
            continue
        array = np.load(os.path.join(inputs, name))
        shape = (ctypes.c_int64 * max(array.ndim, 1))(*array.shape)
        if peft.peft_model_set_input_device(model, name[:-4].encode(), DTYPES[str(array.dtype)],
                                            array.ndim, shape, memory.upload(array)):
            fail()
    if peft.peft_model_set_output_location(model, PEFT_DEVICE) or peft.peft_model_run(model):
        fail()
    os.makedirs(out, exist_ok=True)
    for index in range(peft.peft_model_num_outputs(model)):
        name = peft.peft_model_output_name(model, index)
        tensor = peft.peft_model_output(model, name).contents
        shape = [tensor.shape[d] for d in range(tensor.rank)]
        array = memory.download(tensor.data, shape, NUMPY[tensor.dtype])
        np.save(os.path.join(out, name.decode() + ".npy"), array)
    peft.peft_model_free(model)


if __name__ == "__main__":
    main()
