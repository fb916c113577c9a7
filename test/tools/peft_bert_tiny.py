#!/usr/bin/env python3
"""Hugging Face PEFT's own forward of examples/models/bert-tiny with adapter
directories loaded onto it.

    peft_bert_tiny.py OUT_DIR ADAPTER_DIR...

Run with the interpreter of build/hf-venv (%hf_python). The torch model is the
one examples/generate_models.py exported as bert-tiny/model.onnx (its
BertModel, seeded as there); its outputs on bert-tiny/inputs must first be
bert-tiny/base's, so that its weights are the ONNX model's. Each adapter is
then loaded by PeftModel.from_pretrained onto the model the previous ones
were loaded onto, all unmerged (so their target modules must differ: PEFT
mixes LoRA and IA3 in no other way), and PEFT's state dict of it must hold
exactly the file's tensors. Writes OUT_DIR/<output>.npy for bert-tiny/inputs
and prints one line per adapter.
"""
import os
import sys

import numpy as np
import torch
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SOURCE, "examples"))
import generate_models  # noqa: E402  (the torch modules bert-tiny was exported from)

BERT = os.path.join(SOURCE, "examples", "models", "bert-tiny")
INPUTS = ["input_ids", "attention_mask"]
OUTPUTS = ["last_hidden_state", "pooler_output"]


def forward(model):
    inputs = [torch.from_numpy(np.load(os.path.join(BERT, "inputs", f"{n}.npy"))) for n in INPUTS]
    with torch.no_grad():
        return [t.numpy() for t in model(*inputs)]


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: peft_bert_tiny.py OUT_DIR ADAPTER_DIR...")
    out, adapters = sys.argv[1], sys.argv[2:]
    model = generate_models.seeded(generate_models.BertModel, 0)().eval()
    for name, value in zip(OUTPUTS, forward(model)):
        base = np.load(os.path.join(BERT, "base", f"{name}.npy"))
        if np.abs(value - base).max() > 1e-5:
            sys.exit(f"{name}: the seeded BertModel is not bert-tiny's model")
    for directory in adapters:
        name = os.path.basename(os.path.normpath(directory))
        model = PeftModel.from_pretrained(model, directory, adapter_name=name)
        # from_pretrained leaves unknown keys out and missing ones fresh, so
        # compare what PEFT holds with the file.
        held = get_peft_model_state_dict(model, adapter_name=name)
        saved = load_file(os.path.join(directory, "adapter_model.safetensors"))
        if held.keys() != saved.keys() or any(not torch.equal(held[k], saved[k]) for k in saved):
            sys.exit(f"{name}: PEFT did not load {directory} as saved")
        print(f"{name}: {model.peft_config[name].peft_type.value}, {len(saved)} tensors loaded")
        model = model.get_base_model()  # The next adapter goes onto it.
    os.makedirs(out, exist_ok=True)
    for name, value in zip(OUTPUTS, forward(model)):
        np.save(os.path.join(out, f"{name}.npy"), value)


if __name__ == "__main__":
    main()
