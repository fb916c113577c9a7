#!/usr/bin/env python3
"""Runs ONNX's backend tests (Debian's libonnx-testdata) through peftc and
peft-run, and reports each test as pass / mismatch / unsupported / error /
invalid (test data that contradicts the model's declared shapes).

    run_onnx_tests.py [--bin build/bin] [--suite node ...] [--filter REGEX]
                      [--report REPORT.md] [--expect PASSING.txt] [--jobs N]
                      [--write-passing PASSING.txt]

Each test directory holds model.onnx and test_data_set_*/{input,output}_*.pb.
A test passes when every output matches with ONNX's backend tolerances
(rtol 1e-3, atol 1e-7). Models at an opset below the ones peft-mlir reads
(13 to 21) are first upgraded to opset 13 with ONNX's version converter, as a
user would; those it cannot convert are counted apart ("opset"). Inputs that peftc needs at compile time (a
Reshape's shape, Resize's scales) are frozen into initializers, one by one as
peftc names them, since an AOT compiler specializes on them; the report
counts those tests as "frozen".
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
import onnx.version_converter
from onnx import numpy_helper

TESTDATA = "/usr/share/libonnx-testdata/data"
RTOL, ATOL = 1e-3, 1e-7
MIN_OPSET = 13
Result = collections.namedtuple("Result", "name suite ops status detail frozen upgraded")


def read_tensors(directory, prefix):
    tensors = []
    for path in sorted(glob.glob(os.path.join(directory, f"{prefix}_*.pb")),
                       key=lambda p: int(re.search(r"_(\d+)\.pb$", p).group(1))):
        proto = onnx.TensorProto()
        with open(path, "rb") as f:
            proto.ParseFromString(f.read())
        # ONNX 1.12's numpy_helper returns bfloat16 bit patterns unshaped.
        tensors.append(numpy_helper.to_array(proto).reshape(tuple(proto.dims)))
    return tensors


def freeze_inputs(model, values, names):
    """Turns the model's inputs in `names` into initializers holding `values`."""
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    graph = frozen.graph
    initializers = {i.name for i in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    keep = []
    for info, value in zip(real_inputs, values):
        if info.name in names:
            graph.initializer.append(numpy_helper.from_array(value, info.name))
        else:
            keep.append(info)
    del graph.input[:]
    graph.input.extend(keep)
    return frozen


def input_to_freeze(message, model):
    """The graph input peftc asked to know at compile time, if any."""
    match = re.search(r"input '([^']+)' must be (known at compile time|a constant)", message)
    names = {i.name for i in model.graph.input}
    return match.group(1) if match and match.group(1) in names else None


def default_opset(model):
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def upgrade(model):
    """The model at MIN_OPSET when it is older, via ONNX's version converter;
    raises when the converter cannot."""
    if default_opset(model) >= MIN_OPSET:
        return model, False
    return onnx.version_converter.convert_version(model, MIN_OPSET), True


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
        return Result(name, suite, ops, "unsupported", f"test data: {error}", False, False)


def compile_and_compare(directory, suite, bin_dir):
    name = os.path.basename(directory)
    model = onnx.load(os.path.join(directory, "model.onnx"))
    ops = sorted({n.op_type for n in model.graph.node})
    data_sets = sorted(glob.glob(os.path.join(directory, "test_data_set_*")))
    if not data_sets:
        return Result(name, suite, ops, "error", "no test data", False, False)
    try:
        model, upgraded = upgrade(model)
    except Exception as error:  # noqa: BLE001 - the converter raises many kinds
        detail = f"opset {default_opset(model)}; version converter: {str(error).splitlines()[0]}"
        return Result(name, suite, ops, "opset", detail, False, False)
    with tempfile.TemporaryDirectory() as work:
        inputs = read_tensors(data_sets[0], "input")
        model_path = os.path.join(directory, "model.onnx")
        if upgraded:
            model_path = os.path.join(work, "upgraded.onnx")
            onnx.save(model, model_path)
        artifact = os.path.join(work, "artifact")
        frozen_names = set()

        def finish(status, detail):
            return Result(name, suite, ops, status, detail, bool(frozen_names), upgraded)

        try:
            code, message = run([f"{bin_dir}/peftc", model_path, "-o", artifact], 120)
            while code != 0 and input_to_freeze(message, model) not in (None, *frozen_names):
                frozen_names.add(input_to_freeze(message, model))
                model_path = os.path.join(work, "frozen.onnx")
                onnx.save(freeze_inputs(model, inputs, frozen_names), model_path)
                code, message = run([f"{bin_dir}/peftc", model_path, "-o", artifact], 120)
        except subprocess.TimeoutExpired:
            return finish("error", "peftc timed out")
        if code != 0:
            return finish(classify_compile_error(message), message)
        initializers = {i.name for i in model.graph.initializer}
        input_names = [i.name for i in model.graph.input if i.name not in initializers]
        output_names = [o.name for o in model.graph.output]
        declared = {i.name: [d.dim_value if d.HasField("dim_value") else None
                             for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        for data_set in data_sets:
            fed = [(n, v) for n, v in zip(input_names, read_tensors(data_set, "input"))
                   if n not in frozen_names]
            for input_name, value in fed:
                dims = declared[input_name]
                if len(dims) != value.ndim or any(d not in (None, s) for d, s in zip(dims, value.shape)):
                    return finish("invalid", f"test data gives '{input_name}' shape "
                                             f"{list(value.shape)}, the model declares {dims}")
            args = [f"{bin_dir}/peft-run", artifact, "--output-dir", os.path.join(work, "out")]
            for index, (input_name, value) in enumerate(fed):
                path = os.path.join(work, f"input{index}.npy")
                np.save(path, value)
                args += ["--input", f"{input_name}={path}"]
            try:
                code, message = run(args, 120)
            except subprocess.TimeoutExpired:
                return finish("error", "peft-run timed out")
            if code != 0:
                return finish("error", message or f"peft-run exit {code}")
            for output_name, expected in zip(output_names, read_tensors(data_set, "output")):
                actual = np.load(os.path.join(work, "out", f"{output_name}.npy"))
                if actual.shape != expected.shape:
                    return finish("mismatch",
                                  f"{output_name}: shape {actual.shape} != {expected.shape}")
                if not np.allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True):
                    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()
                    return finish("mismatch",
                                  f"{output_name}: max abs diff {diff:.3g}")
    return finish("pass", "")


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
             f"{totals['invalid']} with test data that contradicts the model, "
             f"{totals['opset']} at an opset the version converter cannot bring into 13-21. "
             f"{sum(r.upgraded for r in results)} tests were upgraded from an older opset "
             f"({sum(r.upgraded and r.status == 'pass' for r in results)} of them pass); "
             f"{sum(r.frozen for r in results)} had inputs frozen.", "",
             "Each test counts for every op its model uses, so an op's row also counts tests",
             "that fail on another op (the expanded functions of loss ops, say).", "",
             "| op | tests | pass | mismatch | unsupported | error | invalid | opset |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for op in sorted(by_op):
        c = by_op[op]
        lines.append(f"| {op} | {sum(c.values())} | {c['pass']} | {c['mismatch']} | "
                     f"{c['unsupported']} | {c['error']} | {c['invalid']} | {c['opset']} |")
    lines += ["", "## Tests that do not pass", "",
              "| test | status | detail |", "| --- | --- | --- |"]
    for r in sorted(results, key=lambda r: (r.suite, r.name)):
        if r.status != "pass":
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
