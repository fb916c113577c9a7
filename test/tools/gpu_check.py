#!/usr/bin/env python3
"""Runs CUDA artifacts on the GPU and compares them with the CPU artifact's outputs.

    gpu_check.py CASES_DIR [--peft-run PATH] [--atol 1e-4]

Each CASES_DIR/NAME/ holds artifact/ (peftc --target cuda), inputs/*.npy and
expected/*.npy (what the CPU artifact of the same model and adapters
computed). Every output must match: max |gpu - cpu| <= atol·max(1, max |cpu|)
(fp32 end to end). Prints one line per case and output; exits 1 on any
mismatch or failed run. Without a GPU it prints "skipped: no GPU" and exits 2,
never counting as a pass.

Needs only python3 with numpy (the GPU machine has no LLVM and no lit).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np


def run_case(peft_run, case, atol):
    inputs = os.path.join(case, "inputs")
    command = [peft_run, os.path.join(case, "artifact")]
    for name in sorted(os.listdir(inputs)):
        if name.endswith(".npy"):
            command += ["--input", f"{name[:-4]}={os.path.join(inputs, name)}"]
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(command + ["--output-dir", out], capture_output=True, text=True)
        if result.returncode != 0:
            message = result.stderr.strip()
            return None if "no GPU" in message or "no CUDA driver" in message else message, []
        lines, ok = [], True
        expected_dir = os.path.join(case, "expected")
        for name in sorted(os.listdir(expected_dir)):
            expected = np.load(os.path.join(expected_dir, name))
            path = os.path.join(out, name)
            if not os.path.exists(path):
                lines.append(f"{name[:-4]}: missing")
                ok = False
                continue
            got = np.load(path)
            if got.shape != expected.shape:
                lines.append(f"{name[:-4]}: shape {list(got.shape)}, expected {list(expected.shape)}")
                ok = False
                continue
            diff = float(np.max(np.abs(got.astype(np.float64) - expected))) if got.size else 0.0
            scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
            good = diff <= atol * scale
            ok &= good
            lines.append(f"{name[:-4]}: shape {list(got.shape)} max abs diff {diff:.3g} "
                         f"{'OK' if good else 'MISMATCH'}")
        return ("" if ok else "mismatch"), lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cases")
    parser.add_argument("--peft-run", default="peft-run")
    parser.add_argument("--atol", type=float, default=1e-4)
    args = parser.parse_args()
    failed = 0
    for name in sorted(os.listdir(args.cases)):
        case = os.path.join(args.cases, name)
        if not os.path.isdir(case):
            continue
        error, lines = run_case(args.peft_run, case, args.atol)
        if error is None:
            print("skipped: no GPU")
            return 2
        print(f"{name}: {'OK' if not error else 'FAILED: ' + error}")
        for line in lines:
            print(f"  {line}")
        failed += bool(error)
    print(f"gpu-check: {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
