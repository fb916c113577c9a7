#!/usr/bin/env python3
"""How long loading and unloading an adapter at run time takes (--mode multi).

    python3 bench/load_bench.py MODEL_DIR [--slots 32] [--loads 10] [--work DIR]

MODEL_DIR holds model.onnx and adapter/ (a Hugging Face PEFT LoRA on every
linear layer), as bench/generate_bench_models.py writes them. An artifact
with --slots slots, two of them filled at compile time, is loaded through the
C API (libpeft_runtime.so, as a server would); then --loads adapters go into
the free slots one after another, and half of them are unloaded again, each
call timed: once with copies of the adapter as it is (every linear layer),
once with copies restricted to query and value (a common choice, a third of
BERT's layers). Prints the median and minimum of each, and the first load
(which copies the tables out of the artifact's file; later loads and
unloads write the slot's part in place), in ms.
"""
import argparse
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import time

from adapter_copies import alpha_copies

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "tools"))
import device_io  # noqa: E402  (the C API's ctypes bindings)


def restrict(source, target, modules):
    """A copy of adapter `source` at `target` adapting only `modules`."""
    os.makedirs(target)
    with open(os.path.join(source, "adapter_config.json")) as f:
        config = json.load(f)
    with open(os.path.join(target, "adapter_config.json"), "w") as f:
        json.dump(dict(config, target_modules=modules), f)
    with open(os.path.join(source, "adapter_model.safetensors"), "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    kept, blobs, offset = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__" or not any(f".{m}." in name for m in modules):
            continue
        blob = data[info["data_offsets"][0]:info["data_offsets"][1]]
        kept[name] = dict(info, data_offsets=[offset, offset + len(blob)])
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(kept).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(target, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def time_calls(peft, artifact, directories):
    """Load each of `directories` into the next free slot, then unload half."""
    model = peft.peft_model_load(artifact.encode())
    if not model:
        sys.exit(peft.peft_last_error().decode())
    loads, unloads = [], []
    for slot, directory in enumerate(directories, start=2):
        start = time.perf_counter()
        if peft.peft_model_load_adapter(model, slot, directory.encode()):
            sys.exit(peft.peft_last_error().decode())
        loads.append((time.perf_counter() - start) * 1e3)
    for slot in range(2, 2 + len(directories) // 2):
        start = time.perf_counter()
        peft.peft_model_unload_adapter(model, slot)
        unloads.append((time.perf_counter() - start) * 1e3)
    peft.peft_model_free(model)
    return loads, unloads


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--work", default="/tmp/peft-load-bench")
    parser.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    copies = alpha_copies(os.path.join(args.model, "adapter"), args.work, args.loads + 2,
                          alpha_step=0.01)
    artifact = os.path.join(args.work, "multi")
    subprocess.run([os.path.join(args.build, "bin", "peftc"), os.path.join(args.model, "model.onnx"),
                    "--adapter", copies[0] + "=a0", "--adapter", copies[1] + "=a1", "--mode",
                    "multi", "--max-adapters", str(args.slots), "-o", artifact], check=True)
    narrow = []
    for i, directory in enumerate(copies[2:]):
        narrow.append(os.path.join(args.work, f"query-value{i}"))
        restrict(directory, narrow[-1], ["query", "value"])

    peft = device_io.bind(os.path.join(args.build, "lib", "libpeft_runtime.so"))
    peft.peft_model_load_adapter.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_char_p]
    peft.peft_model_unload_adapter.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    print(f"{args.slots} slots, {args.loads} loads, then {args.loads // 2} unloads, ms:")
    for label, directories in [("every layer", copies[2:]), ("query, value", narrow)]:
        loads, unloads = time_calls(peft, artifact, directories)
        median = lambda values: sorted(values)[len(values) // 2]
        print(f"  {label:13s} load median {median(loads):7.1f} min {min(loads):7.1f} "
              f"first {loads[0]:7.1f}   unload median {median(unloads):7.1f} "
              f"min {min(unloads):7.1f}")


if __name__ == "__main__":
    main()
