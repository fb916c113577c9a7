#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: builds, generates the benchmark models (a
# BERT-base feed-forward block and a 110M-parameter BERT-base, each with a
# LoRA r=16 adapter), then measures import, merge and compile costs and run
# latency, and checks the outputs against torch; then the single-core FMA
# peak (bench/fma_peak.c) and read bandwidth (bench/read_bandwidth.c), the
# GEMM benchmark against onnxruntime
# (bench/gemm_bench.py), BERT-base against onnxruntime (bench/model_bench.py),
# many adapters in one batch (bench/multi_bench.py), adapters loaded at run
# time (bench/load_bench.py) and against Hugging Face PEFT on transformers
# models (bench/hf_mixed_bench.py).
#   bash bench/run_benchmarks.sh [--tiny] [--no-setup] [WORK_DIR]
# WORK_DIR defaults to /tmp/peft-bench (/tmp/peft-bench-tiny with --tiny).
# --tiny: CI mode, toy models and shapes, one round: proves in well under a
# minute that the scripts work end to end (its timings mean nothing).
# --no-setup: skip scripts/setup.sh (the build is already up to date).
# Exits non-zero if a model fails to generate, compile or match its reference.
set -euo pipefail
cd "$(dirname "$0")/.."
tiny=0; setup=1; work=
for arg in "$@"; do
  case $arg in
    --tiny) tiny=1 ;;
    --no-setup) setup=0 ;;
    -*) echo "run_benchmarks.sh: unknown option $arg" >&2; exit 2 ;;
    *) work=$arg ;;
  esac
done
[ $setup = 1 ] && bash scripts/setup.sh > /dev/null
if [ $tiny = 1 ]; then
  work=${work:-/tmp/peft-bench-tiny}; models=(mlp-tiny bert-tiny); rounds=1; generate=(--tiny)
else
  work=${work:-/tmp/peft-bench}; models=(mlp bert-base); rounds=6; generate=(--bert-base)
fi
bin=build/bin
# Single-threaded, as docs/benchmarks.md reports (peft-run would use every
# CPU); set PEFT_NUM_THREADS to measure more.
export PEFT_NUM_THREADS=${PEFT_NUM_THREADS:-1}
mkdir -p "$work"
# Regenerate when a model is missing or older than its generators; a failure
# stops the script (set -e), with the generator's own error on stderr.
for name in "${models[@]}"; do
  if [ ! -f "$work/$name/model.onnx" ] || [ bench/generate_bench_models.py -nt "$work/$name/model.onnx" ] ||
     [ examples/generate_models.py -nt "$work/$name/model.onnx" ]; then
    /usr/bin/python3 bench/generate_bench_models.py "$work" "${generate[@]}"
    break
  fi
done

# Time and peak memory of a command; its error lines (if any) go to stderr.
peak() {
  local out
  out=$(/usr/bin/time -f "%e s, peak RSS %M KB" "$@" 2>&1 >/dev/null) || true
  grep -i "error\|exited with" <<< "$out" >&2 || true
  tail -1 <<< "$out"
}
median() { sed -n 's/.*median \([0-9.]*\) ms.*/\1/p'; }
fastest() { sed -n 's/.*min \([0-9.]*\) ms.*/\1/p'; }
min() { /usr/bin/python3 -c "print(min($1, $2))"; }

status=0
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for name in "${models[@]}"; do
  model=$work/$name
  inputs=()
  for f in "$model"/inputs/*.npy; do inputs+=(--input "$(basename "$f" .npy)=$f"); done
  runs=20; [ "$name" = bert-base ] && runs=5; [ $tiny = 1 ] && runs=3

  echo "== $name ($(du -h "$model/model.onnx" | cut -f1) ONNX)"
  rm -rf "$work/$name-base" "$work/$name-merged"
  echo "import (peft-translate):     $(peak $bin/peft-translate --import-onnx "$model/model.onnx" -o "$work/$name.mlir"); IR text $(du -h "$work/$name.mlir" | cut -f1)"
  merge=$($bin/peft-opt "$work/$name.mlir" --peft-attach-adapters="adapters=$model/adapter" \
            --peft-merge-adapters --mlir-timing -o /dev/null 2>&1 | sed -n 's/^ *\([0-9.]*\) .*MergeAdapters/\1/p')
  echo "merge of every LoRA (peft-merge-adapters): ${merge} s"
  echo "compile base (peftc):       $(peak $bin/peftc "$model/model.onnx" -o "$work/$name-base")"
  echo "compile merged (peftc):     $(peak $bin/peftc "$model/model.onnx" --adapter "$model/adapter" -o "$work/$name-merged")"
  for variant in base merged; do
    [ -f "$work/$name-$variant/manifest.json" ] || { echo "FAILED: $name-$variant did not compile"; exit 1; }
  done
  # This machine's speed drifts between runs and load spikes move medians by
  # up to 20%: alternate the two artifacts six times and compare each one's
  # fastest run (the same code on weights of the same shapes), reporting the
  # best median beside it.
  base=1e9; merged=1e9; base_median=1e9; merged_median=1e9
  for round in $(seq $rounds); do
    for variant in base merged; do
      stats=$($bin/peft-run "$work/$name-$variant" "${inputs[@]}" --output-dir "$work/$name-$variant-out" --bench $runs)
      m=$(echo "$stats" | fastest); md=$(echo "$stats" | median)
      if [ $variant = base ]; then base=$(min "$base" "$m"); base_median=$(min "$base_median" "$md")
      else merged=$(min "$merged" "$m"); merged_median=$(min "$merged_median" "$md"); fi
    done
  done
  echo "latency, fastest of $rounds × $runs runs: base ${base} ms, merged ${merged} ms, ratio $(/usr/bin/python3 -c "print(f'{$merged / $base:.3f}')")"
  echo "latency, best median of $rounds × $runs runs: base ${base_median} ms, merged ${merged_median} ms"
  for run in base:base merged:expected; do
    /usr/bin/python3 test/tools/compare_npy.py "$work/$name-${run%%:*}-out" "$model/${run##*:}" \
      --atol 1e-4 --rtol 1e-4 | sed "s/^/vs torch, ${run%%:*}: /" || status=1
  done
done

echo "== FMA peak, read bandwidth and GEMMs against onnxruntime"
cc -O2 -march=native bench/fma_peak.c -o "$work/fma_peak"
"$work/fma_peak" $([ $tiny = 1 ] && echo 0.1) | tee "$work/fma_peak.txt"
fma=$(sed -n 's/^fp32 FMA peak, 1 core: \([0-9.]*\) GFLOP\/s.*/\1/p' "$work/fma_peak.txt")
cc -O2 -march=native bench/read_bandwidth.c -o "$work/read_bandwidth"
"$work/read_bandwidth" || status=1
python3 bench/gemm_bench.py --work "$work/gemm" --peak "$fma" --threads "$PEFT_NUM_THREADS" $([ $tiny = 1 ] && echo --tiny) || status=1
echo "== ${models[1]} merged, against onnxruntime on the same merged ONNX, 1 and 2 threads"
python3 bench/model_bench.py "$work/${models[1]}" --work "$work/model" --threads 1 2 \
  --rounds $([ $tiny = 1 ] && echo 1 || echo 4) || status=1
echo "== ${models[1]} with many adapters in one batch (--mode multi)"
if [ $tiny = 1 ]; then
  /usr/bin/python3 bench/multi_bench.py "$work/${models[1]}" --work "$work/multi" \
    --adapters 4 --rows 8 --sequence 8 --runs 1 --rounds 1 || status=1
else
  /usr/bin/python3 bench/multi_bench.py "$work/${models[1]}" --work "$work/multi" \
    --adapters 32 --rows 32 --sequence 16 --runs 3 --rounds 2 || status=1
fi
echo "== ${models[1]}: loading and unloading adapters at run time (--mode multi)"
/usr/bin/python3 bench/load_bench.py "$work/${models[1]}" --work "$work/load" \
  $([ $tiny = 1 ] && echo --slots 6 --loads 2 || echo --slots 32 --loads 10) || status=1
echo "== many adapters in one batch against Hugging Face PEFT (transformers BERT-base, LLaMA decoder)"
for model in bert llama; do
  build/hf-venv/bin/python bench/hf_mixed_bench.py --model $model --work "$work/hf-mixed-$model" \
    $([ $tiny = 1 ] && echo --tiny) || status=1
done
exit $status
