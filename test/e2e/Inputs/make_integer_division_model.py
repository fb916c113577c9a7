"""Signed integer Div and ReduceMean, with divisors of 0 and INT64_MIN / -1.

ONNX leaves integer division by zero undefined; compiled code must neither
trap nor read garbage: peft-mlir computes it as NumPy does (x / 0 = 0,
INT64_MIN / -1 wraps). The references are numpy's, written beside the model.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, save

out = sys.argv[1]
graph = helper.make_graph(
    [helper.make_node("Div", ["x", "d"], ["quotient"]),
     helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1], keepdims=0)],
    "integer_division",
    [helper.make_tensor_value_info("x", TensorProto.INT64, [2, 4]),
     helper.make_tensor_value_info("d", TensorProto.INT64, [2, 4])],
    [helper.make_tensor_value_info("quotient", TensorProto.INT64, [2, 4]),
     helper.make_tensor_value_info("mean", TensorProto.INT64, [2])])
save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), f"{out}/model.onnx")

low = np.iinfo(np.int64).min
x = np.array([[7, -7, 5, low], [9, 10, -11, 12]], np.int64)
d = np.array([[2, 2, 0, -1], [0, 3, 4, 0]], np.int64)
np.save(f"{out}/x.npy", x)
np.save(f"{out}/d.npy", d)


def truncated(a, b):
    """C's a / b on Python integers, wrapped to int64 as two's complement."""
    if b == 0:
        return 0
    q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    return (q + 2**63) % 2**64 - 2**63


quotient = np.array([[truncated(int(a), int(b)) for a, b in zip(xr, dr)] for xr, dr in zip(x, d)],
                    np.int64)
# ONNX's integer ReduceMean: the sum divided by the count, truncated.
mean = np.array([truncated(sum(int(v) for v in row), len(row)) for row in x], np.int64)
os.makedirs(f"{out}/expected", exist_ok=True)
np.save(f"{out}/expected/quotient.npy", quotient)
np.save(f"{out}/expected/mean.npy", mean)
