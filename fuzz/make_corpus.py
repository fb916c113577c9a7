#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora, fuzz/corpus/<target>/, from the
repository's fixtures (docs/fuzzing.md). Run with Debian's interpreter (numpy,
onnx, torch) from the repository root, after building build/:

    /usr/bin/python3 fuzz/make_corpus.py [--peftc build/bin/peftc]

Seeds are small on purpose (libFuzzer mutates small inputs faster, and the
corpora are committed): ONNX models over 12 KB are not copied but re-exported
with one layer and a hidden size of 8 from examples/generate_models.py's
modules (up to 32 KB). Files are named by the SHA-1 of their content, as libFuzzer names
the units it adds, so reruns do not duplicate them.
"""
import argparse
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MAX_SEED = 12 * 1024


def add(target, data, limit=MAX_SEED):
    if len(data) > limit:
        return
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def add_files(target, pattern, limit=MAX_SEED):
    for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
        with open(path, "rb") as f:
            add(target, f.read(), limit)


def onnx_seeds():
    # The importer tests' models, written in ONNX's text syntax.
    with tempfile.TemporaryDirectory() as tmp:
        for text in sorted(glob.glob(os.path.join(ROOT, "test", "**", "*.onnxtxt"), recursive=True)):
            out = os.path.join(tmp, "model.onnx")
            subprocess.run([sys.executable, os.path.join(ROOT, "test", "tools", "onnx_from_text.py"),
                            text, out], check=True, capture_output=True)
            with open(out, "rb") as f:
                add("onnx", f.read())
    add_files("onnx", "examples/models/*/model.onnx")
    # The transformer fixtures, shrunk: the same graphs (attention, layer
    # norms, GELU, rotary embeddings, patch convolution) with tiny weights
    # (GPT-2's, over 32 KB even so, is left out).
    import torch
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import generate_models as g
    small = dict(hidden=8, layers=1, heads=2, inner=8)
    models = [
        ("bert", g.BertModel(vocab=8, positions=8, **small),
         [torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long)],
         ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"]),
        ("llama", g.LlamaForCausalLM(vocab=8, positions=8, **small),
         [torch.zeros(1, 4, dtype=torch.long)], ["input_ids"], ["logits"]),
        ("vit", g.ViTForImageClassification(channels=1, image=4, patch=2, labels=2, **small),
         [torch.zeros(1, 1, 4, 4)], ["pixel_values"], ["logits"]),
    ]
    for name, model, inputs, input_names, output_names in models:
        model.eval()
        dynamic = {n: {0: "batch"} for n in input_names + output_names}
        buffer = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(model, tuple(inputs), buffer, opset_version=17,
                              input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic, do_constant_folding=True)
        add("onnx", buffer.getvalue(), limit=32 * 1024)


def npy_seeds():
    # One fixture of each kind the tests read, then every dtype readNpy takes,
    # in the header versions 1.0, 2.0 and 3.0, C and Fortran order, a scalar
    # and an empty array.
    for path in ["examples/models/bert-tiny/inputs/input_ids.npy",
                 "examples/models/mlp-bf16/inputs/features.npy",
                 "examples/models/cnn-tiny/base/logits.npy"]:
        add_files("npy", path)
    from numpy.lib import format as npformat
    for dtype in ["<f4", "<f8", "<f2", "<i8", "<i4", "|i1", "|u1", "|b1", "<i2", "<u2", "<u4", "<u8"]:
        buffer = io.BytesIO()
        np.save(buffer, np.arange(6).reshape(2, 3).astype(dtype))
        add("npy", buffer.getvalue())
    arrays = [np.float32(1.5), np.zeros((0, 3), np.float32),
              np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3))]
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, array)
        add("npy", buffer.getvalue())
    for version in [(2, 0), (3, 0)]:
        buffer = io.BytesIO()
        array = np.arange(4, dtype="<f4")
        npformat.write_array(buffer, array, version=version)
        add("npy", buffer.getvalue())


def safetensors_seeds():
    add_files("safetensors", "examples/**/adapter_model.safetensors", limit=4096)
    # Edge cases the fixtures lack: metadata, an empty tensor, a scalar, and
    # every dtype name.
    def file(header, data=b""):
        text = json.dumps(header).encode()
        return len(text).to_bytes(8, "little") + text + data
    add("safetensors", file({"__metadata__": {"format": "pt"},
                             "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                             "b": {"dtype": "F32", "shape": [0, 3], "data_offsets": [8, 8]},
                             "c": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]}},
                            bytes(16)))
    sizes = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
    header, offset = {}, 0
    for name, size in sizes.items():
        header[name.lower()] = {"dtype": name, "shape": [1, 2], "data_offsets": [offset, offset + 2 * size]}
        offset += 2 * size
    add("safetensors", file(header, bytes(offset)))


def adapter_config_seeds():
    add_files("adapter-config", "examples/**/adapter_config.json")
    add_files("adapter-config", "test/e2e/Inputs/insert-*.json")


def manifest_seeds(peftc):
    # Artifacts of a merged, an unmerged (fuse) and a stacked compile.
    compiles = [
        ["examples/models/mlp-bf16/model.onnx", "--adapter", "examples/models/mlp-bf16/adapter"],
        ["examples/models/bert-tiny/model.onnx", "--adapter", "examples/models/bert-tiny/adapter",
         "--mode", "fuse"],
        ["examples/models/cnn-tiny/model.onnx", "--adapter", "examples/models/cnn-tiny/adapter",
         "--adapter", "examples/models/cnn-tiny/second/adapter=second:0.5", "--mode", "fuse"],
        ["examples/models/llama-tiny/model.onnx", "--adapter", "examples/models/llama-tiny/ia3/adapter"],
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i, args in enumerate(compiles):
            out = os.path.join(tmp, str(i))
            subprocess.run([peftc] + [os.path.join(ROOT, a) if a.startswith("examples/") else a
                                      for a in args] + ["-o", out], check=True)
            with open(os.path.join(out, "manifest.json"), "rb") as f:
                add("manifest", f.read())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--peftc", default=os.path.join(ROOT, "build", "bin", "peftc"))
    args = parser.parse_args()
    onnx_seeds()
    npy_seeds()
    safetensors_seeds()
    adapter_config_seeds()
    manifest_seeds(args.peftc)
    for target in sorted(os.listdir(CORPUS)):
        files = glob.glob(os.path.join(CORPUS, target, "*"))
        print(f"{target}: {len(files)} seeds, {sum(os.path.getsize(f) for f in files)} bytes")


if __name__ == "__main__":
    main()
