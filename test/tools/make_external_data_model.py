#!/usr/bin/env python3
"""Writes y = x @ W with W (float [16, 16], 1 KB) stored as ONNX external data.

  make_external_data_model.py MODEL.onnx --location L [--offset N] [--length N]
      [--write-data FILE --data-bytes N]

The external_data entries are written as given (no checks), so that tests can
name paths outside the model's folder, bad offsets and short files.
"""
import argparse

import numpy as np
from onnx import TensorProto, helper, save


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--location", required=True)
    parser.add_argument("--offset")
    parser.add_argument("--length")
    parser.add_argument("--write-data", help="the data file to write, if any")
    parser.add_argument("--data-bytes", type=int, default=16 * 16 * 4)
    args = parser.parse_args()

    weight = TensorProto()
    weight.name = "W"
    weight.data_type = TensorProto.FLOAT
    weight.dims.extend([16, 16])
    weight.data_location = TensorProto.EXTERNAL
    for key in ("location", "offset", "length"):
        value = getattr(args, key)
        if value is not None:
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 16])], [weight])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), args.model)
    if args.write_data:
        values = np.arange(args.data_bytes // 4, dtype=np.float32) / 256
        with open(args.write_data, "wb") as f:
            f.write(values.tobytes()[: args.data_bytes])


if __name__ == "__main__":
    main()
