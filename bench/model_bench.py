#!/usr/bin/env python3
"""A whole model with its adapter merged: peft-mlir against onnxruntime.

    python3 bench/model_bench.py MODEL_DIR [--threads 1 2] [--rounds 4] [--work DIR]

MODEL_DIR holds model.onnx, adapter/ (Hugging Face PEFT) and inputs/*.npy (as
bench/generate_bench_models.py writes them). peftc compiles the model with the
adapter merged, and writes the same merged model as ONNX (--emit onnx), which
onnxruntime runs: the same work on both sides. For each thread count the two
alternate `--rounds` times; each side's fastest run and best median are kept,
and the ratio is ours / onnxruntime (below 1: we are faster). Outputs are
compared with each other (relative 1e-3 of the largest magnitude). Prints the
compile time and peak RSS of peftc too.
"""
import argparse
import glob
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def compile_artifact(bin_dir, model_dir, out, extra):
    command = [os.path.join(bin_dir, "peftc"), os.path.join(model_dir, "model.onnx"),
               "--adapter", os.path.join(model_dir, "adapter"), "-o", out] + extra
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"model_bench: {' '.join(command)} failed: {result.stderr.strip()}")
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    return seconds, peak_kb / 1024


def run_ours(bin_dir, artifact, inputs, out_dir, runs, threads):
    command = [os.path.join(bin_dir, "peft-run"), artifact, "--output-dir", out_dir,
               "--bench", str(runs), "--threads", str(threads)]
    for name, path in inputs.items():
        command += ["--input", f"{name}={path}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"model_bench: peft-run failed: {result.stderr.strip()}")
    match = re.search(r"min ([0-9.]+) ms, median ([0-9.]+) ms", result.stdout)
    return float(match.group(1)), float(match.group(2))


def run_ort(session, feeds, runs):
    outputs = session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1e3)
    return min(times), statistics.median(times), outputs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side and round")
    parser.add_argument("--work", default="/tmp/peft-model-bench")
    parser.add_argument("--bin", default="build/bin")
    args = parser.parse_args()

    import onnxruntime as ort

    name = os.path.basename(os.path.normpath(args.model))
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    artifact, merged_onnx = os.path.join(work, "merged"), os.path.join(work, "merged.onnx")
    seconds, peak_mb = compile_artifact(args.bin, args.model, artifact, [])
    print(f"{name}: compiled in {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")
    compile_artifact(args.bin, args.model, merged_onnx, ["--emit", "onnx"])
    inputs = {os.path.basename(p)[:-4]: p
              for p in sorted(glob.glob(os.path.join(args.model, "inputs", "*.npy")))}
    feeds = {name: np.load(path) for name, path in inputs.items()}

    print(f"{'threads':>7} {'ours ms':>9} {'(median)':>9} {'ORT ms':>9} {'(median)':>9} {'ours/ORT':>8}")
    for threads in args.threads:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(merged_onnx, options, providers=["CPUExecutionProvider"])
        ours, theirs = [float("inf")] * 2, [float("inf")] * 2
        out_dir = os.path.join(work, f"out{threads}")
        for _ in range(args.rounds):
            ours = [min(a, b) for a, b in zip(ours, run_ours(args.bin, artifact, inputs, out_dir,
                                                             args.runs, threads))]
            fastest, median, outputs = run_ort(session, feeds, args.runs)
            theirs = [min(theirs[0], fastest), min(theirs[1], median)]
        for meta, expected in zip(session.get_outputs(), outputs):
            actual = np.load(os.path.join(out_dir, meta.name + ".npy"))
            error = np.max(np.abs(actual.astype(np.float64) - expected)) / max(np.max(np.abs(expected)), 1e-30)
            if actual.shape != expected.shape or error > 1e-3:
                sys.exit(f"model_bench: output {meta.name} differs from onnxruntime's "
                         f"(relative {error:.2e})")
        print(f"{threads:>7} {ours[0]:>9.2f} {ours[1]:>9.2f} {theirs[0]:>9.2f} {theirs[1]:>9.2f} "
              f"{ours[0] / theirs[0]:>8.2f}")


if __name__ == "__main__":
    main()
