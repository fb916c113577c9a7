#!/usr/bin/env python3
"""Writes a model with unsigned integer inputs, outputs and a large (stored,
not inlined) uint8 weight, its inputs, and numpy's outputs.

    make_integer_model.py OUTDIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(0)
    weight = rng.integers(0, 256, 80, dtype=np.uint8)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["sum"]),
         helper.make_node("Div", ["sum", "d"], ["quotient"]),
         helper.make_node("Max", ["x", "w"], ["largest"]),
         helper.make_node("Cast", ["quotient"], ["wide"], to=TensorProto.UINT32)],
        "integers",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["batch", 80]),
         helper.make_tensor_value_info("d", TensorProto.UINT8, ["batch", 80])],
        [helper.make_tensor_value_info("quotient", TensorProto.UINT8, ["batch", 80]),
         helper.make_tensor_value_info("largest", TensorProto.UINT8, ["batch", 80]),
         helper.make_tensor_value_info("wide", TensorProto.UINT32, ["batch", 80])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    onnx.save(model, os.path.join(out, "model.onnx"))
    x = rng.integers(0, 256, (3, 80), dtype=np.uint8)
    d = rng.integers(1, 256, (3, 80), dtype=np.uint8)
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "d.npy"), d)
    quotient = (x + weight) // d  # uint8 arithmetic wraps, as ONNX's does
    np.save(os.path.join(out, "expected", "quotient.npy"), quotient)
    np.save(os.path.join(out, "expected", "largest.npy"), np.maximum(x, weight))
    np.save(os.path.join(out, "expected", "wide.npy"), quotient.astype(np.uint32))


if __name__ == "__main__":
    main()
