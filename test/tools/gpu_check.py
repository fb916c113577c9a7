#!/usr/bin/env python3
"""Runs CUDA artifacts on the GPU and compares them with the CPU artifact's outputs.

    gpu_check.py CASES_DIR [--peft-run PATH] [--atol 1e-4] [--runtime-library SO]

Each CASES_DIR/NAME/ holds artifact/ (peftc --target cuda), inputs/*.npy and
expected/*.npy (what the CPU artifact of the same model and adapters
computed). Every output must match: max |gpu - cpu| <= atol·max(1, max |cpu|)
(fp32 end to end). Each case also runs in three sessions at once (peft-run
--sessions 3: a stream each, the weights shared, every session's outputs the
same). With --runtime-library, each case also runs with its inputs and
outputs in device memory (device_io.py). Prints one line per case and
output; exits 1 on any
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


def compare(out, case, atol):
    """Lines comparing each output in `out` with the case's expected ones, and
    whether all match."""
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
    return lines, ok


def run_case(command, case, atol):
    """Runs `command` + [OUT_DIR] for the case; (None, []) when there is no
    GPU, else (error or "", lines)."""
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(command + [out], capture_output=True, text=True)
        if result.returncode != 0:
            message = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
            message = message[0] if message else f"exit {result.returncode}"
            return None if "no GPU" in message or "no CUDA driver" in message else message, []
        lines, ok = compare(out, case, atol)
        return ("" if ok else "mismatch"), lines


def peft_run_command(peft_run, case, sessions=1):
    inputs = os.path.join(case, "inputs")
    command = [peft_run, os.path.join(case, "artifact"), "--sessions", str(sessions)]
    for name in sorted(os.listdir(inputs)):
        if name.endswith(".npy"):
            command += ["--input", f"{name[:-4]}={os.path.join(inputs, name)}"]
    return command + ["--output-dir"]


def device_io_command(runtime, case):
    return [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "device_io.py"),
            runtime, os.path.join(case, "artifact"), os.path.join(case, "inputs")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cases")
    parser.add_argument("--peft-run", default="peft-run")
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--runtime-library",
                        help="libpeft_runtime.so: also run each case with its inputs and "
                             "outputs in device memory (device_io.py, the C API's entries)")
    args = parser.parse_args()
    failed = 0
    for name in sorted(os.listdir(args.cases)):
        case = os.path.join(args.cases, name)
        if not os.path.isdir(case):
            continue
        runs = [(name, peft_run_command(args.peft_run, case)),
                # Sessions at once, each on its own stream, sharing the weights.
                (name + " (3 sessions)", peft_run_command(args.peft_run, case, sessions=3))]
        if args.runtime_library:
            runs.append((name + " (device memory)", device_io_command(args.runtime_library, case)))
        for label, command in runs:
            error, lines = run_case(command, case, args.atol)
            if error is None:
                print("skipped: no GPU")
                return 2
            print(f"{label}: {'OK' if not error else 'FAILED: ' + error}")
            for line in lines:
                print(f"  {line}")
            failed += bool(error)
    print(f"gpu-check: {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
