#!/usr/bin/env python3
"""The GPU benchmark, run on the GPU machine by scripts/gpu-check.sh's bundle.

    gpu_bench.py BENCH_DIR --runtime-library SO [--runs 20] [--rounds 3]

BENCH_DIR/NAME/artifact is a CUDA artifact of one linear layer compiled on the
build machine; its weights are written here, random, from the manifest (they
would not fit in what travels). NAME is MxKxN[-bf16][-tilesT][+loraR]: x[M, K]
times a weight [K, N], in f32 or in bf16 (f32 accumulation), the tensor-core
tiles peftc was told to use (64 or 128; auto where absent), LoRA of rank R
unmerged (--mode fuse).

A directory holding base/, multi/ and inputs/ is a model against itself:
base/artifact the model alone, multi/artifact its --mode multi artifact with
adapters in every slot (slot ranks written as the capacity, so that every
row computes its full rank), both fed inputs/*.npy (a batch whose row i uses
slot adapter_index[i]); the goal of issue 15 is multi / base <= 1.2.

Each run of ours goes through the C API with its input and output in device
memory (torch tensors bound by peft_model_set_input_device, the output left on
the device), so that neither is copied over PCIe: what is timed is the
kernels plus the runtime's launch and synchronization. The reference is
torch.matmul of the same shape and type on the same GPU (cuBLAS; TF32 off for
f32, as our f32 kernels compute in f32). The two alternate `--rounds` times,
the fastest of `--runs` each; ratios are ours / cuBLAS. Needs python3 with
numpy and torch; device_io.py (beside it in the bundle) binds the C API.
"""
import argparse
import ctypes
import json
import os
import re
import sys
import time

import numpy as np

import device_io

PEFT_F32, PEFT_BF16, PEFT_DEVICE = 0, 2, 1


def bf16_bits(values):
    """float32 -> bfloat16 bit patterns (round to nearest even), as uint16."""
    bits = values.astype("<f4").view("<u4")
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")


def write_weights(artifact):
    """weights.safetensors for the manifest's weights, random normal / sqrt(K);
    adapter slots' ranks the slots' capacity."""
    with open(os.path.join(artifact, "manifest.json")) as f:
        manifest = json.load(f)
    slots = manifest.get("adapter_slots") or {}
    ranks = {layer["ranks"] for layer in slots.get("layers", []) if layer.get("ranks")}
    path = os.path.join(artifact, manifest.get("weights_file", "weights.safetensors"))
    if os.path.exists(path):
        return
    rng = np.random.default_rng(0)
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for weight in manifest["weights"]:
        shape = weight["shape"]
        value = rng.standard_normal(shape, dtype=np.float32) / np.sqrt(max(shape[-1], 1))
        if weight["name"] in ranks:
            value = np.full(shape, slots["capacity"], np.float32)
        if weight["dtype"] == "F32":
            value = value.astype("<f4")
        elif weight["dtype"] == "BF16":
            value = bf16_bits(value)
        else:
            sys.exit(f"gpu_bench: {artifact}: weight {weight['name']} is {weight['dtype']}")
        header[weight["name"]] = {"dtype": weight["dtype"], "shape": shape,
                                  "data_offsets": [offset, offset + value.nbytes]}
        offset += value.nbytes
        blobs.append(value)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for value in blobs:
            f.write(value.tobytes())


class DeviceRun:
    """The artifact loaded through the C API, its inputs random torch tensors
    on the GPU bound in place, its outputs left on the device."""

    def __init__(self, torch, peft, artifact, given=None):
        """`given`: a directory of NAME.npy for inputs; others are random."""
        self.peft = peft
        self.model = peft.peft_model_load(artifact.encode())
        if not self.model:
            raise RuntimeError(peft.peft_last_error().decode())
        with open(os.path.join(artifact, "manifest.json")) as f:
            manifest = json.load(f)
        self.inputs = []  # Kept alive while bound.
        for tensor in manifest["inputs"]:
            path = os.path.join(given, tensor["name"] + ".npy") if given else ""
            if os.path.exists(path):
                array = np.load(path)
                value = torch.from_numpy(array).cuda()
                code = device_io.DTYPES[array.dtype.name]
            else:
                dtype = {"F32": (torch.float32, PEFT_F32), "BF16": (torch.bfloat16, PEFT_BF16)}
                if tensor["dtype"] not in dtype or min(tensor["shape"]) < 0:
                    raise RuntimeError(f"input {tensor['name']} is not a static F32 or BF16 "
                                       "tensor, nor given")
                torch_type, code = dtype[tensor["dtype"]]
                value = torch.randn(tensor["shape"], device="cuda").to(torch_type)
            self.inputs.append(value)
            shape = (ctypes.c_int64 * value.dim())(*value.shape)
            if peft.peft_model_set_input_device(self.model, tensor["name"].encode(), code,
                                                value.dim(), shape, value.data_ptr()):
                raise RuntimeError(peft.peft_last_error().decode())
        if peft.peft_model_set_output_location(self.model, PEFT_DEVICE):
            raise RuntimeError(peft.peft_last_error().decode())
        torch.cuda.synchronize()

    def time(self, runs):
        """The fastest of `runs` runs (each returns once its stream is done), ms."""
        best = float("inf")
        for _ in range(runs + 1):  # The first loads the kernels and uploads the weights.
            start = time.perf_counter()
            if self.peft.peft_model_run(self.model):
                raise RuntimeError(self.peft.peft_last_error().decode())
            best = min(best, (time.perf_counter() - start) * 1e3)
        return best

    def free(self):
        self.peft.peft_model_free(self.model)


def time_torch(torch, a, b, runs):
    torch.matmul(a, b)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        torch.matmul(a, b)
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) * 1e3)
    return best


def bench_model_with_adapters(torch, peft, name, case, runs, rounds):
    """base/ and multi/ alternated, the fastest of `runs` each per round."""
    given = os.path.join(case, "inputs")
    timed = {}
    try:
        for kind in ("base", "multi"):
            write_weights(os.path.join(case, kind, "artifact"))
            timed[kind] = [DeviceRun(torch, peft, os.path.join(case, kind, "artifact"), given),
                           float("inf")]
        for _ in range(rounds):
            for entry in timed.values():
                entry[1] = min(entry[1], entry[0].time(runs))
        for run, _ in timed.values():
            run.free()
    except RuntimeError as error:
        print(f"{name:32} FAILED: {error}")
        return
    base, multi = timed["base"][1], timed["multi"][1]
    print(f"{name:32} base {base:.3f} ms, multi {multi:.3f} ms: multi / base {multi / base:.2f} "
          "(goal <= 1.2)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bench")
    parser.add_argument("--runtime-library", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("skipped: no torch (the cuBLAS reference)")
        return 2
    if not torch.cuda.is_available():
        print("skipped: no GPU")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    peft = device_io.bind(args.runtime_library)
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"{'work':32} {'ours ms':>10} {'cuBLAS ms':>10} {'ours/cuBLAS':>12} {'TFLOP/s':>8}")
    for name in sorted(os.listdir(args.bench)):
        case = os.path.join(args.bench, name)
        if all(os.path.isdir(os.path.join(case, part)) for part in ("base", "multi", "inputs")):
            bench_model_with_adapters(torch, peft, name, case, args.runs, args.rounds)
            continue
        match = re.match(r"(\d+)x(\d+)x(\d+)(-bf16)?", name)
        if not match or not os.path.isdir(case):
            continue
        artifact = os.path.join(case, "artifact")
        write_weights(artifact)
        m, k, n = map(int, match.groups()[:3])
        dtype = torch.bfloat16 if match.group(4) else torch.float32
        x = torch.randn(m, k, device="cuda").to(dtype)
        w = torch.randn(k, n, device="cuda").to(dtype)
        try:
            ours_run = DeviceRun(torch, peft, artifact)
            ours, theirs = float("inf"), float("inf")
            for _ in range(args.rounds):
                ours = min(ours, ours_run.time(args.runs))
                theirs = min(theirs, time_torch(torch, x, w, args.runs))
            ours_run.free()
        except RuntimeError as error:
            print(f"{name:32} FAILED: {error}")
            continue
        print(f"{name:32} {ours:10.3f} {theirs:10.3f} {ours / theirs:12.2f} "
              f"{2 * m * k * n / ours / 1e9:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
