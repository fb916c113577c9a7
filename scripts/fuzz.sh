#!/usr/bin/env bash
# Runs the libFuzzer targets of build-asan (docs/fuzzing.md), each from its
# seeds (fuzz/corpus/<target>), its regression inputs (fuzz/regressions/<target>)
# and what earlier runs added (build-asan/fuzz/<target>/corpus), with its
# dictionary (fuzz/dicts/<target>.dict). Prints each run's executions and
# coverage; fails if any fuzzer finds a crash, leak, UB or timeout, and says
# where the input is.
#
#   scripts/fuzz.sh [-t SECONDS] [-j PARALLEL] [-- LIBFUZZER-FLAGS...] [TARGET...]
#
# Targets: onnx safetensors adapter-config npy manifest (default: all).
# Build first: scripts/sanitize.sh --build-only.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${PEFT_ASAN_BUILD_DIR:-build-asan}
seconds=45
parallel=$(nproc)
extra=()
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) seconds=$2; shift 2 ;;
    -j) parallel=$2; shift 2 ;;
    --) shift; while [ $# -gt 0 ] && [[ "$1" == -* ]]; do extra+=("$1"); shift; done ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=(onnx safetensors adapter-config npy manifest)

. scripts/sanitizer-env.sh

run_one() {
  local t=$1 work="$dir/fuzz/$1" own=()
  mkdir -p "$work/corpus" "$work/artifacts" "fuzz/regressions/$t"
  rm -f "$work/artifacts/"* "$work/status"
  # libFuzzer scans the whole heap for leaks after every input that leaves
  # more allocations than it frees. These targets keep memory on purpose:
  # each write of the npy and safetensors round trips adds a node to LLVM's
  # list of files to remove on a signal (llvm::sys::RemoveFileOnSignal, never
  # freed, reachable), and the ONNX target's MLIRContext keeps the types and
  # attributes it uniqued. The scan then runs on nearly every input (10x
  # slower, and no leak found); LeakSanitizer still checks the whole run
  # when the fuzzer exits, so a real leak still fails it.
  case "$t" in npy|safetensors|onnx) own=(-detect_leaks=0) ;; esac
  # -timeout: an input that takes 25 s is a finding (a hang), not a slow run.
  # The first corpus directory is the one new inputs go to: the committed
  # seeds stay as they are.
  "$dir/bin/peft-fuzz-$t" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
    -dict="fuzz/dicts/$t.dict" -artifact_prefix="$work/artifacts/" "${own[@]}" "${extra[@]}" \
    "$work/corpus" "fuzz/corpus/$t" "fuzz/regressions/$t" >"$work/log" 2>&1 || return $?
}

for t in "${targets[@]}"; do
  [ -x "$dir/bin/peft-fuzz-$t" ] || { echo "fuzz: no $dir/bin/peft-fuzz-$t (scripts/sanitize.sh --build-only)"; exit 1; }
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  # Each run leaves its exit status in a file: `wait -n` above may already
  # have reaped it.
  (status=0; run_one "$t" || status=$?; echo $status >"$dir/fuzz/$t/status") &
done
wait

failed=0
for t in "${targets[@]}"; do
  work="$dir/fuzz/$t"
  status=$(cat "$work/status" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$work/log" | tail -1 || true)
  corpus=$(ls "$work/corpus" | wc -l)
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $t: ${execs:-?} executions in ${took:-?} s, ${cov:-cov: ?}, $corpus inputs in $work/corpus"
  else
    failed=1
    echo "fuzz: $t: FAILED (exit $status) after ${execs:-?} executions; log $work/log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error:|ALARM|==[0-9]+== ERROR: libFuzzer)' "$work/log" | head -5 | sed 's/^/  /' || true
    for input in "$work/artifacts/"*; do
      [ -e "$input" ] || continue
      known=""
      for old in "fuzz/regressions/$t/"*; do
        [ -f "$old" ] && cmp -s "$input" "$old" && known=$old
      done
      if [ -n "$known" ]; then
        echo "  input: $known (a regression input, still failing)"
      else
        echo "  input: $input (keep it: cp it to fuzz/regressions/$t/<what>-<sha1 prefix>)"
      fi
    done
  fi
done
exit $failed
