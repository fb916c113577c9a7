#!/usr/bin/env python3
"""GEMM benchmark: one linear layer, peft-mlir against onnxruntime.

    python3 bench/gemm_bench.py [--threads N ...] [--tiny] [--shapes GLOB,...]
                                [--rounds R] [--work DIR] [--peak GFLOPS]

For each shape MxKxN it writes an ONNX model of Y = X·Wᵀ + b as torch exports
nn.Linear on a 3-D input (MatMul(X, Wt) by a constant initializer Wt = Wᵀ
stored [K, N], then Add(bias, ...)), X static [M, K], random weights (fixed
seed), the input as .npy and numpy's answer in float64. A shape
MxKxN+loraR adds a LoRA adapter of rank R (Hugging Face PEFT format) on
that layer: ours compiles it unmerged (--mode fuse, so its cost is at run
time), onnxruntime runs the same LoRA branch as torch exports PEFT's
unmerged forward (X·Aᵀ·Bᵀ·scale added).

Each model is compiled with peftc, then `peft-run --bench N` and an
onnxruntime InferenceSession (sequential execution, all graph
optimizations, intra_op_num_threads as --threads) alternate for --rounds
rounds; each side's fastest run (and best median) is reported as GFLOP/s
(2·M·K·N flops, plus 2·M·R·(K+N) for LoRA). Our output, and
onnxruntime's, must match numpy's within 1e-4 of the output's largest
magnitude, else the run fails. A shape that does not compile is reported
and skipped. Exit status 1 on any failure.

Needs numpy and onnxruntime (the pyenv `python3`); the models are written
with onnx.helper, by this interpreter if it has onnx, else by
--onnx-python (default /usr/bin/python3) running this script's
--write-models mode.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# BERT-base's three linear shapes at 128 tokens, decode-style GEMVs/GEMMs of
# a 4096-wide layer, one big square GEMM, and LoRA r=16 on the 4096 layer
# at 32 and 256 rows, beside the layer alone.
FULL_SHAPES = ["128x768x768", "128x768x3072", "128x3072x768",
               "1x4096x4096", "8x4096x4096", "32x4096x4096", "2048x2048x2048",
               "32x4096x4096+lora16", "256x4096x4096", "256x4096x4096+lora16"]
# CI: partial tiles (sizes not multiples of the register tiles), a GEMV, a
# LoRA; seconds in all.
TINY_SHAPES = ["16x64x48", "1x128x96", "70x200x176", "9x128x128+lora4"]
SHAPE = re.compile(r"^(\d+)x(\d+)x(\d+)(?:\+lora(\d+))?$")
SEED = 0
TOLERANCE = 1e-4  # of the output's largest magnitude


def parse_shape(name):
    match = SHAPE.match(name)
    if not match:
        raise SystemExit(f"bad shape '{name}': want MxKxN or MxKxN+loraR")
    m, k, n, r = match.groups()
    return int(m), int(k), int(n), int(r) if r else 0


def flops(name):
    m, k, n, r = parse_shape(name)
    return 2.0 * m * k * n + 2.0 * m * r * (k + n)


# --- Model writing (needs onnx; runs in whichever interpreter has it) --------

def lora_config(r, alpha, targets):
    """adapter_config.json as PEFT writes it for a LoRA."""
    return {"alpha_pattern": {}, "base_model_name_or_path": None, "bias": "none",
            "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True,
            "layers_pattern": None, "layers_to_transform": None, "lora_alpha": alpha,
            "lora_dropout": 0.0, "modules_to_save": None, "peft_type": "LORA", "r": r,
            "rank_pattern": {}, "revision": None, "target_modules": targets,
            "task_type": None, "use_dora": False, "use_rslora": False}


def write_safetensors(path, tensors):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, value in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(value.shape),
                        "data_offsets": [offset, offset + value.nbytes]}
        offset += value.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for value in tensors.values():
            f.write(np.ascontiguousarray(value, dtype="<f4").tobytes())


def write_model(directory, name):
    """model.onnx (and with LoRA adapter/ and model_lora.onnx, the unmerged
    forward for onnxruntime), inputs/x.npy, expected/y.npy."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m, k, n, r = parse_shape(name)
    rng = np.random.default_rng([SEED, m, k, n, r])
    w = (rng.standard_normal((n, k), dtype=np.float32) / np.sqrt(k)).astype(np.float32)
    bias = rng.standard_normal(n, dtype=np.float32)
    x = rng.standard_normal((m, k), dtype=np.float32)
    wt = np.ascontiguousarray(w.T)
    expected = x.astype(np.float64) @ wt.astype(np.float64) + bias

    def linear_graph(lora):
        # Names as torch.onnx.export gives them for a module "fc".
        nodes = [helper.make_node("MatMul", ["x", "onnx::MatMul_3"], ["/fc/MatMul_output_0"],
                                  name="/fc/MatMul"),
                 helper.make_node("Add", ["fc.bias", "/fc/MatMul_output_0"],
                                  ["/fc/Add_output_0" if lora else "y"], name="/fc/Add")]
        inits = [numpy_helper.from_array(wt, "onnx::MatMul_3"),
                 numpy_helper.from_array(bias, "fc.bias")]
        if lora:
            a_t, b_t, scale = lora
            nodes += [
                helper.make_node("MatMul", ["x", "onnx::MatMul_4"], ["/fc/lora_A/MatMul_output_0"],
                                 name="/fc/lora_A/MatMul"),
                helper.make_node("MatMul", ["/fc/lora_A/MatMul_output_0", "onnx::MatMul_5"],
                                 ["/fc/lora_B/MatMul_output_0"], name="/fc/lora_B/MatMul"),
                helper.make_node("Mul", ["/fc/lora_B/MatMul_output_0", "/fc/Constant_output_0"],
                                 ["/fc/Mul_output_0"], name="/fc/Mul"),
                helper.make_node("Add", ["/fc/Add_output_0", "/fc/Mul_output_0"], ["y"],
                                 name="/fc/Add_1")]
            inits += [numpy_helper.from_array(a_t, "onnx::MatMul_4"),
                      numpy_helper.from_array(b_t, "onnx::MatMul_5"),
                      numpy_helper.from_array(np.array(scale, np.float32),
                                              "/fc/Constant_output_0")]
        graph = helper.make_graph(
            nodes, "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="pytorch")
        onnx.checker.check_model(model)
        return model

    os.makedirs(os.path.join(directory, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(directory, "expected"), exist_ok=True)
    onnx.save(linear_graph(None), os.path.join(directory, "model.onnx"))
    if r:
        alpha = 2 * r
        scale = alpha / r
        a = (rng.standard_normal((r, k), dtype=np.float32) / np.sqrt(k)).astype(np.float32)
        b = (rng.standard_normal((n, r), dtype=np.float32) / np.sqrt(r) * 0.25).astype(np.float32)
        adapter = os.path.join(directory, "adapter")
        os.makedirs(adapter, exist_ok=True)
        with open(os.path.join(adapter, "adapter_config.json"), "w") as f:
            json.dump(lora_config(r, alpha, ["fc"]), f, indent=2)
        write_safetensors(os.path.join(adapter, "adapter_model.safetensors"),
                          {"base_model.model.fc.lora_A.weight": a,
                           "base_model.model.fc.lora_B.weight": b})
        onnx.save(linear_graph((np.ascontiguousarray(a.T), np.ascontiguousarray(b.T), scale)),
                  os.path.join(directory, "model_lora.onnx"))
        expected += scale * ((x.astype(np.float64) @ a.T.astype(np.float64)) @ b.T.astype(np.float64))
    np.save(os.path.join(directory, "inputs", "x.npy"), x)
    np.save(os.path.join(directory, "expected", "y.npy"), expected)
    with open(os.path.join(directory, "stamp"), "w") as f:
        f.write(stamp())


def stamp():
    """What a model directory was written by: this script's contents."""
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_models(jobs, onnx_python):
    """Writes the models of `jobs` [(directory, shape)] that are missing or
    were written by another version of this script."""
    stale = []
    for directory, name in jobs:
        try:
            with open(os.path.join(directory, "stamp")) as f:
                if f.read() == stamp():
                    continue
        except OSError:
            pass
        shutil.rmtree(directory, ignore_errors=True)
        stale.append((directory, name))
    if not stale:
        return
    try:
        import onnx  # noqa: F401
        for directory, name in stale:
            write_model(directory, name)
    except ImportError:
        subprocess.run([onnx_python, os.path.abspath(__file__), "--write-models",
                        json.dumps(stale)], check=True)


# --- Measurement -------------------------------------------------------------

def peft_run_threads_flag(peft_run):
    """Whether peft-run has its own --threads (an option with a description;
    LLVM's global options can list a bare --threads=<int> too)."""
    help_text = subprocess.run([peft_run, "--help"], capture_output=True, text=True).stdout
    return re.search(r"^\s*--threads(=<\w+>)?\s+- \S", help_text, re.M) is not None


def compile_model(peftc, directory, name, artifact):
    command = [peftc, os.path.join(directory, "model.onnx"), "-o", artifact]
    if parse_shape(name)[3]:
        command += ["--adapter", os.path.join(directory, "adapter"), "--mode", "fuse"]
    shutil.rmtree(artifact, ignore_errors=True)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        lines = [l for l in result.stderr.splitlines() if "error" in l.lower()]
        lines = lines or result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        return None, lines[0].strip()
    return seconds, None


def run_ours(peft_run, artifact, x_path, out_dir, runs, threads, threads_flag):
    command = [peft_run, artifact, "--input", f"x={x_path}", "--output-dir", out_dir,
               "--bench", str(runs)]
    if threads_flag:
        command += ["--threads", str(threads)]
    env = dict(os.environ, PEFT_NUM_THREADS=str(threads))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"peft-run failed: {result.stderr.strip()}")
    match = re.search(r"min ([0-9.]+) ms, median ([0-9.]+) ms", result.stdout)
    if not match:
        raise RuntimeError(f"no timing in peft-run's output: {result.stdout.strip()}")
    return float(match.group(1)), float(match.group(2))


def ort_session(model, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run_ort(session, x, runs):
    """(min, median) ms of `runs` runs after one warm-up run, and the output."""
    y = session.run(["y"], {"x": x})[0]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(["y"], {"x": x})
        times.append((time.perf_counter() - start) * 1e3)
    return min(times), statistics.median(times), y


def check(label, name, actual, expected):
    """Max |actual - expected| within TOLERANCE of max |expected|, or an error."""
    if actual.shape != expected.shape:
        return f"{name}: {label} shape {list(actual.shape)}, numpy's {list(expected.shape)}"
    error = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    scale = float(np.max(np.abs(expected)))
    if not np.isfinite(error) or error > TOLERANCE * scale:
        return (f"{name}: {label} differs from numpy by {error:.3g} "
                f"(max |y| {scale:.3g}, tolerance {TOLERANCE * scale:.3g})")
    return None


def bench_shape(args, name, threads, threads_flag, peft_run, peftc):
    """One table row (a dict) for `name` at `threads`."""
    directory = os.path.join(args.work, "models", name)
    artifact = os.path.join(args.work, "artifacts", name)
    row = {"shape": name, "threads": threads}
    if name not in args.compiled:  # Once a shape, for every thread count.
        args.compiled[name] = compile_model(peftc, directory, name, artifact)
    seconds, error = args.compiled[name]
    row["compile_s"] = seconds
    if error:
        row["error"] = f"compile failed: {error}"
        return row

    x_path = os.path.join(directory, "inputs", "x.npy")
    x = np.load(x_path)
    expected = np.load(os.path.join(directory, "expected", "y.npy"))
    lora = parse_shape(name)[3]
    session = ort_session(os.path.join(directory, "model_lora.onnx" if lora else "model.onnx"),
                          threads)
    # Runs per round: about --seconds of timed work per side and round.
    start = time.perf_counter()
    session.run(["y"], {"x": x})
    once = time.perf_counter() - start
    runs = max(3, min(args.max_runs, int(args.seconds / max(once, 1e-6))))
    out_dir = os.path.join(args.work, "out", name)
    ours, ort_times, problems = [], [], []
    for round_ in range(args.rounds):
        ours.append(run_ours(peft_run, artifact, x_path, out_dir, runs, threads, threads_flag))
        if round_ == 0:
            problems.append(check("ours", name, np.load(os.path.join(out_dir, "y.npy")), expected))
        fastest, median, y = run_ort(session, x, runs)
        ort_times.append((fastest, median))
        if round_ == 0:
            problems.append(check("onnxruntime", name, y, expected))
    problems = [p for p in problems if p]
    if problems:
        row["error"] = "; ".join(problems)
    row.update(runs=runs,
               ours_min=min(t[0] for t in ours), ours_median=min(t[1] for t in ours),
               ort_min=min(t[0] for t in ort_times), ort_median=min(t[1] for t in ort_times))
    return row


def print_table(rows, peak):
    header = (f"{'shape':<22} {'thr':>3} {'runs':>4} {'ours ms':>9} {'(median)':>9} "
              f"{'ORT ms':>9} {'(median)':>9} {'GFLOP/s ours':>12} {'GFLOP/s ORT':>11} "
              f"{'ours/ORT':>8}" + (f" {'% peak':>6}" if peak else ""))
    print(header)
    print("-" * len(header))
    for row in rows:
        label = f"{row['shape']:<22} {row['threads']:>3}"
        if "ours_min" not in row:
            print(f"{label}  {row['error']}")
            continue
        g_ours = flops(row["shape"]) / row["ours_min"] / 1e6
        g_ort = flops(row["shape"]) / row["ort_min"] / 1e6
        line = (f"{label} {row['runs']:>4} {row['ours_min']:>9.3f} {row['ours_median']:>9.3f} "
                f"{row['ort_min']:>9.3f} {row['ort_median']:>9.3f} {g_ours:>12.1f} {g_ort:>11.1f} "
                f"{row['ours_min'] / row['ort_min']:>8.2f}")
        if peak:
            line += f" {100 * g_ours / (peak * row['threads']):>5.0f}%"
        print(line)
        if "error" in row:
            print(f"{'':<27}FAILED: {row['error']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="thread counts (onnxruntime's intra_op_num_threads; ours gets "
                             "PEFT_NUM_THREADS, and --threads if peft-run has it)")
    parser.add_argument("--tiny", action="store_true", help="a few small shapes, 1 round (CI)")
    parser.add_argument("--shapes", help="comma-separated globs over the shape names "
                                         "(or new shapes MxKxN[+loraR])")
    parser.add_argument("--rounds", type=int, help="alternations of ours and onnxruntime "
                                                   "(default 5, --tiny 1)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="timed work per side and round (default 0.4, --tiny 0.05)")
    parser.add_argument("--max-runs", type=int, default=500)
    parser.add_argument("--work", default=None,
                        help="models and artifacts (default /tmp/peft-gemm-bench[-tiny])")
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    parser.add_argument("--onnx-python", default="/usr/bin/python3",
                        help="an interpreter with onnx, if this one has none")
    parser.add_argument("--peak", type=float, help="single-core GFLOP/s (bench/fma_peak.c) "
                                                   "for a %% of peak column")
    parser.add_argument("--write-models", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_models:
        for directory, name in json.loads(args.write_models):
            write_model(directory, name)
        return 0

    shapes = TINY_SHAPES if args.tiny else FULL_SHAPES
    if args.shapes:
        patterns = [p for p in args.shapes.split(",") if p]
        chosen = [s for s in shapes if any(fnmatch.fnmatchcase(s, p) for p in patterns)]
        chosen += [p for p in patterns if SHAPE.match(p) and p not in chosen]
        shapes = chosen
        if not shapes:
            raise SystemExit(f"--shapes {args.shapes} selects nothing")
    for name in shapes:
        parse_shape(name)
    args.rounds = args.rounds or (1 if args.tiny else 5)
    args.seconds = args.seconds if args.seconds is not None else (0.05 if args.tiny else 0.4)
    args.work = args.work or ("/tmp/peft-gemm-bench-tiny" if args.tiny else "/tmp/peft-gemm-bench")
    args.compiled = {}
    peftc, peft_run = os.path.join(args.bin, "peftc"), os.path.join(args.bin, "peft-run")
    for tool in (peftc, peft_run):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} is missing: build first (bash scripts/setup.sh)")

    write_models([(os.path.join(args.work, "models", s), s) for s in shapes], args.onnx_python)
    threads_flag = peft_run_threads_flag(peft_run)
    import onnxruntime
    print(f"onnxruntime {onnxruntime.__version__}, numpy {np.__version__}; ours: "
          f"{'--threads' if threads_flag else 'PEFT_NUM_THREADS'}; "
          f"{args.rounds} rounds, fastest run (best median) of each side")
    rows = []
    for threads in args.threads:
        for name in shapes:
            try:
                row = bench_shape(args, name, threads, threads_flag, peft_run, peftc)
            except RuntimeError as error:
                row = {"shape": name, "threads": threads, "error": str(error)}
            rows.append(row)
            compile_s = row.get("compile_s") if threads == args.threads[0] else None
            print(f"  {name}, {threads} thread(s): "
                  + "; ".join(([f"compiled in {compile_s:.1f} s"] if compile_s else [])
                              + ([row["error"]] if "error" in row else ["done"])),
                  file=sys.stderr, flush=True)
    print_table(rows, args.peak)
    failed = [r for r in rows if "error" in r]
    if failed:
        print(f"FAILED: {len(failed)} of {len(rows)}: "
              + ", ".join(f"{r['shape']} ({r['threads']} thr)" for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
