#!/usr/bin/env python3
"""Runs ONNX's backend tests (Debian's libonnx-testdata) through peftc and
peft-run, and reports each test as pass / mismatch / unsupported / error /
invalid (test data that contradicts the model's declared shapes) / opset
(a model peftc cannot bring to an opset it reads).

    run_onnx_tests.py [--bin build/bin] [--suite node ...] [--filter REGEX]
                      [--report REPORT.md] [--expect PASSING.txt] [--jobs N]
                      [--write-passing PASSING.txt]

Each test directory holds model.onnx and test_data_set_*/{input,output}_*.pb.
A test passes when every output matches with ONNX's backend tolerances
(rtol 1e-3, atol 1e-7). Every model goes to peftc unchanged: peftc upgrades
one below opset 13 with ONNX's version converter (and says so in a remark),
and names the reason when the converter cannot; the report counts both apart.

Inputs that peftc needs at compile time (Resize's scales, a Reshape's shape,
Unsqueeze's axes) are frozen into initializers, one by one as peftc names
them, since an AOT compiler specializes on them; the report lists the tests
that pass only that way, with the inputs frozen.

PASSING.txt lists the passing tests, one a line, each with the inputs it
needed frozen, if any:

    node/test_abs
    node/test_resize_upsample_scales_linear  frozen=scales

With --expect PASSING.txt only the listed tests run, and the run fails
(exit 1) when one is missing from the test data, no longer passes, or needs
an input frozen that its line does not record; one that needs fewer is
reported as IMPROVED (tighten the list with --write-passing). The closing
line reads "P of L listed tests pass (F with inputs frozen), N failed".
--write-passing rewrites PASSING.txt from this run; with --filter it
replaces only the lines of the tests that ran.
"""
import argparse
import collections
import concurrent.futures
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

TESTDATA = "/usr/share/libonnx-testdata/data"
RTOL, ATOL = 1e-3, 1e-7
MIN_OPSET = 13
# frozen: the graph inputs frozen, sorted (empty when none); inputs: the
# model's graph inputs; opset: the model's default-domain opset (0 when it
# imports none); imports: every opset it imports, as text; upgraded: peftc
# upgraded the model (its remark, or an old opset when peftc failed on
# something else after upgrading it).
Result = collections.namedtuple(
    "Result", "name suite ops status detail frozen inputs opset imports upgraded")
UPGRADE_REMARK = re.compile(r"remark: .*upgraded from opset (\d+) to \d+ with ONNX's version converter")
UNCONVERTIBLE = re.compile(r"opset (\d+) cannot be upgraded to \d+ by ONNX's version converter: (.*)")


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


def graph_inputs(model):
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def freeze_inputs(model, values, names):
    """Turns the model's inputs in `names` into initializers holding `values`."""
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    graph = frozen.graph
    keep = []
    for info, value in zip(graph_inputs(frozen), values):
        if info.name in names:
            graph.initializer.append(numpy_helper.from_array(value, info.name))
        else:
            keep.append(info)
    initializers = {i.name for i in graph.initializer}
    # Before IR version 4 an initializer must also be a graph input.
    kept = [i for i in graph.input if i.name in initializers or i in keep]
    del graph.input[:]
    graph.input.extend(kept if model.ir_version < 4 else keep)
    return frozen


def input_to_freeze(message, model):
    """The graph input peftc asked to know at compile time, if any."""
    match = re.search(r"input '([^']+)' must be (known at compile time|a constant)", message)
    names = {i.name for i in graph_inputs(model)}
    return match.group(1) if match and match.group(1) in names else None


def default_opset(model):
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def run(cmd, timeout):
    """The exit status, a one-line summary of what went wrong (empty when
    nothing) and stderr's lines."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except OSError as error:  # a tool missing or being rebuilt
        return 127, f"cannot run {cmd[0]}: {error.strerror}", []
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if ": error: " in line or line.startswith("error:")]
    if errors:
        last = errors[-1]
    elif proc.returncode < 0:
        last = f"{os.path.basename(cmd[0])} killed by {signal.Signals(-proc.returncode).name}"
    else:
        last = (lines or [""])[-1]
    return proc.returncode, last, lines


def classify_compile_error(message):
    if (UNCONVERTIBLE.search(message) or re.search(r"opset \d+ is not supported", message)
            or "imports no opset" in message):
        return "opset"
    if ("unsupported op" in message or "not supported" in message or "must be known" in message
            or "is not a tensor" in message):
        return "unsupported"
    return "error"


def run_test(directory, suite, bin_dir):
    """One test's result; a test whose data this runner cannot read (sequence
    or optional values) is reported as unsupported, never raised."""
    model_path = os.path.join(directory, "model.onnx")
    model = onnx.load(model_path)
    state = {"frozen": set(), "upgraded": False}

    def finish(status, detail):
        if status != "pass" and state["frozen"]:
            detail += f" (inputs frozen: {', '.join(sorted(state['frozen']))})"
        return Result(os.path.basename(directory), suite,
                      sorted({n.op_type for n in model.graph.node}), status, detail,
                      tuple(sorted(state["frozen"])), [i.name for i in graph_inputs(model)],
                      default_opset(model),
                      ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import),
                      state["upgraded"])

    try:
        with tempfile.TemporaryDirectory() as work:
            return compile_and_compare(directory, model, bin_dir, work, state, finish)
    except Exception as error:  # noqa: BLE001 - one bad test must not stop the run
        return finish("unsupported", f"test data: {error}")


def compile_and_compare(directory, model, bin_dir, work, state, finish):
    model_path = os.path.join(directory, "model.onnx")
    opset = default_opset(model)
    input_names = [i.name for i in graph_inputs(model)]
    frozen_names = state["frozen"]
    data_sets = sorted(glob.glob(os.path.join(directory, "test_data_set_*")))
    if not data_sets:
        return finish("error", "no test data")
    artifact = os.path.join(work, "artifact")
    try:
        code, message, lines = run([f"{bin_dir}/peftc", model_path, "-o", artifact], 120)
        while code != 0 and input_to_freeze(message, model) not in (None, *frozen_names):
            frozen_names.add(input_to_freeze(message, model))
            model_path = os.path.join(work, "frozen.onnx")
            inputs = read_tensors(data_sets[0], "input")
            onnx.save(freeze_inputs(model, inputs, frozen_names), model_path)
            code, message, lines = run([f"{bin_dir}/peftc", model_path, "-o", artifact], 120)
    except subprocess.TimeoutExpired:
        return finish("error", "peftc timed out")
    # Messages name the model, not this run's temporary copy.
    message = message.replace(os.path.join(work, "frozen.onnx"), os.path.join(directory, "model.onnx"))
    # peftc says it upgraded only once the model imports; an older model it
    # failed on later was upgraded too.
    state["upgraded"] = any(UPGRADE_REMARK.search(line) for line in lines) or (
        code != 0 and bool(lines) and 0 < opset < MIN_OPSET and not UNCONVERTIBLE.search(message))
    if code != 0:
        return finish(classify_compile_error(message), message)
    if 0 < opset < MIN_OPSET and not state["upgraded"]:
        return finish("error", f"opset {opset} model compiled without peftc's upgrade remark")
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
            code, message, _ = run(args, 120)
        except subprocess.TimeoutExpired:
            return finish("error", "peft-run timed out")
        if code != 0:
            return finish("error", message or f"peft-run exit {code}")
        for output_name, expected in zip(output_names, read_tensors(data_set, "output")):
            try:
                actual = np.load(os.path.join(work, "out", f"{output_name}.npy"))
            except Exception as error:  # noqa: BLE001 - peft-run wrote a bad .npy
                return finish("error", f"{output_name}: peft-run's .npy: {error}")
            if actual.shape != expected.shape:
                return finish("mismatch",
                              f"{output_name}: shape {actual.shape} != {expected.shape}")
            if not np.allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True):
                diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()
                return finish("mismatch",
                              f"{output_name}: max abs diff {diff:.3g}")
    return finish("pass", "")


def frozen_text(r):
    names = ", ".join(f"`{n}`" for n in r.frozen)
    return names + (" (every input)" if set(r.frozen) >= set(r.inputs) else "")


def write_report(path, results, suites):
    by_op = collections.defaultdict(collections.Counter)
    for r in results:
        for op in r.ops:
            by_op[op][r.status] += 1
    totals = collections.Counter(r.status for r in results)
    passing = [r for r in results if r.status == "pass"]
    frozen = [r for r in passing if r.frozen]
    every = [r for r in frozen if set(r.frozen) >= set(r.inputs)]
    upgraded = [r for r in results if r.upgraded]
    refused = [r for r in results if r.status == "opset"]
    unconvertible = [r for r in refused if UNCONVERTIBLE.search(r.detail)]
    lines = ["# ONNX backend tests through peft-mlir", "",
             f"Suites: {', '.join(suites)} (Debian's libonnx-testdata). Tolerances: rtol {RTOL}, "
             f"atol {ATOL}. Reproduce: `/usr/bin/python3 test/conformance/run_onnx_tests.py "
             f"--report docs/conformance.md`.", "",
             f"Totals: {len(results)} tests, {totals['pass']} pass, {totals['mismatch']} mismatch, "
             f"{totals['unsupported']} unsupported, {totals['error']} error, "
             f"{totals['invalid']} with test data that contradicts the model, "
             f"{totals['opset']} at an opset peftc cannot bring into 13-21.", "",
             f"- Frozen inputs: {len(passing) - len(frozen)} tests pass as they are; "
             f"{len(frozen)} more pass only with inputs frozen into constants "
             f"({len(every)} with every input frozen), listed below.",
             f"- Old opsets: peftc upgraded {len(upgraded)} models from opsets below 13 with "
             f"ONNX's version converter; {sum(r.status == 'pass' for r in upgraded)} of them pass. "
             f"{len(unconvertible)} cannot be upgraded by the converter; {len(refused) - len(unconvertible)} "
             f"import no opset of ai.onnx that peftc reads (below).",
             f"- CI (`test/conformance/onnx-node-tests.test`) re-runs the {len(passing)} passing "
             f"tests and fails when one no longer passes or needs an input frozen that "
             f"`test/conformance/passing.txt` does not record for it.", "",
             "Each test counts for every op its model uses, so an op's row also counts tests",
             "that fail on another op (the expanded functions of loss ops, say).", "",
             "| op | tests | pass | of them frozen | mismatch | unsupported | error | invalid | opset |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    frozen_by_op = collections.Counter(op for r in frozen for op in r.ops)
    for op in sorted(by_op):
        c = by_op[op]
        lines.append(f"| {op} | {sum(c.values())} | {c['pass']} | {frozen_by_op[op]} | "
                     f"{c['mismatch']} | {c['unsupported']} | {c['error']} | {c['invalid']} | "
                     f"{c['opset']} |")
    lines += ["", "## Tests that pass only with inputs frozen", "",
              "peftc needs these inputs at compile time; the runner makes them initializers",
              "holding the test's first data set, as a user of an AOT compiler would.", "",
              "| test | inputs frozen |", "| --- | --- |"]
    for r in sorted(frozen, key=lambda r: (r.suite, r.name)):
        lines.append(f"| {r.suite}/{r.name} | {frozen_text(r)} |")
    lines += ["", "## Models refused for their opset", "",
              "| test | opsets imported | peftc |", "| --- | --- | --- |"]
    for r in sorted(refused, key=lambda r: (r.suite, r.name)):
        # peftc's message without its "peftc: error: PATH: " prefix.
        reason = r.detail.split(".onnx: ", 1)[-1].replace("|", "\\|")[:200]
        lines.append(f"| {r.suite}/{r.name} | {r.imports} | {reason} |")
    lines += ["", "## Tests that do not pass", "",
              "| test | status | detail |", "| --- | --- | --- |"]
    for r in sorted(results, key=lambda r: (r.suite, r.name)):
        if r.status != "pass":
            detail = r.detail.replace("|", "\\|")[:200]
            lines.append(f"| {r.suite}/{r.name} | {r.status} | {detail} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def tool_stamps(bin_dir):
    """What identifies the build the tests run against: the tools and the
    libraries peftc links artifacts with."""
    paths = [os.path.join(bin_dir, t) for t in ("peftc", "peft-run")]
    paths += sorted(glob.glob(os.path.join(bin_dir, os.pardir, "lib", "*")))
    stamps = []
    for path in paths:
        try:
            info = os.stat(path)
            stamps.append((path, info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append((path, None, None))
    return stamps


def read_passing(path):
    """{suite/name: set of inputs recorded frozen} from a PASSING.txt."""
    listed = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            frozen = set()
            for field in fields[1:]:
                if not field.startswith("frozen="):
                    sys.exit(f"{path}:{number}: expected 'SUITE/TEST [frozen=IN,...]', got: {line.strip()}")
                frozen |= {n for n in field[len("frozen="):].split(",") if n}
            listed[fields[0]] = frozen
    return listed


def write_passing(path, results, replaced):
    """Writes the passing tests; with `replaced` (the tests run through a
    filter) keeps the lines of the others from the file."""
    entries = {}
    if replaced is not None and os.path.exists(path):
        entries = {k: v for k, v in read_passing(path).items() if k not in replaced}
    entries.update({f"{r.suite}/{r.name}": set(r.frozen) for r in results if r.status == "pass"})
    with open(path, "w") as f:
        f.write("# ONNX backend tests that pass, each with the inputs it needs frozen into\n"
                "# constants, if any (frozen=IN,...). onnx-node-tests.test fails when one\n"
                "# no longer passes or needs an input frozen that is not recorded here.\n"
                "# Regenerate with run_onnx_tests.py --write-passing, then update the\n"
                "# counts in onnx-node-tests.test's CHECK line.\n")
        for key in sorted(entries):
            frozen = entries[key]
            f.write(f"{key}  frozen={','.join(sorted(frozen))}\n" if frozen else f"{key}\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--testdata", default=TESTDATA)
    parser.add_argument("--suite", action="append", default=None)
    parser.add_argument("--filter", default=None)
    parser.add_argument("--report")
    parser.add_argument("--expect")
    parser.add_argument("--write-passing")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    suites = args.suite or ["node"]
    pattern = re.compile(args.filter or ".*")
    available = {f"{s}/{os.path.basename(d)}": (d, s) for s in suites
                 for d in sorted(glob.glob(os.path.join(args.testdata, s, "*")))
                 if os.path.isfile(os.path.join(d, "model.onnx"))}
    listed = None
    if args.expect:
        listed = {k: v for k, v in read_passing(args.expect).items()
                  if k.split("/", 1)[0] in suites and pattern.search(k.split("/", 1)[-1])}
        keys = sorted(listed)
    else:
        keys = sorted(k for k in available if pattern.search(k.split("/", 1)[1]))
    tests = [available[k] for k in keys if k in available]
    tools_before = tool_stamps(args.bin)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda t: run_test(t[0], t[1], args.bin), tests))
    for r in results:
        if r.status != "pass":
            print(f"{r.status.upper()}: {r.suite}/{r.name}: {r.detail}")
    # A tool missing or rebuilt mid-run: nothing here is worth recording.
    unrunnable = [r for r in results if r.detail.startswith("cannot run ")]
    if unrunnable:
        sys.exit(f"{len(unrunnable)} tests could not run a tool ({unrunnable[0].detail}); "
                 f"no report or list written")
    if tool_stamps(args.bin) != tools_before:
        sys.exit(f"the tools in {args.bin} changed during the run; no report or list written")
    if args.write_passing:
        write_passing(args.write_passing, results,
                      None if args.filter is None else {f"{r.suite}/{r.name}" for r in results})
    if args.report:
        write_report(args.report, results, suites)
    passed = [r for r in results if r.status == "pass"]
    frozen = sum(bool(r.frozen) for r in passed)
    if listed is None:
        print(f"{len(passed)} passed ({frozen} with inputs frozen), "
              f"{len(results) - len(passed)} failed")
        return
    # Checked against the list: every listed test runs and passes, freezing
    # no input beyond the ones its line records.
    failed = len(results) - len(passed)
    for key in keys:
        if key not in available:
            print(f"MISSING: {key}: listed in {args.expect}, not in {args.testdata}")
            failed += 1
    for r in passed:
        recorded, needed = listed[f"{r.suite}/{r.name}"], set(r.frozen)
        if needed - recorded:
            print(f"FROZEN: {r.suite}/{r.name}: passes only with "
                  f"{', '.join(sorted(needed - recorded))} frozen, which {args.expect} "
                  f"does not record (recorded: {', '.join(sorted(recorded)) or 'none'})")
            failed += 1
        elif recorded - needed:
            print(f"IMPROVED: {r.suite}/{r.name}: passes without freezing "
                  f"{', '.join(sorted(recorded - needed))}; tighten {args.expect} "
                  f"with --write-passing")
    recorded_frozen = sum(bool(v) for v in listed.values())
    print(f"{len(listed) - failed} of {len(listed)} listed tests pass "
          f"({recorded_frozen} with inputs frozen), {failed} failed")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
