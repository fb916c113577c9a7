#!/usr/bin/env python3
"""Compares an exported ONNX model with the one it came from.

    onnx_diff.py ORIGINAL.onnx EXPORTED.onnx

Prints whether inputs, outputs (names, types, shapes), nodes and opsets are
the same, the op domains the exported model uses, whether it passes the
checker, and which initializers changed (and by how much).
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def signature(values):
    return [(v.name, onnx.helper.printable_type(v.type)) for v in values]


def main():
    original, exported = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
    onnx.checker.check_model(exported)
    print("checker: ok")
    same = lambda a, b: "same" if a == b else "DIFFERENT"
    print("inputs:", same(signature(original.graph.input), signature(exported.graph.input)))
    print("outputs:", same(signature(original.graph.output), signature(exported.graph.output)))
    print("nodes:", same([(n.op_type, list(n.input), list(n.output)) for n in original.graph.node],
                         [(n.op_type, list(n.input), list(n.output)) for n in exported.graph.node]))
    print("opsets:", same(list(original.opset_import), list(exported.opset_import)))
    print("domains:", sorted({n.domain or "ai.onnx" for n in exported.graph.node}))
    before = {i.name: numpy_helper.to_array(i) for i in original.graph.initializer}
    for init in exported.graph.initializer:
        after = numpy_helper.to_array(init)
        if init.name not in before:
            print(f"new initializer: {init.name}")
        elif before[init.name].shape != after.shape or before[init.name].dtype != after.dtype:
            print(f"retyped: {init.name}")
        elif not np.array_equal(before[init.name], after):
            change = np.abs(after.astype(np.float64) - before[init.name]).max()
            print(f"changed: {init.name} max abs change {change:.3g}")


if __name__ == "__main__":
    main()
