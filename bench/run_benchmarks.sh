#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: builds, generates the benchmark models (a
# BERT-base feed-forward block and a 110M-parameter BERT-base, each with a
# LoRA r=16 adapter), then measures import, merge and compile costs and run
# latency, and checks the outputs against torch.
#   bash bench/run_benchmarks.sh [WORK_DIR]      (default /tmp/peft-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh > /dev/null
work=${1:-/tmp/peft-bench}
bin=build/bin
mkdir -p "$work"
if [ ! -f "$work/bert-base/model.onnx" ]; then
  /usr/bin/python3 bench/generate_bench_models.py "$work" --bert-base 2>/dev/null
fi

peak() { /usr/bin/time -f "%e s, peak RSS %M KB" "$@" 2>&1 >/dev/null | tail -1; }
median() { sed -n 's/.*median \([0-9.]*\) ms.*/\1/p'; }
fastest() { sed -n 's/.*min \([0-9.]*\) ms.*/\1/p'; }
min() { /usr/bin/python3 -c "print(min($1, $2))"; }

echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for name in mlp bert-base; do
  model=$work/$name
  inputs=()
  for f in "$model"/inputs/*.npy; do inputs+=(--input "$(basename "$f" .npy)=$f"); done
  runs=20; [ "$name" = bert-base ] && runs=5

  echo "== $name ($(du -h "$model/model.onnx" | cut -f1) ONNX)"
  echo "import (peft-translate):     $(peak $bin/peft-translate --import-onnx "$model/model.onnx" -o "$work/$name.mlir"); IR text $(du -h "$work/$name.mlir" | cut -f1)"
  merge=$($bin/peft-opt "$work/$name.mlir" --peft-attach-adapters="adapters=$model/adapter" \
            --peft-merge-adapters --mlir-timing -o /dev/null 2>&1 | sed -n 's/^ *\([0-9.]*\) .*MergeAdapters/\1/p')
  echo "merge of every LoRA (peft-merge-adapters): ${merge} s"
  echo "compile base (peftc):       $(peak $bin/peftc "$model/model.onnx" -o "$work/$name-base")"
  echo "compile merged (peftc):     $(peak $bin/peftc "$model/model.onnx" --adapter "$model/adapter" -o "$work/$name-merged")"
  # This machine's speed drifts between runs and load spikes move medians by
  # up to 20%: alternate the two artifacts six times and compare each one's
  # fastest run (the same code on weights of the same shapes), reporting the
  # best median beside it.
  base=1e9; merged=1e9; base_median=1e9; merged_median=1e9
  for round in 1 2 3 4 5 6; do
    for variant in base merged; do
      stats=$($bin/peft-run "$work/$name-$variant" "${inputs[@]}" --output-dir "$work/$name-$variant-out" --bench $runs)
      m=$(echo "$stats" | fastest); md=$(echo "$stats" | median)
      if [ $variant = base ]; then base=$(min "$base" "$m"); base_median=$(min "$base_median" "$md")
      else merged=$(min "$merged" "$m"); merged_median=$(min "$merged_median" "$md"); fi
    done
  done
  echo "latency, fastest of 6 × $runs runs: base ${base} ms, merged ${merged} ms, ratio $(/usr/bin/python3 -c "print(f'{$merged / $base:.3f}')")"
  echo "latency, best median of 6 × $runs runs: base ${base_median} ms, merged ${merged_median} ms"
  for run in base:base merged:expected; do
    /usr/bin/python3 test/tools/compare_npy.py "$work/$name-${run%%:*}-out" "$model/${run##*:}" \
      --atol 1e-4 --rtol 1e-4 | sed "s/^/vs torch, ${run%%:*}: /"
  done
done
