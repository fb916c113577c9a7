#!/usr/bin/env python3
"""The weights PEFT-format LoRA adapters give when their summed delta is
truncated to a rank by SVD, computed with numpy, for a test to compare with.

    svd_reference.py MODEL.onnx RANK OUT_DIR ADAPTER_DIR...

For every module the adapters target whose weight is the initializer
`<module>.weight` (PyTorch's [out, in, ...] layout), writes
OUT_DIR/<module>.weight.npy = W + U_k·Σ_k·V_kᵀ, where ΔW = Σᵢ sᵢ·Bᵢ·Aᵢ
(flattened to [out, in·...]) = U·Σ·Vᵀ, and prints the discarded energy.
"""
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def read_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", name
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=np.float32).reshape(entry["shape"])
    return tensors


def main():
    model_path, rank, out_dir, adapters = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(model_path).graph.initializer}
    deltas = {}
    for directory in adapters:
        with open(os.path.join(directory, "adapter_config.json")) as f:
            config = json.load(f)
        scale = config["lora_alpha"] / config["r"]
        tensors = read_safetensors(os.path.join(directory, "adapter_model.safetensors"))
        for name, a in tensors.items():
            if not name.endswith(".lora_A.weight"):
                continue
            module = name[len("base_model.model."):-len(".lora_A.weight")]
            b = tensors[name.replace("lora_A", "lora_B")]
            delta = scale * (b.reshape(b.shape[0], -1).astype(np.float64) @
                             a.reshape(a.shape[0], -1).astype(np.float64))
            deltas[module] = deltas.get(module, 0) + delta
    os.makedirs(out_dir, exist_ok=True)
    for module, delta in sorted(deltas.items()):
        base = weights[module + ".weight"]
        u, sigma, vt = np.linalg.svd(delta, full_matrices=False)
        kept = (u[:, :rank] * sigma[:rank]) @ vt[:rank]
        discarded = float((sigma[rank:] ** 2).sum() / (sigma ** 2).sum())
        print(f"{module}: discarded energy {discarded:.3g}")
        merged = base.astype(np.float64) + kept.reshape(base.shape)
        np.save(os.path.join(out_dir, module + ".weight.npy"), merged.astype(np.float32))


if __name__ == "__main__":
    main()
