#!/usr/bin/env python3
"""Runs an ONNX model with onnxruntime and saves its outputs as .npy files.

    run_onnxruntime.py MODEL.onnx --input NAME=FILE.npy ... --output-dir DIR

The independent check of an exported model: onnxruntime knows nothing of
peft-mlir. Needs the interpreter that has onnxruntime (lit's %ort_python).
"""
import argparse
import os

import numpy as np
import onnxruntime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--output-dir", required=True)
    args = parser.parse_args()
    feeds = {}
    for spec in args.input:
        name, path = spec.split("=", 1)
        feeds[name] = np.load(path)
    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    os.makedirs(args.output_dir, exist_ok=True)
    for name, value in zip(names, session.run(names, feeds)):
        np.save(os.path.join(args.output_dir, f"{name}.npy"), value)
        print(f"{name}: shape {list(value.shape)}")


if __name__ == "__main__":
    main()
