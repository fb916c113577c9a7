#!/usr/bin/env bash
# Sets up, builds, then runs every test (lit + FileCheck, GoogleTest unit
# tests, end-to-end runs against torch references) and prints the totals;
# then the benchmark scripts on toy models, the sanitizer build's tests and a short run of each fuzzer
# (scripts/sanitize.sh, scripts/fuzz.sh; docs/fuzzing.md). PEFT_SANITIZE=0
# skips the latter two.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
/usr/lib/llvm-22/bin/lit -sv build/test 2>&1 | tee "$log" || status=$?
passed=$(sed -n 's/^ *Passed *: *\([0-9]*\).*/\1/p' "$log")
failed=$(sed -n 's/^ *Failed *: *\([0-9]*\).*/\1/p' "$log")
# Unsupported: tests whose hardware is missing (a GPU), skipped, never passed.
skipped=$(sed -n 's/^ *Unsupported *: *\([0-9]*\).*/\1/p' "$log")
if [ "$status" -ne 0 ] || [ "${passed:-0}" -eq 0 ]; then
  status=1
fi

# The main suite's totals, before $log is reused.
totals="${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
summary=()
# The benchmark scripts once on toy models, so that they cannot rot (their
# timings mean nothing here; docs/benchmarks.md has the real runs).
start=$SECONDS
bench_status=0
bash bench/run_benchmarks.sh --tiny --no-setup > "$log" 2>&1 || bench_status=$?
[ $bench_status -eq 0 ] || { cat "$log"; status=1; }
summary+=("benchmark scripts (--tiny): $([ $bench_status -eq 0 ] && echo ran || echo FAILED) ($((SECONDS - start)) s)")
if [ "${PEFT_SANITIZE:-1}" != 0 ]; then
  # ASan + UBSan build (build-asan): unit, bad-input and sample e2e tests,
  # and the fuzzers' regression inputs; it prints its own lit totals.
  start=$SECONDS
  sanitize_status=0
  bash scripts/sanitize.sh 2>&1 | tee "$log" || sanitize_status=$?
  summary+=("$(grep '^sanitized: ' "$log" || echo 'sanitized: build FAILED') ($((SECONDS - start)) s with the build)")
  # 45 s of each fuzzer, two at a time on two cores.
  start=$SECONDS
  fuzz_status=0
  if [ $sanitize_status -eq 0 ] || [ -x build-asan/bin/peft-fuzz-manifest ]; then
    bash scripts/fuzz.sh -t 45 || fuzz_status=$?
  else
    fuzz_status=1
  fi
  summary+=("fuzzers: $([ $fuzz_status -eq 0 ] && echo no finding || echo FAILED) ($((SECONDS - start)) s)")
  [ $sanitize_status -eq 0 ] && [ $fuzz_status -eq 0 ] || status=1
fi

for line in "${summary[@]}"; do echo "$line"; done
echo "$totals"
exit $status
