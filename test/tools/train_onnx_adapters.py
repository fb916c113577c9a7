#!/usr/bin/env python3
"""Stands in for training an ONNX model peftc exported with fresh adapters.

    train_onnx_adapters.py MODEL.onnx TRAINED.onnx [--seed N]

Checks first that each adapter tensor (listed in the model's
peft_mlir.adapter.<name>.tensors metadata) holds Hugging Face PEFT's fresh
initialization: lora_A uniform within ±1/sqrt(fan_in) with about the spread
of kaiming_uniform(a=sqrt(5)), lora_B zeros, ia3_l ones, ssf_scale ones,
ssf_shift zeros. Then adds N(0, 0.3²) noise to every adapter tensor, as
training would move them, and saves the model. Prints one line per tensor.
"""
import argparse
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def fresh_error(file_name, value):
    """Why `value` is not PEFT's fresh initialization of `file_name`."""
    if ".lora_A." in file_name:
        bound = 1 / np.sqrt(np.prod(value.shape[1:]))
        spread = value.std() / (bound / np.sqrt(3))
        if np.abs(value).max() > bound or not 0.7 < spread < 1.3:
            return f"not kaiming-uniform: max {np.abs(value).max():.3g}, bound {bound:.3g}"
        return None
    expected = {".lora_B.": 0.0, ".ia3_l": 1.0, ".ssf_scale": 1.0, ".ssf_shift": 0.0}
    for part, constant in expected.items():
        if part in file_name:
            return None if np.all(value == constant) else f"not all {constant}"
    return "unknown tensor"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("trained")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = onnx.load(args.model)
    names = {}
    for entry in model.metadata_props:
        if entry.key.startswith("peft_mlir.adapter.") and entry.key.endswith(".tensors"):
            names.update(json.loads(entry.value))
    generator = np.random.default_rng(args.seed)
    failed = False
    for initializer in model.graph.initializer:
        if initializer.name not in names:
            continue
        value = numpy_helper.to_array(initializer)
        error = fresh_error(names[initializer.name], value)
        failed |= error is not None
        print(f"{initializer.name} {list(value.shape)}: {error or 'fresh'}")
        trained = value + 0.3 * generator.standard_normal(value.shape).astype(value.dtype)
        initializer.CopyFrom(numpy_helper.from_array(trained, initializer.name))
    onnx.save(model, args.trained)
    sys.exit(1 if failed or not names else 0)


if __name__ == "__main__":
    main()
