#!/usr/bin/env python3
"""Compiles single linear layers of many shapes, with and without adapters,
and compares what they compute with numpy.

    shape_sweep.py --bin BUILD/bin --work DIR [--cases N] [--seed S]

M, N and K are drawn from SIZES; each case also draws a static or dynamic
row count, the weight layout (MatMul over an [in, out] initializer, as torch
exports nn.Linear, or Gemm with transB over [out, in]), a bias or none, and
an adapter method (none, LoRA, DoRA, LoHa, LoKr, IA3 on the output or as a
feed-forward input scale) compiled merged (--mode merge) and unmerged
(--mode fuse). Besides the random draws every method runs once in each mode
on a fixed shape, and the shapes that once failed to compile are always in.
The reference is numpy's float64 evaluation of each method's formula (the
PEFT math in docs/adapters.md), never our own output; a case passes within
1e-4 x max(1, max |y|). Prints one line per
case and closes with "N passed, N failed"; exits 1 on any failure.
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZES = [1, 3, 16, 17, 32, 63, 64, 65, 128, 129, 256, 1000, 2048]
METHODS = ["none", "lora", "dora", "loha", "lokr", "ia3", "ia3-ff"]
# Large products of three sizes take seconds each; the draw keeps below this
# many multiply-adds unless a case is pinned.
MAX_MACS = 1 << 28


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def smallest_factor(n):
    return next((f for f in range(2, int(n ** 0.5) + 1) if n % f == 0), n)


class Case:
    def __init__(self, index, m, n, k, static_rows, in_out, bias, method, mode):
        self.index, self.m, self.n, self.k = index, m, n, k
        self.static_rows, self.in_out, self.bias = static_rows, in_out, bias
        self.method, self.mode = method, mode

    def name(self):
        return (f"{self.index:02d} M={self.m} N={self.n} K={self.k} "
                f"{'static' if self.static_rows else 'dynamic'} "
                f"{'[in,out]' if self.in_out else '[out,in]'} "
                f"{'bias' if self.bias else 'no-bias'} {self.method}"
                + ("" if self.method == "none" else f" {self.mode}"))

    def build(self, directory, rng):
        """Writes model.onnx, the adapter and the input; returns numpy's y."""
        m, n, k = self.m, self.n, self.k
        w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32) if self.bias else None
        x = rng.standard_normal((m, k)).astype(np.float32)
        rows = m if self.static_rows else "batch"
        inits = [numpy_helper.from_array(w.T.copy() if self.in_out else w,
                                         "fc.weight_t" if self.in_out else "fc.weight")]
        if self.in_out:
            nodes = [helper.make_node("MatMul", ["x", "fc.weight_t"], ["h" if self.bias else "y"],
                                      name="/fc/MatMul")]
            if self.bias:
                nodes.append(helper.make_node("Add", ["h", "fc.bias"], ["y"], name="/fc/Add"))
        else:
            nodes = [helper.make_node("Gemm", ["x", "fc.weight"] + (["fc.bias"] if self.bias else []),
                                      ["y"], name="/fc/Gemm", transB=1)]
        if self.bias:
            inits.append(numpy_helper.from_array(b, "fc.bias"))
        graph = helper.make_graph(nodes, "linear",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, k])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, n])],
                                  inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.save(model, os.path.join(directory, "model.onnx"))
        np.save(os.path.join(directory, "x.npy"), x)

        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        b64 = np.zeros(n) if b is None else b.astype(np.float64)
        base = x64 @ w64.T + b64
        if self.method == "none":
            return base
        r = min(8, n, k) if self.method != "lokr" else 4
        alpha = 2 * r
        s = alpha / r
        prefix = "base_model.model.fc."
        config = {"r": r, "lora_alpha": alpha, "target_modules": ["fc"], "bias": "none",
                  "fan_in_fan_out": False, "use_rslora": False, "use_dora": False,
                  "modules_to_save": None}
        scale = lambda *shape: (rng.standard_normal(shape) * 0.3).astype(np.float32)
        if self.method in ("lora", "dora"):
            a, bb = scale(r, k), scale(n, r)
            tensors = {prefix + "lora_A.weight": a, prefix + "lora_B.weight": bb}
            config.update(peft_type="LORA")
            delta = s * bb.astype(np.float64) @ a.astype(np.float64)
            if self.method == "lora":
                y = base + s * (x64 @ a.T.astype(np.float64)) @ bb.T.astype(np.float64)
            else:
                config["use_dora"] = True
                magnitude = (np.abs(rng.standard_normal(n)) + 0.5).astype(np.float32)
                tensors[prefix + "lora_magnitude_vector"] = magnitude
                v = w64 + delta
                y = x64 @ ((magnitude / np.linalg.norm(v, axis=1))[:, None] * v).T + b64
        elif self.method == "loha":
            w1a, w1b, w2a, w2b = scale(n, r), scale(r, k), scale(n, r), scale(r, k)
            config = {"peft_type": "LOHA", "r": r, "alpha": alpha, "target_modules": ["fc"]}
            tensors = {prefix + "hada_w1_a": w1a, prefix + "hada_w1_b": w1b,
                       prefix + "hada_w2_a": w2a, prefix + "hada_w2_b": w2b}
            delta = s * (w1a.astype(np.float64) @ w1b) * (w2a.astype(np.float64) @ w2b)
            y = x64 @ (w64 + delta).T + b64
        elif self.method == "lokr":
            fa, fb = smallest_factor(n), smallest_factor(k)
            w1, w2 = scale(fa, fb), scale(n // fa, k // fb)
            config = {"peft_type": "LOKR", "r": r, "alpha": alpha, "target_modules": ["fc"]}
            tensors = {prefix + "lokr_w1": w1, prefix + "lokr_w2": w2}
            delta = s * np.kron(w1.astype(np.float64), w2.astype(np.float64))
            y = x64 @ (w64 + delta).T + b64
        else:  # IA3 on the output, or on the input of a feed-forward layer.
            feedforward = self.method == "ia3-ff"
            l = (1 + scale(k if feedforward else n)).astype(np.float32)
            config = {"peft_type": "IA3", "target_modules": ["fc"],
                      "feedforward_modules": ["fc"] if feedforward else []}
            tensors = {prefix + "ia3_l": l.reshape((1, k) if feedforward else (n, 1))}
            l64 = l.astype(np.float64)
            y = ((x64 * l64) @ w64.T + b64) if feedforward else base * l64
        adapter = os.path.join(directory, "adapter")
        os.makedirs(adapter, exist_ok=True)
        with open(os.path.join(adapter, "adapter_config.json"), "w") as f:
            json.dump(config, f)
        write_safetensors(os.path.join(adapter, "adapter_model.safetensors"), tensors)
        return y


def draw_cases(count, seed):
    chooser = random.Random(seed)
    cases = []
    # Pinned: the shapes that once failed ("failed to peel the last
    # iteration"), and every method in both modes on one small layer.
    cases.append(Case(0, 2048, 2048, 2048, True, False, False, "none", "merge"))
    cases.append(Case(1, 256, 1000, 2048, True, True, True, "none", "merge"))
    for method in METHODS[1:]:
        for mode in ("merge", "fuse"):
            cases.append(Case(len(cases), 64, 64, 32, True, False, True, method, mode))
    while len(cases) < count:
        m, n, k = (chooser.choice(SIZES) for _ in range(3))
        if m * n * k > MAX_MACS:
            continue
        method = chooser.choice(METHODS)
        cases.append(Case(len(cases), m, n, k, chooser.random() < 0.5, chooser.random() < 0.5,
                          chooser.random() < 0.5, method,
                          "merge" if method == "none" else chooser.choice(["merge", "fuse"])))
    return cases


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    passed = failed = 0
    for case in draw_cases(args.cases, args.seed):
        directory = os.path.join(args.work, f"case{case.index:02d}")
        os.makedirs(directory, exist_ok=True)
        expected = case.build(directory, rng)
        compile_cmd = [os.path.join(args.bin, "peftc"), os.path.join(directory, "model.onnx"),
                       "-o", os.path.join(directory, "artifact")]
        if case.method != "none":
            compile_cmd += ["--adapter", os.path.join(directory, "adapter"), "--mode", case.mode]
        run_cmd = [os.path.join(args.bin, "peft-run"), os.path.join(directory, "artifact"),
                   "--input", "x=" + os.path.join(directory, "x.npy"),
                   "--output-dir", os.path.join(directory, "out")]
        detail = ""
        for command in (compile_cmd, run_cmd):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
                break
        if not detail:
            y = np.load(os.path.join(directory, "out", "y.npy"))
            tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
            difference = float(np.abs(y - expected).max()) if y.shape == expected.shape else None
            if difference is None:
                detail = f"shape {list(y.shape)}, expected {list(expected.shape)}"
            elif not difference <= tolerance:
                detail = f"max abs diff {difference:.3g} > {tolerance:.3g}"
            else:
                print(f"{case.name()}: max abs diff {difference:.3g} OK ({difference / max(1.0, float(np.abs(expected).max())):.2g} relative to max(1, |y|))")
                passed += 1
                # Artifacts of large layers take disk space; keep failures only.
                subprocess.run(["rm", "-rf", directory])
                continue
        print(f"{case.name()}: FAIL {detail}")
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
