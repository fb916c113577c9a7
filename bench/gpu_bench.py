#!/usr/bin/env python3
"""The GPU benchmark, run on the GPU machine by scripts/gpu-check.sh's bundle.

    gpu_bench.py BENCH_DIR --peft-run PATH [--runs 20] [--rounds 3]

BENCH_DIR/NAME/artifact is a CUDA artifact compiled on the build machine; its
weights and inputs are written here, random, from the manifest (they would
not fit in what travels). NAME is MxKxN[+loraR], a linear layer. For
each, peft-run's fastest run is set beside torch.matmul of the same shape in
fp32 on the same GPU (cuBLAS), the two alternating `--rounds` times; ratios
are ours / cuBLAS. cuBLAS's bf16 and fp16 4096^3 are printed as the reference
for the half-precision goals. Needs python3 with numpy and torch.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np


def write_weights(artifact):
    """weights.safetensors for the manifest's weights, random normal / sqrt(K)."""
    with open(os.path.join(artifact, "manifest.json")) as f:
        manifest = json.load(f)
    path = os.path.join(artifact, manifest.get("weights_file", "weights.safetensors"))
    if os.path.exists(path):
        return
    rng = np.random.default_rng(0)
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for weight in manifest["weights"]:
        if weight["dtype"] != "F32":
            sys.exit(f"gpu_bench: {artifact}: weight {weight['name']} is {weight['dtype']}")
        shape = weight["shape"]
        value = (rng.standard_normal(shape, dtype=np.float32) /
                 np.sqrt(max(shape[-1], 1))).astype("<f4")
        header[weight["name"]] = {"dtype": "F32", "shape": shape,
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


def write_inputs(case):
    """inputs/NAME.npy, random, for the manifest's (static, F32) inputs."""
    with open(os.path.join(case, "artifact", "manifest.json")) as f:
        manifest = json.load(f)
    inputs = os.path.join(case, "inputs")
    os.makedirs(inputs, exist_ok=True)
    rng = np.random.default_rng(1)
    for tensor in manifest["inputs"]:
        if tensor["dtype"] != "F32" or min(tensor["shape"]) < 0:
            sys.exit(f"gpu_bench: {case}: input {tensor['name']} is not a static F32 tensor")
        np.save(os.path.join(inputs, tensor["name"] + ".npy"),
                rng.standard_normal(tensor["shape"], dtype=np.float32))


def run_ours(peft_run, case, runs):
    artifact = os.path.join(case, "artifact")
    command = [peft_run, artifact, "--bench", str(runs)]
    inputs = os.path.join(case, "inputs")
    for name in sorted(os.listdir(inputs)):
        command += ["--input", f"{name[:-4]}={os.path.join(inputs, name)}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return None, result.stderr.strip()
    match = re.search(r"min ([0-9.]+) ms", result.stdout)
    return float(match.group(1)), ""


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bench")
    parser.add_argument("--peft-run", required=True)
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
    # Our f32 kernels compute in f32: so does the reference (no TF32).
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    for dtype in (torch.bfloat16, torch.float16):
        a = torch.randn(4096, 4096, device="cuda", dtype=dtype)
        ms = time_torch(torch, a, a, args.runs)
        print(f"cuBLAS {str(dtype)[6:]} 4096^3: {ms:.3f} ms, {2 * 4096**3 / ms / 1e9:.1f} TFLOP/s")
    print(f"{'work':28} {'ours ms':>10} {'cuBLAS ms':>10} {'ours/cuBLAS':>12}")
    for name in sorted(os.listdir(args.bench)):
        case = os.path.join(args.bench, name)
        match = re.match(r"(\d+)x(\d+)x(\d+)", name)
        if not match or not os.path.isdir(case):
            continue
        write_weights(os.path.join(case, "artifact"))
        write_inputs(case)
        m, k, n = map(int, match.groups())
        x = torch.randn(m, k, device="cuda")
        w = torch.randn(k, n, device="cuda")
        ours, theirs, error = float("inf"), float("inf"), ""
        for _ in range(args.rounds):
            ms, error = run_ours(args.peft_run, case, args.runs)
            if ms is None:
                break
            ours = min(ours, ms)
            theirs = min(theirs, time_torch(torch, x, w, args.runs))
        if error:
            print(f"{name:28} FAILED: {error}")
            continue
        print(f"{name:28} {ours:10.3f} {theirs:10.3f} {ours / theirs:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
