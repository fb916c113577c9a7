#!/usr/bin/env bash
# The sanitizer build (docs/fuzzing.md): configures and builds build-asan with
# clang-22, ASan + UBSan on peft-mlir's own code and the libFuzzer targets,
# then runs in it the unit tests, every bad-input test, a sample of the
# end-to-end tests and the fuzzers' regression inputs. Prints the lit totals
# and fails on any failure.
#
#   scripts/sanitize.sh [--build-only]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${PEFT_ASAN_BUILD_DIR:-build-asan}

if [ ! -f "$dir/build.ninja" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  # -O1: ASan's recommendation (fast enough, readable traces); no NDEBUG, so
  # the asserts of the LLVM/MLIR headers (cast<>, ArrayRef bounds) check our
  # code too.
  CC=clang-22 CXX=clang++-22 cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
    -DPEFT_SANITIZE=ON -DPEFT_FUZZ=ON "${launcher[@]}" >/dev/null
fi
# What lit needs (its config requires all six tools; runtime/ the pretend
# CUDA driver) and the fuzzers; not the rest of `all`.
nice -n 10 cmake --build "$dir" --target peft-opt peft-translate peftc peft-run \
  peft-unit-tests peft-session-stress peft-fake-cuda peft-fuzzers
[ "${1:-}" = "--build-only" ] && exit 0

. scripts/sanitizer-env.sh

# The unit tests, the fuzzers' regression inputs, the FileCheck tests of
# the dialect, passes, lowering and importer (seconds; invalid IR among
# them), every bad-input test (test/errors, e2e/output-paths, and the e2e
# tests with a `not` line:
# half-precision-adapters, stdha, insert-adapters, swap-adapter,
# combine-adapters, hf/two-adapters) and end-to-end tests that cover merge
# and fuse (bert-lora-*), LoHa/LoKr, DoRA, IA3 and the runtime (base-model,
# and runtime/: sessions running while adapters load and unload):
# about three minutes on two cores. insert-adapters runs PEFT in
# build/hf-venv (test/lit.cfg.py's %hf_python falls back to it).
e2e='output-paths|half-precision-adapters|stdha|insert-adapters|swap-adapter|combine-adapters'
e2e+='|hf/two-adapters|base-model|bert-lora-merge|bert-lora-fuse|loha-lokr|dora|cnn-ia3'
# lit matches the filter against "peft-mlir :: <path in test/>".
tests=":: (unit/|fuzz/|dialect/|passes/|lowering/|importer/|errors/|runtime/|e2e/($e2e)\\.test$)"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
/usr/lib/llvm-22/bin/lit -sv --filter "$tests" "$dir/test" 2>&1 | tee "$log" || status=$?
passed=$(sed -n 's/^ *Passed *: *\([0-9]*\).*/\1/p' "$log")
failed=$(sed -n 's/^ *Failed *: *\([0-9]*\).*/\1/p' "$log")
echo "sanitized: ${passed:-0} passed, ${failed:-0} failed"
if [ "$status" -ne 0 ] || [ "${passed:-0}" -eq 0 ]; then
  exit 1
fi
