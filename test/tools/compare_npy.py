#!/usr/bin/env python3
"""Compares a run's outputs with reference outputs computed independently.

    compare_npy.py OUT_DIR EXPECTED_DIR [--atol 1e-4] [--rtol 0] [--max-rel R]
                   [--scaled-atol T] [--differs-from BASE_DIR]

Every EXPECTED_DIR/NAME.npy must have a matching OUT_DIR/NAME.npy of the same
shape with |out - expected| <= atol + rtol·|expected| everywhere (numpy's
allclose rule; the default rtol 0 makes it a max absolute difference); with
--max-rel instead, max |out - expected| <= R·max |expected| (how merged
weights are judged); with --scaled-atol instead, max |out - expected| <=
T·max(1, max |expected|) (an absolute tolerance that grows with outputs
larger than 1, as the Hugging Face fixtures are judged). With --differs-from, each
output must also differ from BASE_DIR's by more than 1e-2, which shows that
the adapter changed the result. Prints one line per output; exits 1 on any
mismatch.
"""
import argparse
import os
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("expected")
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--rtol", type=float, default=0.0)
    parser.add_argument("--max-rel", type=float)
    parser.add_argument("--scaled-atol", type=float)
    parser.add_argument("--differs-from")
    args = parser.parse_args()
    ok = True
    names = sorted(f[:-4] for f in os.listdir(args.expected) if f.endswith(".npy"))
    for name in names:
        expected = np.load(os.path.join(args.expected, name + ".npy"))
        path = os.path.join(args.out, name + ".npy")
        if not os.path.exists(path):
            print(f"{name}: MISSING")
            ok = False
            continue
        actual = np.load(path)
        if actual.shape != expected.shape:
            print(f"{name}: SHAPE {actual.shape} != {expected.shape}")
            ok = False
            continue
        error = np.abs(actual.astype(np.float64) - expected)
        diff = float(error.max()) if actual.size else 0.0
        if args.max_rel is not None:
            scale = float(np.abs(expected).max()) if expected.size else 0.0
            within = diff <= args.max_rel * scale
            measure = f"max rel diff {diff / scale if scale else 0.0:.3g}"
        elif args.scaled_atol is not None:
            limit = args.scaled_atol * max(1.0, float(np.abs(expected).max()) if expected.size else 0.0)
            within = diff <= limit
            measure = f"max abs diff {diff:.3g} (limit {limit:.3g})"
        else:
            within = bool(np.all(error <= args.atol + args.rtol * np.abs(expected)))
            measure = f"max abs diff {diff:.3g}"
        verdict = "OK" if within else "MISMATCH"
        line = f"{name}: shape {list(actual.shape)} {measure} {verdict}"
        if args.differs_from:
            base = np.load(os.path.join(args.differs_from, name + ".npy"))
            change = float(np.abs(expected.astype(np.float64) - base).max())
            line += f", adapter changes it by {change:.3g}"
            if change <= 1e-2:
                line += " TOO-LITTLE"
                ok = False
        print(line)
        ok = ok and verdict == "OK"
    if not names:
        print("no expected outputs found")
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
