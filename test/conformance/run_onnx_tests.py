#!/usr/bin/env python3
"""Runs ONNX's backend tests (Debian's libonnx-testdata) through peftc and
peft-run, and reports each test as pass / mismatch / unsupported / error.

    run_onnx_tests.py [--bin build/bin] [--suite node ...] [--filter REGEX]
                      [--report REPORT.md] [--expect PASSING.txt] [--jobs N]
                      [--write-passing PASSING.txt]

Each test directory holds model.onnx and test_data_set_*/{input,output}_*.pb.
A test passes when every output matches with ONNX's backend tolerances
(rtol 1e-3, atol 1e-7). Models outside the opsets peft-mlir reads (13 to 21)
are counted apart ("opset"). Integer inputs that peftc needs at compile time (a
Reshape's shape, say) are frozen into initializers first, since an AOT
compiler specializes on them; the report counts those tests as "frozen".
With --expect, the run fails when a test listed there no longer passes.
"""
import argparse
import collections
import concurrent.futures
import glob
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

TESTDATA = "/usr/share/libonnx-testdata/data"
RTOL, ATOL = 1e-3, 1e-7
Result = collections.namedtuple("Result", "name suite ops status detail frozen")


def read_tensors(directory, prefix):
    tensors = []
    for path in sorted(glob.glob(os.path.join(directory, f"{prefix}_*.pb")),
                       key=lambda p: int(re.search(r"_(\d+)\.pb$", p).group(1))):
        proto = onnx.TensorProto()
        with open(path, "rb") as f:
            proto.ParseFromString(f.read())
        tensors.append(numpy_helper.to_array(proto))
    return tensors


def freeze_integer_inputs(model, values):
    """Turns the model's integer inputs into initializers holding `values`."""
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    graph = frozen.graph
    initializers = {i.name for i in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    keep = []
    for info, value in zip(real_inputs, values):
        if np.issubdtype(value.dtype, np.integer) or value.dtype == np.bool_:
            graph.initializer.append(numpy_helper.from_array(value, info.name))
        else:
            keep.append(info)
    del graph.input[:]
    graph.input.extend(keep)
    return frozen


def run(cmd, timeout):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return proc.returncode, last


def classify_compile_error(message):
    if re.search(r"opset \d+ is not supported", message):
        return "opset"
    if "unsupported op" in message or "not supported" in message or "must be known" in message:
        return "unsupported"
    return "error"


def run_test(directory, suite, bin_dir):
    """One test's result; a test whose data this runner cannot read (sequence
    or optional values) is reported as unsupported, never raised."""
    name = os.path.basename(directory)
    try:
        return compile_and_compare(directory, suite, bin_dir)
    except Exception as error:  # noqa: BLE001 - one bad test must not stop the run
        model = onnx.load(os.path.join(directory, "model.onnx"), load_external_data=False)
        ops = sorted({n.op_type for n in model.graph.node})
        return Result(name, suite, ops, "unsupported", f"test data: {error}", False)


def compile_and_compare(directory, suite, bin_dir):
    name = os.path.basename(directory)
    model = onnx.load(os.path.join(directory, "model.onnx"))
    ops = sorted({n.op_type for n in model.graph.node})
    data_sets = sorted(glob.glob(os.path.join(directory, "test_data_set_*")))
    if not data_sets:
        return Result(name, suite, ops, "error", "no test data", False)
    with tempfile.TemporaryDirectory() as work:
        inputs = read_tensors(data_sets[0], "input")
        model_path, frozen = os.path.join(directory, "model.onnx"), False
        artifact = os.path.join(work, "artifact")
        try:
            code, message = run([f"{bin_dir}/peftc", model_path, "-o", artifact], 120)
            if code != 0 and "must be known at compile time" in message:
                frozen = True
                model_path = os.path.join(work, "frozen.onnx")
                onnx.save(freeze_integer_inputs(model, inputs), model_path)
                code, message = run([f"{bin_dir}/peftc", model_path, "-o", artifact], 120)
        except subprocess.TimeoutExpired:
            return Result(name, suite, ops, "error", "peftc timed out", frozen)
        if code != 0:
            return Result(name, suite, ops, classify_compile_error(message), message, frozen)
        compiled = onnx.load(model_path)
        initializers = {i.name for i in compiled.graph.initializer}
        input_names = [i.name for i in compiled.graph.input if i.name not in initializers]
        output_names = [o.name for o in compiled.graph.output]
        for data_set in data_sets:
            values = read_tensors(data_set, "input")
            if frozen:
                values = [v for v in values
                          if not (np.issubdtype(v.dtype, np.integer) or v.dtype == np.bool_)]
            args = [f"{bin_dir}/peft-run", artifact, "--output-dir", os.path.join(work, "out")]
            for index, (input_name, value) in enumerate(zip(input_names, values)):
                path = os.path.join(work, f"input{index}.npy")
                np.save(path, value)
                args += ["--input", f"{input_name}={path}"]
            try:
                code, message = run(args, 120)
            except subprocess.TimeoutExpired:
                return Result(name, suite, ops, "error", "peft-run timed out", frozen)
            if code != 0:
                return Result(name, suite, ops, "error", message or f"peft-run exit {code}", frozen)
            for output_name, expected in zip(output_names, read_tensors(data_set, "output")):
                actual = np.load(os.path.join(work, "out", f"{output_name}.npy"))
                if actual.shape != expected.shape:
                    return Result(name, suite, ops, "mismatch",
                                  f"{output_name}: shape {actual.shape} != {expected.shape}", frozen)
                if not np.allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True):
                    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()
                    return Result(name, suite, ops, "mismatch",
                                  f"{output_name}: max abs diff {diff:.3g}", frozen)
    return Result(name, suite, ops, "pass", "", frozen)


def write_report(path, results, suites):
    by_op = collections.defaultdict(collections.Counter)
    for r in results:
        for op in r.ops:
            by_op[op][r.status] += 1
    totals = collections.Counter(r.status for r in results)
    lines = ["# ONNX backend tests through peft-mlir", "",
             f"Suites: {', '.join(suites)} (Debian's libonnx-testdata). Tolerances: rtol {RTOL}, "
             f"atol {ATOL}. Reproduce: `/usr/bin/python3 test/conformance/run_onnx_tests.py "
             f"--report docs/conformance.md`.", "",
             f"Totals: {len(results)} tests, {totals['pass']} pass, {totals['mismatch']} mismatch, "
             f"{totals['unsupported']} unsupported, {totals['error']} error, "
             f"{totals['opset']} at an opset outside 13-21; "
             f"{sum(r.frozen for r in results)} passing or not with integer inputs frozen.", "",
             "Each test counts for every op its model uses, so an op's row also counts tests",
             "that fail on another op (the expanded functions of loss ops, say).", "",
             "| op | tests | pass | mismatch | unsupported | error | opset < 13 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for op in sorted(by_op):
        c = by_op[op]
        lines.append(f"| {op} | {sum(c.values())} | {c['pass']} | {c['mismatch']} | "
                     f"{c['unsupported']} | {c['error']} | {c['opset']} |")
    lines += ["", "## Tests that do not pass (opset < 13 left out)", "",
              "| test | status | detail |", "| --- | --- | --- |"]
    for r in sorted(results, key=lambda r: (r.suite, r.name)):
        if r.status not in ("pass", "opset"):
            detail = r.detail.replace("|", "\\|")[:200]
            lines.append(f"| {r.suite}/{r.name} | {r.status} | {detail} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--testdata", default=TESTDATA)
    parser.add_argument("--suite", action="append", default=None)
    parser.add_argument("--filter", default=".*")
    parser.add_argument("--report")
    parser.add_argument("--expect")
    parser.add_argument("--write-passing")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    suites = args.suite or ["node"]
    tests = [(d, s) for s in suites
             for d in sorted(glob.glob(os.path.join(args.testdata, s, "*")))
             if os.path.isfile(os.path.join(d, "model.onnx"))
             and re.search(args.filter, os.path.basename(d))]
    if args.expect:
        with open(args.expect) as f:
            expected = {line.strip() for line in f if line.strip() and not line.startswith("#")}
        tests = [(d, s) for d, s in tests if f"{s}/{os.path.basename(d)}" in expected]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda t: run_test(t[0], t[1], args.bin), tests))
    totals = collections.Counter(r.status for r in results)
    for r in results:
        if r.status != "pass":
            print(f"{r.status.upper()}: {r.suite}/{r.name}: {r.detail}")
    if args.write_passing:
        with open(args.write_passing, "w") as f:
            f.write("# ONNX backend tests that pass; test/conformance/onnx-node-tests.test\n"
                    "# fails when one of them stops passing. Regenerate with --write-passing.\n")
            f.writelines(f"{r.suite}/{r.name}\n" for r in results if r.status == "pass")
    if args.report:
        write_report(args.report, results, suites)
    print(f"{totals['pass']} passed, {len(results) - totals['pass']} failed")
    if args.expect and totals["pass"] != len(results):
        sys.exit(1)


if __name__ == "__main__":
    main()
