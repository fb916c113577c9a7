#!/usr/bin/env python3
"""Generates the benchmark models (not committed: large, and made in seconds).

    /usr/bin/python3 bench/generate_bench_models.py OUT_DIR [--bert-base] [--others | --tiny]

OUT_DIR/mlp/        a BERT-base feed-forward block (768 -> 3072 -> 768, GELU),
                    batch dynamic, with a LoRA adapter (r=16) on both linears
OUT_DIR/bert-base/  (--bert-base) a 12-layer BERT-base encoder (110M
                    parameters) with LoRA r=16 on every linear layer
--others: OUT_DIR/vit-base/ (ViT-B/16, 224×224, LoRA r=16 on query and
value), OUT_DIR/llama/ (a 4-layer LLaMA-style decoder, hidden 1024, 32000
tokens, prefill of 128; LoRA r=16 on q_proj and v_proj) and
OUT_DIR/resnet/ (a ResNet-style CNN of width 64 on 224×224, its batch
norms folded into the convolutions by the exporter; LoRA r=8 on the
classifier).
--tiny: the same two at toy sizes, in seconds, for CI (OUT_DIR/mlp-tiny/:
64 -> 128 -> 64 on 8 rows; OUT_DIR/bert-tiny/: 2 layers, hidden 32, 8
tokens; LoRA r=4).
Each has model.onnx, adapter/ (Hugging Face PEFT format), inputs/, and
torch's outputs: base/ (no adapter) and expected/ (LoRA applied unmerged).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import generate_models as gm  # noqa: E402


class FeedForward(nn.Module):
    def __init__(self, hidden=768, inner=3072):
        super().__init__()
        self.intermediate = gm.BertIntermediate(hidden, inner)
        self.output = nn.Linear(inner, hidden)

    def forward(self, x):
        return self.output(self.intermediate(x))


def save(directory, model, inputs, input_names, output_names, config, sequence=()):
    """Exports the model (`sequence`: the tensors whose dimension 1 is the
    dynamic sequence) and its adapter; returns torch's median latency (ms)."""
    gm.export_onnx(directory, model, inputs, input_names, output_names, sequence)
    with torch.no_grad():
        gm.run_and_save(model, inputs, output_names, os.path.join(directory, "base"))
        milliseconds = time_torch(model, inputs, runs=3)
        # Magnitudes of a trained adapter on a model this wide.
        adapters = gm.make_adapter(model, config, os.path.join(directory, "adapter"), seed=3,
                                   magnitude=0.02)
        gm.apply_lora_unmerged(model, adapters)
        gm.run_and_save(model, inputs, output_names, os.path.join(directory, "expected"))
    return milliseconds


def time_torch(model, inputs, runs):
    with torch.no_grad():
        model(*inputs)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model(*inputs)
            times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--bert-base", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--others", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)

    if args.tiny:
        config = gm.lora_config(target_modules=["dense", "output"], r=4, lora_alpha=8)
        save(os.path.join(args.out, "mlp-tiny"), FeedForward(64, 128), [torch.randn(8, 64)],
             ["x"], ["y"], config)
        targets = ["query", "key", "value", "dense"]
        save(os.path.join(args.out, "bert-tiny"), gm.BertModel(),
             [torch.randint(0, 96, (1, 8), dtype=torch.long), torch.ones(1, 8, dtype=torch.long)],
             ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"],
             gm.lora_config(target_modules=targets, r=4, lora_alpha=8),
             sequence=("input_ids", "attention_mask", "last_hidden_state"))
        print("tiny models written")
        return

    if args.others:
        vit = gm.ViTForImageClassification(hidden=768, layers=12, heads=12, inner=3072, image=224,
                                           patch=16, labels=1000)
        milliseconds = save(os.path.join(args.out, "vit-base"), vit.eval(),
                            [torch.randn(1, 3, 224, 224)], ["pixel_values"], ["logits"],
                            gm.lora_config(target_modules=["query", "value"], r=16, lora_alpha=32))
        print(f"torch (1 thread) vit-base 1x3x224x224: median {milliseconds:.3f} ms")
        llama = gm.LlamaForCausalLM(vocab=32000, hidden=1024, layers=4, heads=16, inner=2816,
                                    positions=256)
        milliseconds = save(os.path.join(args.out, "llama"), llama.eval(),
                            [torch.randint(0, 32000, (1, 128), dtype=torch.long)], ["input_ids"],
                            ["logits"],
                            gm.lora_config(target_modules=["q_proj", "v_proj"], r=16, lora_alpha=32),
                            sequence=("input_ids", "logits"))
        print(f"torch (1 thread) llama prefill 1x128: median {milliseconds:.3f} ms")
        resnet = gm.ResNet(width=64, labels=1000)
        milliseconds = save(os.path.join(args.out, "resnet"), resnet.eval(),
                            [torch.randn(1, 3, 224, 224)], ["pixel_values"], ["logits"],
                            gm.lora_config(target_modules=["fc"], r=8, lora_alpha=16))
        print(f"torch (1 thread) resnet 1x3x224x224: median {milliseconds:.3f} ms")
        return

    mlp = FeedForward()
    x = torch.randn(128, 768)
    milliseconds = save(os.path.join(args.out, "mlp"), mlp, [x], ["x"], ["y"],
                        gm.lora_config(target_modules=["dense", "output"], r=16, lora_alpha=32))
    print(f"torch (1 thread) mlp batch 128: median {milliseconds:.3f} ms")

    if args.bert_base:
        bert = gm.BertModel(vocab=30522, hidden=768, layers=12, heads=12, inner=3072, positions=512)
        ids = torch.randint(0, 30522, (1, 128), dtype=torch.long)
        mask = torch.ones(1, 128, dtype=torch.long)
        targets = ["query", "key", "value", "dense"]
        params = sum(p.numel() for p in bert.parameters())
        milliseconds = save(os.path.join(args.out, "bert-base"), bert, [ids, mask],
                            ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"],
                            gm.lora_config(target_modules=targets, r=16, lora_alpha=32),
                            sequence=("input_ids", "attention_mask", "last_hidden_state"))
        print(f"bert-base: {params / 1e6:.1f}M parameters")
        print(f"torch (1 thread) bert-base batch 1x128: median {milliseconds:.3f} ms")


if __name__ == "__main__":
    main()
