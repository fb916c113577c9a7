#!/usr/bin/env python3
"""The expected outputs of a batch whose rows use different adapters.

    mix_rows.py OUT --index 0 1 -1 1 0 --slot DIR0 --slot DIR1 --none DIR

Each DIR holds one reference per output (NAME.npy, from PEFT's forward of the
same batch with one adapter, or of the base model for --none). Row i of each
output in OUT is row i of the reference of slot index[i] (--none's where it
is -1), and OUT/adapter_index.npy holds the index (int64): the rows of a
mixed batch equal each row run through PEFT with its own adapter.
"""
import argparse
import os
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--index", type=int, nargs="+", required=True)
    parser.add_argument("--slot", action="append", default=[], help="references of slot 0, 1, ...")
    parser.add_argument("--none", required=True, help="references of the base model")
    args = parser.parse_args()
    if any(i < -1 or i >= len(args.slot) for i in args.index):
        sys.exit(f"mix_rows.py: an index outside -1..{len(args.slot) - 1}")
    os.makedirs(os.path.join(args.out, "expected"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
    index = np.array(args.index, dtype=np.int64)
    np.save(os.path.join(args.out, "inputs", "adapter_index.npy"), index)
    for name in sorted(os.listdir(args.none)):
        if not name.endswith(".npy"):
            continue
        base = np.load(os.path.join(args.none, name))
        if base.shape[0] != len(index):
            sys.exit(f"mix_rows.py: {name} has {base.shape[0]} rows, the index {len(index)}")
        mixed = base.copy()
        for row, slot in enumerate(index):
            if slot >= 0:
                mixed[row] = np.load(os.path.join(args.slot[slot], name))[row]
        np.save(os.path.join(args.out, "expected", name), mixed)


if __name__ == "__main__":
    main()
