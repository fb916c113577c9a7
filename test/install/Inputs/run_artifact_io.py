#!/usr/bin/env python3
"""The inputs run-artifact.c binds, and a check of what it printed.

    run_artifact_io.py inputs DIR          DIR/input_ids.npy, attention_mask.npy
    run_artifact_io.py compare TEXT DIR    TEXT's outputs against DIR/NAME.npy

compare prints "NAME: OK" per output, or exits 1 naming the first mismatch
(values equal to 1e-6 relative: both come from the same artifact).
"""
import os
import sys

import numpy as np


def main():
    if sys.argv[1] == "inputs":
        os.makedirs(sys.argv[2], exist_ok=True)
        ids = (np.arange(16, dtype=np.int64) * 7 % 90).reshape(2, 8)
        np.save(os.path.join(sys.argv[2], "input_ids.npy"), ids)
        np.save(os.path.join(sys.argv[2], "attention_mask.npy"), np.ones_like(ids))
        return 0
    lines = open(sys.argv[2]).read().split("\n")
    at = 0
    while at < len(lines) and lines[at]:
        name, *shape = lines[at].split()
        shape = [int(s) for s in shape]
        count = int(np.prod(shape))
        printed = np.array([float(v) for v in lines[at + 1:at + 1 + count]]).reshape(shape)
        at += 1 + count
        expected = np.load(os.path.join(sys.argv[3], name + ".npy"))
        if expected.shape != printed.shape or not np.allclose(printed, expected, rtol=1e-6, atol=1e-7):
            print(f"{name}: differs from {sys.argv[3]}")
            return 1
        print(f"{name}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
