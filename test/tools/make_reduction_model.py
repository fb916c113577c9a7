#!/usr/bin/env python3
"""Writes an ONNX model of row reductions over long rows, and numpy's answer,
to test reductions whose rows take many elements per thread.

    make_reduction_model.py OUT_DIR --width W --rows M

Outputs of x [batch, W]: Softmax(x) and LayerNormalization(x) (with a scale
and a bias) over the last axis, ReduceMax and ReduceSum over it (kept). The
batch is dynamic; OUT_DIR/inputs/x.npy and OUT_DIR/expected/*.npy are written
for M rows, computed in float64.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--rows", type=int, required=True)
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    w = args.width
    scale = rng.standard_normal(w).astype(np.float32)
    bias = rng.standard_normal(w).astype(np.float32)
    axes = numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["softmax"], axis=-1),
         helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["norm"], axis=-1,
                          epsilon=1e-5),
         helper.make_node("ReduceMax", ["x"], ["max"], axes=[-1], keepdims=1),
         helper.make_node("ReduceSum", ["x", "axes"], ["sum"], keepdims=1)],
        "reductions",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", w])],
        [helper.make_tensor_value_info("softmax", TensorProto.FLOAT, ["batch", w]),
         helper.make_tensor_value_info("norm", TensorProto.FLOAT, ["batch", w]),
         helper.make_tensor_value_info("max", TensorProto.FLOAT, ["batch", 1]),
         helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(bias, "bias"), axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "expected"), exist_ok=True)
    onnx.save(model, os.path.join(args.out, "model.onnx"))

    x = (rng.standard_normal((args.rows, w)) * 3).astype(np.float32)
    np.save(os.path.join(args.out, "inputs", "x.npy"), x)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
    mean = x64.mean(axis=-1, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=-1, keepdims=True)
    expected = {
        "softmax": e / e.sum(axis=-1, keepdims=True),
        "norm": (x64 - mean) / np.sqrt(var + 1e-5) * scale + bias,
        "max": x64.max(axis=-1, keepdims=True),
        "sum": x64.sum(axis=-1, keepdims=True),
    }
    for name, value in expected.items():
        np.save(os.path.join(args.out, "expected", name + ".npy"), value.astype(np.float32))


if __name__ == "__main__":
    main()
