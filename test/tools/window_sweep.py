#!/usr/bin/env python3
"""Compiles single convolutions and pooling windows of many shapes and
compares what they compute with torch.

    window_sweep.py --bin BUILD/bin --work DIR [--threads N] [--nm LLVM-NM]

Each case is an ONNX model of one Conv, MaxPool or AveragePool node over an
input of dynamic batch, run at batch 1 and 3. The cases cover what the CPU
back end treats apart: stride-1 convolutions (read through a window), strided
ones (the sum over the stride's phases; a kernel of size 1 subsampled),
dilated, padded on one side, of 1, 2 and 3 spatial dimensions, with output
channels that fill no register tile and rows that end inside a panel, and
what stays on the generic path (groups, a dilated strided convolution);
pooling of every stride with padding, dilation and AveragePool's divisors.
The reference is torch.nn.functional in float64, never our own output; a
case passes within 1e-4 x max(1, max |y|), and when model.so holds the
kernel its path makes (llvm-nm): window GEMMs, panel GEMMs (im2col), pooling
kernels, or none (loops). Prints one line per case and closes with "N
passed, N failed"; exits 1 on any failure.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

# (name, channels, out channels, spatial, kernel, strides, pads (begin..., end...),
#  dilations, groups, bias). The name says the path: "im2col" and "loops" as
# named, the rest window GEMMs.
CONVS = [
    ("3x3 s1 p1", 64, 64, (14, 14), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    ("3x3 s1 p1 odd", 5, 13, (9, 23), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, False),
    ("3x3 s1 p0", 3, 8, (7, 7), (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),
    ("1x1 s1", 17, 130, (5, 11), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),
    ("1x1 s2", 16, 32, (9, 9), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1, False),
    ("3x3 s2 p1", 16, 24, (15, 15), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True),
    ("3x3 s2 p1 even", 8, 9, (16, 16), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True),
    ("7x7 s2 p3", 3, 16, (32, 32), (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, True),
    ("5x5 s3 p2 (9 phases: im2col)", 4, 7, (17, 19), (5, 5), (3, 3), (2, 2, 2, 2), (1, 1), 1,
     False),
    ("16x16 s16 patches (im2col)", 3, 24, (64, 48), (16, 16), (16, 16), (0, 0, 0, 0), (1, 1), 1,
     True),
    ("2x2 s2", 6, 10, (8, 8), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 1, True),
    ("1x3 s(1,2) p(0,1)", 6, 8, (6, 13), (1, 3), (1, 2), (0, 1, 0, 1), (1, 1), 1, True),
    ("3x3 dilation 2", 8, 16, (12, 12), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1, True),
    ("3x3 pad one side", 4, 12, (10, 10), (3, 3), (1, 1), (0, 1, 2, 0), (1, 1), 1, True),
    ("1x1 output 1x1", 32, 16, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),
    ("3x3 on 1 pixel p1", 8, 8, (1, 1), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    ("1-d k5 s1 p2", 7, 19, (50,), (5,), (1,), (2, 2), (1,), 1, True),
    ("1-d k3 s2", 4, 8, (33,), (3,), (2,), (1, 1), (1,), 1, False),
    ("3-d 3x3x3 s1 p1", 4, 8, (5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1), 1,
     True),
    ("3-d 3x3x3 s(1,2,2) p1", 3, 5, (7, 8, 9), (3, 3, 3), (1, 2, 2), (1, 1, 1, 1, 1, 1), (1, 1, 1),
     1, True),
    ("3-d 3x3x3 s2 p1 (8 phases: im2col)", 3, 5, (7, 8, 9), (3, 3, 3), (2, 2, 2),
     (1, 1, 1, 1, 1, 1), (1, 1, 1), 1, True),
    ("grouped (loops)", 8, 8, (9, 9), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, True),
    ("strided and dilated (im2col)", 4, 8, (15, 15), (3, 3), (2, 2), (2, 2, 2, 2), (2, 2), 1,
     True),
]

# The kernel each case's model.so must hold (a symbol prefix), or None: loops.
def conv_kernel(name):
    if "loops" in name:
        return None
    return "peft_panel_gemm_" if "im2col" in name else "peft_window_gemm_"

# (name, op, channels, spatial, kernel, strides, pads, dilations, count_include_pad)
POOLS = [
    ("max 3x3 s2 p1", "MaxPool", 16, (33, 33), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0),
    ("max 2x2 s2", "MaxPool", 5, (16, 40), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0),
    ("max 3x3 s1 p1", "MaxPool", 3, (20, 37), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 0),
    ("max 3x3 s1 dilation 2", "MaxPool", 4, (19, 19), (3, 3), (1, 1), (0, 0, 0, 0), (2, 2), 0),
    ("max 3x3 s3", "MaxPool", 2, (64, 64), (3, 3), (3, 3), (0, 0, 0, 0), (1, 1), 0),
    ("max 1-d k4 s2", "MaxPool", 6, (70,), (4,), (2,), (1, 1), (1,), 0),
    ("avg 3x3 s2 p1", "AveragePool", 8, (34, 34), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0),
    ("avg 3x3 s1 p1 include pad", "AveragePool", 8, (18, 40), (3, 3), (1, 1), (1, 1, 1, 1),
     (1, 1), 1),
    ("avg 2x2 s2", "AveragePool", 3, (32, 32), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0),
    ("avg global 7x7", "AveragePool", 16, (7, 7), (7, 7), (1, 1), (0, 0, 0, 0), (1, 1), 0),
]


def torch_padding(x, pads, value):
    rank = len(pads) // 2
    spec = []
    for d in reversed(range(rank)):
        spec += [pads[d], pads[rank + d]]
    return F.pad(x, spec, value=value)


def conv_reference(x, w, b, strides, pads, dilations, groups):
    x = torch_padding(torch.from_numpy(x).double(), pads, 0.0)
    function = [F.conv1d, F.conv2d, F.conv3d][x.dim() - 3]
    bias = None if b is None else torch.from_numpy(b).double()
    return function(x, torch.from_numpy(w).double(), bias, stride=strides, dilation=dilations,
                    groups=groups).numpy()


def pool_reference(x, op, kernel, strides, pads, dilations, include_pad):
    rank = len(kernel)
    x = torch.from_numpy(x).double()
    if op == "MaxPool":
        x = torch_padding(x, pads, float("-inf"))
        function = [F.max_pool1d, F.max_pool2d, F.max_pool3d][rank - 1]
        return function(x, kernel, strides, 0, dilations).numpy()
    # AveragePool: sums over the zero-padded input, divided by the window's
    # count of input elements (or of input and pad elements).
    ones = torch.ones_like(x)
    summed = torch_padding(x, pads, 0.0)
    counted = torch_padding(ones, pads, 1.0 if include_pad else 0.0)
    function = [F.avg_pool1d, F.avg_pool2d, F.avg_pool3d][rank - 1]
    return (function(summed, kernel, strides) / function(counted, kernel, strides)).numpy()


def write_model(path, node, inputs, initializers, output_rank):
    graph = helper.make_graph(
        [node], "window", inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"] + [None] * (output_rank - 1))],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)


def kernels_in(nm, library):
    listed = subprocess.run([nm, library], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in listed.splitlines() if line.strip()}


def run_case(args, index, name, directory, node, initializer_arrays, channels, spatial, reference,
             kernel):
    os.makedirs(directory, exist_ok=True)
    rank = len(spatial)
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", channels, *spatial])
    initializers = [numpy_helper.from_array(a, n) for n, a in initializer_arrays.items()]
    write_model(os.path.join(directory, "model.onnx"), node, [x_info], initializers, 2 + rank)
    artifact = os.path.join(directory, "artifact")
    done = subprocess.run([os.path.join(args.bin, "peftc"), os.path.join(directory, "model.onnx"),
                           "-o", artifact], capture_output=True, text=True)
    if done.returncode != 0:
        return f"peftc failed: {done.stderr.strip()}"
    symbols = kernels_in(args.nm, os.path.join(artifact, "model.so"))
    kernels = sorted(s for s in symbols if s.startswith(("peft_window_gemm_", "peft_panel_gemm_",
                                                         "peft_max_pool_", "peft_sum_pool_")))
    if kernel is None and kernels:
        return f"expected loops, found {kernels[0]}"
    if kernel is not None and not any(s.startswith(kernel) for s in kernels):
        return f"no {kernel}... kernel in model.so"
    rng = np.random.default_rng(index)
    worst = 0.0
    for batch in (1, 3):
        x = rng.standard_normal((batch, channels, *spatial)).astype(np.float32)
        np.save(os.path.join(directory, "x.npy"), x)
        out = os.path.join(directory, f"out{batch}")
        done = subprocess.run([os.path.join(args.bin, "peft-run"), artifact, "--input",
                               f"x={os.path.join(directory, 'x.npy')}", "--output-dir", out,
                               "--threads", str(args.threads)], capture_output=True, text=True)
        if done.returncode != 0:
            return f"peft-run failed: {done.stderr.strip()}"
        y = np.load(os.path.join(out, "y.npy"))
        expected = reference(x)
        if y.shape != expected.shape:
            return f"shape {list(y.shape)}, expected {list(expected.shape)}"
        error = np.max(np.abs(y - expected)) / max(1.0, np.max(np.abs(expected)))
        worst = max(worst, error)
    return None if worst <= 1e-4 else f"relative error {worst:.2e}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nm", default="/usr/lib/llvm-22/bin/llvm-nm")
    args = parser.parse_args()
    passed = failed = 0
    index = 0
    for name, c, o, spatial, kernel, strides, pads, dilations, groups, bias in CONVS:
        rng = np.random.default_rng(100 + index)
        w = (rng.standard_normal((o, c // groups, *kernel)) / np.sqrt(c * np.prod(kernel))).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32) if bias else None
        arrays = {"w": w}
        if bias:
            arrays["b"] = b
        node = helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["y"],
                                kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                                dilations=list(dilations), group=groups)
        error = run_case(args, index, name, os.path.join(args.work, f"case{index:02d}"), node, arrays,
                         c, spatial, lambda x: conv_reference(x, w, b, strides, pads, dilations, groups),
                         conv_kernel(name))
        print(f"{index:02d} conv {name}: {'OK' if error is None else 'FAILED: ' + error}")
        passed, failed = passed + (error is None), failed + (error is not None)
        index += 1
    for name, op, c, spatial, kernel, strides, pads, dilations, include_pad in POOLS:
        attributes = dict(kernel_shape=list(kernel), strides=list(strides), pads=list(pads))
        if op == "MaxPool":
            attributes["dilations"] = list(dilations)
        else:
            attributes["count_include_pad"] = include_pad
        node = helper.make_node(op, ["x"], ["y"], **attributes)
        error = run_case(args, index, name, os.path.join(args.work, f"case{index:02d}"), node, {}, c,
                         spatial,
                         lambda x: pool_reference(x, op, kernel, strides, pads, dilations, include_pad),
                         "peft_max_pool_" if op == "MaxPool" else "peft_sum_pool_")
        print(f"{index:02d} pool {name}: {'OK' if error is None else 'FAILED: ' + error}")
        passed, failed = passed + (error is None), failed + (error is not None)
        index += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
