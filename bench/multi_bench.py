#!/usr/bin/env python3
"""Many adapters in one batch (--mode multi) against the base model and
against running each adapter's rows as its own sub-batch.

    python3 bench/multi_bench.py MODEL_DIR [--adapters 32] [--rows 32]
                                 [--sequence 16] [--padded-rank 64] [--runs 5]
                                 [--rounds 2] [--work DIR]

MODEL_DIR holds model.onnx (a BERT-style encoder: input_ids, attention_mask)
and adapter/ (a Hugging Face PEFT LoRA), as bench/generate_bench_models.py
writes them. The adapter is copied --adapters times with distinct lora_alpha
(scaled by 1 + i/100), all compiled into one --mode multi artifact; a batch
of --rows sequences of --sequence tokens uses adapter i % N in row i. Three
ways to run the same rows, alternated --rounds times, each side's best median
of `peft-run --bench --runs` kept:

  base       the base model on the whole batch (no adapter work at all)
  multi      the multi-adapter artifact on the whole batch
  padded     the same with slots of rank capacity --padded-rank (--max-rank):
             the adapters' rows compute over their own rank, not the
             capacity, so it should cost what multi does
  sorted     the multi artifact on the same rows sorted by adapter (row i
             uses adapter i % N, so the batch interleaves the adapters):
             consecutive rows of one adapter are one GEMM, and the other
             rows run slot by slot too, so it should cost what multi does
  separate   an artifact with one adapter unmerged (--mode fuse) run once
             per adapter on that adapter's rows, the times summed (what
             HF PEFT's mixed-batch inference does; each sub-batch runs with
             the first adapter's weights, the same work, swapping not counted)

Prints the latencies and the ratios multi / base, padded / multi,
multi / sorted and separate / multi.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

from adapter_copies import alpha_copies

def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"multi_bench: {' '.join(command)} failed: {result.stderr.strip()}")
    return result


def bench(bin_dir, artifact, inputs, runs, extra=()):
    command = [os.path.join(bin_dir, "peft-run"), artifact, "--bench", str(runs),
               "--threads", "1", *extra]
    for name, path in inputs.items():
        command += ["--input", f"{name}={path}"]
    match = re.search(r"median ([0-9.]+) ms", run(command).stdout)
    return float(match.group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--adapters", type=int, default=32)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--sequence", type=int, default=16)
    parser.add_argument("--padded-rank", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", default="/tmp/peft-multi-bench")
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin"))
    args = parser.parse_args()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)

    # N adapters: the model's, each with its own lora_alpha (so its own scale).
    directories = alpha_copies(os.path.join(args.model, "adapter"), work, args.adapters,
                               alpha_step=0.01)
    specs = [f"{directory}=a{i}" for i, directory in enumerate(directories)]

    peftc = os.path.join(args.bin, "peftc")
    model = os.path.join(args.model, "model.onnx")
    run([peftc, model, "-o", os.path.join(work, "base")])
    with open(os.path.join(work, "base", "manifest.json")) as f:
        vocabulary = next(t.get("index_bound", 100) for t in json.load(f)["inputs"]
                          if t["name"] == "input_ids")

    # The batch: row i uses adapter i % N.
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocabulary, size=(args.rows, args.sequence), dtype=np.int64)
    index = np.arange(args.rows, dtype=np.int64) % args.adapters
    inputs = {"input_ids": os.path.join(work, "input_ids.npy"),
              "attention_mask": os.path.join(work, "attention_mask.npy")}
    np.save(inputs["input_ids"], ids)
    np.save(inputs["attention_mask"], np.ones_like(ids))
    np.save(os.path.join(work, "adapter_index.npy"), index)
    order = np.argsort(index, kind="stable")
    sorted_inputs = {name: os.path.join(work, f"sorted_{name}.npy") for name in
                     ["input_ids", "attention_mask", "adapter_index"]}
    np.save(sorted_inputs["input_ids"], ids[order])
    np.save(sorted_inputs["attention_mask"], np.ones_like(ids))
    np.save(sorted_inputs["adapter_index"], index[order])

    multi = [peftc, model, "--mode", "multi"]
    for spec in specs:
        multi += ["--adapter", spec]
    run(multi + ["-o", os.path.join(work, "multi")])
    run(multi + ["--max-rank", str(args.padded_rank), "-o", os.path.join(work, "padded")])
    run([peftc, model, "--adapter", specs[0].split("=")[0], "--mode", "fuse",
         "-o", os.path.join(work, "fuse")])
    sub_inputs = []
    for i in range(args.adapters):
        rows = np.nonzero(index == i)[0]
        if len(rows) == 0:
            continue
        sub = {name: os.path.join(work, f"{name}{i}.npy") for name in inputs}
        np.save(sub["input_ids"], ids[rows])
        np.save(sub["attention_mask"], np.ones_like(ids[rows]))
        sub_inputs.append((i, sub))

    best = {"base": float("inf"), "multi": float("inf"), "padded": float("inf"),
            "sorted": float("inf"), "separate": float("inf")}
    multi_inputs = dict(inputs, adapter_index=os.path.join(work, "adapter_index.npy"))
    for _ in range(args.rounds):
        best["base"] = min(best["base"], bench(args.bin, os.path.join(work, "base"), inputs, args.runs))
        best["multi"] = min(best["multi"],
                            bench(args.bin, os.path.join(work, "multi"), multi_inputs, args.runs))
        best["padded"] = min(best["padded"],
                             bench(args.bin, os.path.join(work, "padded"), multi_inputs, args.runs))
        best["sorted"] = min(best["sorted"],
                             bench(args.bin, os.path.join(work, "multi"), sorted_inputs, args.runs))
        # Each sub-batch does its adapter's work with adapter 0's weights (the
        # same shapes, so the same work; swapping weights is not counted).
        separate = sum(bench(args.bin, os.path.join(work, "fuse"), sub, args.runs)
                       for _, sub in sub_inputs)
        best["separate"] = min(best["separate"], separate)
    print(f"{args.rows} rows x {args.sequence} tokens, {args.adapters} adapters, 1 thread, "
          f"best median of {args.runs} runs over {args.rounds} rounds:")
    for name, value in best.items():
        print(f"  {name:9s} {value:10.2f} ms")
    print(f"  multi / base     {best['multi'] / best['base']:.2f}")
    print(f"  padded / multi   {best['padded'] / best['multi']:.2f} "
          f"(slots of rank {args.padded_rank})")
    print(f"  multi / sorted   {best['multi'] / best['sorted']:.2f} (the batch sorted by adapter)")
    print(f"  separate / multi {best['separate'] / best['multi']:.2f}")


if __name__ == "__main__":
    main()
