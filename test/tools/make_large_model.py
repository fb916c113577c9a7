#!/usr/bin/env python3
"""A model whose weights are large initializers (over the 64 KiB that the
importer leaves in the mapped file), an input, and numpy's output:

    make_large_model.py OUT_DIR

writes OUT_DIR/model.onnx (y = relu(x·W1 + b1)·W2 + b2 with W1 [256, 384],
W2 [384, 96], b1 small), OUT_DIR/inputs/x.npy and OUT_DIR/expected/y.npy.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    rng = np.random.default_rng(7)
    w1 = rng.standard_normal((256, 384)).astype(np.float32) / 16
    b1 = rng.standard_normal(384).astype(np.float32)
    w2 = rng.standard_normal((384, 96)).astype(np.float32) / 16
    b2 = rng.standard_normal(96).astype(np.float32)
    x = rng.standard_normal((5, 256)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 96])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "model.onnx"))
    np.save(os.path.join(out, "inputs", "x.npy"), x)
    y = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    np.save(os.path.join(out, "expected", "y.npy"), y.astype(np.float32))


if __name__ == "__main__":
    main()
