#!/usr/bin/env python3
"""Writes an ONNX model of two linear layers with random weights, and numpy's
answer for a given input, to test the tiled and vectorized GEMMs.

    make_gemm_model.py OUT_DIR --in K --hidden N --out P --rows M [M ...]
                       [--dtype float32|float16]

y = Gemm(transB=1)(MatMul(x, W1) + b1, W2, b2): W1 is stored [in, out] (as
torch exports MatMul), W2 [out, in] (nn.Linear as Gemm). The batch is dynamic;
for each M, OUT_DIR/rows<M>/inputs/x.npy and expected/y.npy are written. With
--dtype float16 the weights, input and output are float16 and the expected
output is computed from the float16 values in float64 (the hidden layer
rounded to float16, as the graph says).
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--in", dest="k", type=int, required=True)
    parser.add_argument("--hidden", type=int, required=True)
    parser.add_argument("--out", dest="p", type=int, required=True)
    parser.add_argument("--rows", type=int, nargs="+", required=True)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    onnx_type = TensorProto.FLOAT if dtype == np.float32 else TensorProto.FLOAT16
    rng = np.random.default_rng(7)
    w1 = (rng.standard_normal((args.k, args.hidden), dtype=np.float32) / np.sqrt(args.k)).astype(dtype)
    b1 = rng.standard_normal(args.hidden, dtype=np.float32).astype(dtype)
    w2 = (rng.standard_normal((args.p, args.hidden), dtype=np.float32) / np.sqrt(args.hidden)).astype(dtype)
    b2 = rng.standard_normal(args.p, dtype=np.float32).astype(dtype)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc1.weight_t"], ["h0"], name="/fc1/MatMul"),
         helper.make_node("Add", ["h0", "fc1.bias"], ["h"], name="/fc1/Add"),
         helper.make_node("Gemm", ["h", "fc2.weight", "fc2.bias"], ["y"], name="/fc2/Gemm",
                          transB=1)],
        "gemms",
        [helper.make_tensor_value_info("x", onnx_type, ["batch", args.k])],
        [helper.make_tensor_value_info("y", onnx_type, ["batch", args.p])],
        [numpy_helper.from_array(w1, "fc1.weight_t"), numpy_helper.from_array(b1, "fc1.bias"),
         numpy_helper.from_array(w2, "fc2.weight"), numpy_helper.from_array(b2, "fc2.bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    os.makedirs(args.out, exist_ok=True)
    onnx.save(model, os.path.join(args.out, "model.onnx"))
    for rows in args.rows:
        x = rng.standard_normal((rows, args.k), dtype=np.float32).astype(dtype)
        h = (x.astype(np.float64) @ w1.astype(np.float64) + b1).astype(dtype)
        y = h.astype(np.float64) @ w2.T.astype(np.float64) + b2.astype(np.float64)
        for sub, name, value in (("inputs", "x", x), ("expected", "y", y.astype(dtype))):
            os.makedirs(os.path.join(args.out, f"rows{rows}", sub), exist_ok=True)
            np.save(os.path.join(args.out, f"rows{rows}", sub, f"{name}.npy"), value)


if __name__ == "__main__":
    main()
