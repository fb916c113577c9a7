#!/usr/bin/env python3
"""--mode multi against Hugging Face PEFT on the same transformers model and
adapters: N LoRA adapters, a batch whose row i uses adapter i.

    build/hf-venv/bin/python bench/hf_mixed_bench.py [--model bert|llama]
        [--adapters 32] [--rows 32] [--sequence 16] [--rank 16] [--runs 3]
        [--rounds 2] [--work DIR] [--tiny] [--prepare-only]

Builds the transformers model (bert: BertModel at BERT-base size; llama: a
LlamaModel decoder, 8 layers of width 1024, grouped-query attention), random
init, exports it to ONNX (torch.onnx.export, as the end-to-end fixtures), and
makes one PEFT LoRA (r=--rank on every linear layer of the blocks, lora_B
perturbed so that it acts) saved with save_pretrained, copied --adapters
times with distinct lora_alpha. Then, one thread each, alternated --rounds
times, best median kept:

  ours base    peft-run on the base model's artifact, the whole batch
  ours multi   peft-run on the --mode multi artifact of all the adapters
  peft rows    HF PEFT with every adapter loaded (load_adapter), each row run
               as its own sub-batch with its adapter set (set_adapter), the
               times summed: what serving the batch with PEFT comes to here.
               PEFT 0.14's one-pass mixed batch (forward(adapter_names=...))
               needs torch 2's keyword forward hooks; this machine's torch
               is 1.13.
  torch base   the transformers model on the whole batch, no adapter

torch's OpenBLAS runs the kernels of the host's vector ISA (OPENBLAS_CORETYPE
SkylakeX with AVX-512, Haswell with AVX2, unless set already).

Checks that the multi artifact's rows equal PEFT's (max |diff| printed;
fails above 1e-3·max(1, |peft|)). Prints the latencies and the ratios: of
the best medians, and the median over the rounds of each round's own ratio
(a round runs the four in the order above, so a ratio's two terms are close
in time and the host's drift touches both).
--tiny: small shapes, one round, to prove the script runs (CI).
--prepare-only: writes the model (model.onnx), the adapters (adapter0...)
and the batch (input_ids.npy, attention_mask.npy, adapter_index.npy) into
--work and stops: scripts/gpu-check.sh compiles them for the GPU.
"""
import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import time

# One thread for torch's BLAS too (Debian's torch uses the system's, OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def best_openblas_core():
    """The OpenBLAS kernels for this host's vector ISA. Debian's OpenBLAS
    0.3.21 picks its kernels by CPU model, and on a model newer than it
    knows (an Intel Xeon of model 207, AVX-512) falls back to SSE3's
    ('Prescott'): torch then runs 6.5 x slower (512x1024x2816: 22 against
    145 GFLOP/s), a reference no user would keep."""
    try:
        flags = set(re.search(r"^flags\s*:(.*)$", open("/proc/cpuinfo").read(), re.M)
                    .group(1).split())
    except (OSError, AttributeError):
        return None
    return "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else None


if "OPENBLAS_CORETYPE" not in os.environ:
    core = best_openblas_core()
    if core:
        os.environ["OPENBLAS_CORETYPE"] = core

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel

from adapter_copies import alpha_copies

# The model card needs Jinja2 and is not part of the adapter; skip it.
PeftModel.create_or_update_model_card = lambda self, output_dir: None


def build(kind, tiny):
    torch.manual_seed(0)
    if kind == "bert":
        config = BertConfig(hidden_size=64 if tiny else 768, num_hidden_layers=2 if tiny else 12,
                            num_attention_heads=4 if tiny else 12,
                            intermediate_size=128 if tiny else 3072, vocab_size=1000 if tiny else 30522)
        targets = ["query", "key", "value", "dense"]
        model = BertModel(config, add_pooling_layer=False)
    else:
        config = LlamaConfig(hidden_size=64 if tiny else 1024, num_hidden_layers=2 if tiny else 8,
                             num_attention_heads=4 if tiny else 16, num_key_value_heads=2 if tiny else 4,
                             intermediate_size=128 if tiny else 2816, vocab_size=1000 if tiny else 32000,
                             max_position_embeddings=256)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        model = LlamaModel(config)
    model.config._attn_implementation = "eager"
    model.config.return_dict = False
    model.config.use_cache = False
    return model.eval(), targets, config.vocab_size


def export(model, ids, mask, path):
    full = type(model).forward

    def narrowed(input_ids, attention_mask):
        return full(model, input_ids=input_ids, attention_mask=attention_mask)

    model.forward = narrowed
    try:
        with torch.no_grad():
            torch.onnx.export(model, (ids, mask), path, opset_version=17,
                              input_names=["input_ids", "attention_mask"],
                              output_names=["last_hidden_state"],
                              dynamic_axes={n: {0: "batch", 1: "sequence"} for n in
                                            ["input_ids", "attention_mask", "last_hidden_state"]},
                              do_constant_folding=True)
    finally:
        del model.forward


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"hf_mixed_bench: {' '.join(command)} failed: {result.stderr.strip()}")
    return result


def bench_ours(bin_dir, artifact, inputs, runs):
    command = [os.path.join(bin_dir, "peft-run"), artifact, "--bench", str(runs), "--threads", "1"]
    for name, path in inputs.items():
        command += ["--input", f"{name}={path}"]
    return float(re.search(r"median ([0-9.]+) ms", run(command).stdout).group(1))


def median_ms(function, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["bert", "llama"], default="bert")
    parser.add_argument("--adapters", type=int, default=32)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--sequence", type=int, default=16)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", default=None)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin"))
    args = parser.parse_args()
    if args.tiny:
        args.adapters, args.rows, args.sequence, args.rank, args.runs, args.rounds = 3, 4, 8, 4, 1, 1
    work = args.work or f"/tmp/peft-hf-mixed-{args.model}{'-tiny' if args.tiny else ''}"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    torch.set_num_threads(1)

    base, targets, vocabulary = build(args.model, args.tiny)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocabulary, size=(args.rows, args.sequence), dtype=np.int64)
    mask = np.ones_like(ids)
    index = np.arange(args.rows, dtype=np.int64) % args.adapters
    inputs = {"input_ids": os.path.join(work, "input_ids.npy"),
              "attention_mask": os.path.join(work, "attention_mask.npy")}
    np.save(inputs["input_ids"], ids)
    np.save(inputs["attention_mask"], mask)
    np.save(os.path.join(work, "adapter_index.npy"), index)
    model_path = os.path.join(work, "model.onnx")
    export(base, torch.from_numpy(ids[:2]), torch.from_numpy(mask[:2]), model_path)

    # One PEFT LoRA, saved by PEFT, then copies with their own lora_alpha.
    peft_model = get_peft_model(copy.deepcopy(base),
                                LoraConfig(r=args.rank, lora_alpha=2 * args.rank,
                                           target_modules=targets))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(0.02 * torch.randn(parameter.shape, generator=generator))
    source = os.path.join(work, "adapter")
    peft_model.save_pretrained(source)
    directories = alpha_copies(source, work, args.adapters, alpha_step=0.1)
    if args.prepare_only:
        return

    peftc = os.path.join(args.bin, "peftc")
    run([peftc, model_path, "-o", os.path.join(work, "base")])
    multi = [peftc, model_path, "--mode", "multi", "-o", os.path.join(work, "multi")]
    for i, directory in enumerate(directories):
        multi += ["--adapter", f"{directory}=a{i}"]
    run(multi)
    multi_inputs = dict(inputs, adapter_index=os.path.join(work, "adapter_index.npy"))

    # PEFT with every adapter loaded; each row with its own.
    served = PeftModel.from_pretrained(copy.deepcopy(base), directories[0], adapter_name="a0")
    for i, directory in enumerate(directories[1:], start=1):
        served.load_adapter(directory, adapter_name=f"a{i}")
    served.eval()
    rows = [(f"a{index[r]}", torch.from_numpy(ids[r:r + 1]), torch.from_numpy(mask[r:r + 1]))
            for r in range(args.rows)]

    def peft_rows():
        outputs = []
        with torch.no_grad():
            for adapter, row_ids, row_mask in rows:
                served.set_adapter(adapter)
                outputs.append(served(input_ids=row_ids, attention_mask=row_mask)[0])
        return torch.cat(outputs).numpy()

    def torch_base():
        with torch.no_grad():
            base(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))

    # Our rows equal PEFT's.
    ours_out = os.path.join(work, "multi-out")
    command = [os.path.join(args.bin, "peft-run"), os.path.join(work, "multi"), "--output-dir",
               ours_out, "--threads", "1"]
    for name, path in multi_inputs.items():
        command += ["--input", f"{name}={path}"]
    run(command)
    expected = peft_rows()
    got = np.load(os.path.join(ours_out, "last_hidden_state.npy"))
    difference = float(np.abs(got - expected).max())
    limit = 1e-3 * max(1.0, float(np.abs(expected).max()))
    if not difference <= limit:
        sys.exit(f"hf_mixed_bench: the multi artifact differs from PEFT by {difference:.3g}")

    # Each round times the four one after another, the two that a ratio
    # compares side by side; a ratio is also taken within each round, where
    # the host's drift (20 % and more between minutes on a shared machine)
    # touches both of its terms alike.
    measures = {
        "ours base": lambda: bench_ours(args.bin, os.path.join(work, "base"), inputs, args.runs),
        "ours multi": lambda: bench_ours(args.bin, os.path.join(work, "multi"), multi_inputs,
                                         args.runs),
        "peft rows": lambda: median_ms(peft_rows, args.runs),
        "torch base": lambda: median_ms(torch_base, args.runs),
    }
    rounds = [{name: measure() for name, measure in measures.items()} for _ in range(args.rounds)]
    best = {name: min(round_[name] for round_ in rounds) for name in measures}
    print(f"{args.model}: {args.rows} rows x {args.sequence} tokens, {args.adapters} LoRA adapters "
          f"r={args.rank}, 1 thread, best median of {args.runs} runs over {args.rounds} rounds; "
          f"multi vs PEFT max |diff| {difference:.2g}; torch's OpenBLAS kernels: "
          f"{os.environ.get('OPENBLAS_CORETYPE', 'its own choice')}")
    for name, value in best.items():
        print(f"  {name:11s} {value:10.2f} ms   (rounds: "
              + " ".join(f"{round_[name]:.0f}" for round_ in rounds) + ")")
    print("  ratios of the best medians, and the median of each round's ratio:")
    for top, bottom in (("ours multi", "ours base"), ("peft rows", "ours multi"),
                        ("torch base", "ours base")):
        within = sorted(round_[top] / round_[bottom] for round_ in rounds)
        print(f"  {top} / {bottom}   {best[top] / best[bottom]:.2f}   "
              f"{within[len(within) // 2]:.2f}")


if __name__ == "__main__":
    main()
