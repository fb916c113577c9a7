"""The Python package against PEFT's own forward (examples/hf-models/bert: expected/
<case> is PeftModel's output on inputs/, expected2 and base2 on inputs2/). Prints one
line per check for FileCheck; any mismatch raises.

    api_check.py HF_MODELS/bert WORK_DIR
"""
import os
import sys
import threading

import numpy as np

import peft_mlir

bert, work = sys.argv[1], sys.argv[2]


def npys(directory):
    return {f[:-4]: np.load(os.path.join(directory, f)) for f in sorted(os.listdir(directory))
            if f.endswith(".npy")}


def close(got, expected, what):
    for name, want in expected.items():
        scale = max(1.0, float(np.abs(want).max()))
        diff = float(np.abs(got[name] - want).max())
        assert diff <= 1e-4 * scale, f"{what}: {name} differs by {diff}"


def fails(call, *fragments):
    """The PeftError `call` raises, checked to name each fragment."""
    try:
        call()
    except peft_mlir.PeftError as error:
        message = str(error)
        assert "\n" not in message, message
        for fragment in fragments:
            assert fragment in message, (fragment, message)
        return message
    raise AssertionError(f"no PeftError (expected one naming {fragments})")


inputs = npys(os.path.join(bert, "inputs"))
inputs2 = npys(os.path.join(bert, "inputs2"))
model_onnx = os.path.join(bert, "model.onnx")
adapters = os.path.join(bert, "adapters")

# Merged, compiled in process; the summary goes to stdout.
out = peft_mlir.compile(model_onnx, adapters=[os.path.join(adapters, "lora-patterns")],
                        mode="merge", target="cpu", output=os.path.join(work, "merged"),
                        summary=True)
model = peft_mlir.load(out)
print("inputs:", model.inputs)
print("outputs:", model.outputs)
got = model.run(**inputs)
close(got, npys(os.path.join(bert, "expected", "lora-patterns")), "merge")
print("merge matches PEFT")

# Zero-copy: outputs view the run's buffers (which they keep alive); a second run
# leaves the first's outputs as they were.
first = got["last_hidden_state"]
assert not first.flags.owndata and first.base is not None
again = model.run(inputs)  # a dict works as well as keywords
assert np.array_equal(first, again["last_hidden_state"])
del got, again
print("outputs are views:", first.dtype, first.shape)
# Inputs of another dtype or layout are converted: int32 ids, a Fortran-ordered mask.
converted = model.run(input_ids=inputs["input_ids"].astype(np.int32),
                      attention_mask=np.asfortranarray(inputs["attention_mask"]),
                      token_type_ids=inputs["token_type_ids"].tolist())
assert np.array_equal(converted["last_hidden_state"], first)
print("converted inputs give the same outputs")

# Two threads running the one model at once.
results = {}
def run(key, arrays):
    results[key] = model.run(**arrays)["pooler_output"]
threads = [threading.Thread(target=run, args=(k, a)) for k, a in (("a", inputs), ("b", inputs2))]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert np.array_equal(results["a"], model.run(**inputs)["pooler_output"])
assert np.array_equal(results["b"], model.run(**inputs2)["pooler_output"])
print("threads ok")
# The runtime's thread count, for the process: results are the same for any.
assert peft_mlir.set_num_threads(1) == 1 and peft_mlir.get_num_threads() == 1
assert np.array_equal(model.run(**inputs)["pooler_output"], results["a"])
peft_mlir.set_num_threads(0)

# Unmerged (--mode fuse), the adapter named by a (dir, name) tuple.
fused = peft_mlir.load(peft_mlir.compile(model_onnx, adapters=[(os.path.join(adapters, "lora-patterns"), "lp")],
                                         mode="fuse", output=os.path.join(work, "fused")))
close(fused.run(**inputs), npys(os.path.join(bert, "expected", "lora-patterns")), "fuse")
print("fuse matches PEFT")
# A (dir, name, weight) tuple is peftc's DIR=NAME:WEIGHT: the same artifact's outputs
# as peftc's of that spelling (WORK_DIR/weighted-peftc, made by the test).
weighted = peft_mlir.load(peft_mlir.compile(
    model_onnx, adapters=[(os.path.join(adapters, "lora-patterns"), "lp", 0.5)], mode="fuse",
    output=os.path.join(work, "weighted")))
by_peftc = peft_mlir.load(os.path.join(work, "weighted-peftc")).run(**inputs)
for name, value in weighted.run(**inputs).items():
    assert np.array_equal(value, by_peftc[name]), name
    assert not np.allclose(value, fused.run(**inputs)[name]), name
print("weighted as peftc's DIR=NAME:WEIGHT")

# --mode multi: slot 0 compiled in, slot 1 loaded at run time; rows pick their slot.
multi = peft_mlir.load(peft_mlir.compile(
    model_onnx, adapters=[(os.path.join(adapters, "lora-patterns"), "lp")], mode="multi",
    max_adapters=2, max_rank=8, slot_modules=["query", "key", "value", "dense"],
    output=os.path.join(work, "multi")))
assert multi.free_adapter_slot() == 1
multi.load_adapter(1, os.path.join(adapters, "lora-regex"))
assert multi.free_adapter_slot() is None
rows = npys(os.path.join(bert, "inputs2"))
index = np.array([1, -1, 0], dtype=np.int64)
got = multi.run(adapter_index=index, **rows)
want = {"lora-regex": npys(os.path.join(bert, "expected2", "lora-regex")),
        "base": npys(os.path.join(bert, "base2")),
        "lora-patterns": npys(os.path.join(bert, "expected2", "lora-patterns"))}
for row, case in enumerate(["lora-regex", "base", "lora-patterns"]):
    close({n: v[row] for n, v in got.items()}, {n: v[row] for n, v in want[case].items()},
          f"multi row {row} ({case})")
multi.unload_adapter(1)
assert multi.free_adapter_slot() == 1
print("multi matches PEFT row by row")

# Failures: one line naming what is wrong, and no output left behind.
bad = os.path.join(work, "bad")
print("error:", fails(lambda: peft_mlir.compile(model_onnx, adapters=[os.path.join(work, "nowhere")],
                                                output=bad), "nowhere"))
assert not os.path.exists(bad)
print("error:", fails(lambda: peft_mlir.compile(model_onnx, mode="blend", output=bad), "--mode"))
print("error:", fails(lambda: peft_mlir.compile(os.path.join(work, "missing.onnx"), output=bad),
                      "missing.onnx"))
print("error:", fails(lambda: model.run(input_ids=inputs["input_ids"]), "attention_mask"))
print("error:", fails(lambda: model.run(pixels=inputs["input_ids"], **inputs), "pixels"))
print("error:", fails(lambda: model.run(**dict(inputs, input_ids=inputs["input_ids"][0])),
                      "input_ids"))
print("error:", fails(lambda: peft_mlir.load(os.path.join(work, "nothing-here")), "nothing-here"))
print("error:", fails(lambda: multi.load_adapter(5, os.path.join(adapters, "lora-regex")), "5"))
print("error:", fails(lambda: multi.run(adapter_index=np.array([2, 0, 0]), **rows), "adapter_index"))
assert not os.path.exists(bad)
print("done")
