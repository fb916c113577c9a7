#!/usr/bin/env bash
# Sets up, builds, then runs the demo: compiles the tiny BERT-style model in
# examples/ with its Hugging Face PEFT LoRA adapter merged in, runs it, and
# compares the outputs with torch's unmerged LoRA forward.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

model=examples/models/bert-tiny
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== peftc: import the ONNX model, attach the LoRA adapter, merge it, compile for this CPU"
build/bin/peftc "$model/model.onnx" --adapter "$model/adapter" --mode merge -o "$work/bert"
ls -l "$work/bert"

echo "== peft-run: run the artifact"
build/bin/peft-run "$work/bert" \
  --input input_ids="$model/inputs/input_ids.npy" \
  --input attention_mask="$model/inputs/attention_mask.npy" \
  --output-dir "$work/out" --bench 100

echo "== outputs, against torch's unmerged LoRA forward (examples/generate_models.py)"
/usr/bin/python3 - "$work/out" "$model" <<'PY'
import sys
import numpy as np
out, model = sys.argv[1], sys.argv[2]
for name in ["last_hidden_state", "pooler_output"]:
    got = np.load(f"{out}/{name}.npy")
    want = np.load(f"{model}/expected/{name}.npy")
    base = np.load(f"{model}/base/{name}.npy")
    print(f"{name}: shape {list(got.shape)}, mean {got.mean():+.5f}, std {got.std():.5f}, "
          f"first {np.array2string(got.reshape(-1)[:4], precision=4)}")
    print(f"  max |difference| vs unmerged reference: {np.abs(got - want).max():.2e}"
          f"  (the adapter moves the output by up to {np.abs(want - base).max():.2f})")
PY
