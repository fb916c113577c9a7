#!/usr/bin/env python3
"""Writes initializers of an ONNX model as NAME.npy files.

    onnx_initializers.py MODEL OUT_DIR NAME...

Lets a test compare the weights peftc merged into an exported model with
weights merged independently (by the fixture generator, in torch).
"""
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    model_path, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    initializers = {i.name: i for i in onnx.load(model_path).graph.initializer}
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        if name not in initializers:
            sys.exit(f"{model_path}: no initializer '{name}'")
        np.save(os.path.join(out_dir, name + ".npy"), numpy_helper.to_array(initializers[name]))


if __name__ == "__main__":
    main()
