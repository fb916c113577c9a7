# Sourced by scripts/sanitize.sh and scripts/fuzz.sh: how the sanitized
# binaries of build-asan report (docs/fuzzing.md).
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-22/bin/llvm-symbolizer
export UBSAN_SYMBOLIZER_PATH=$ASAN_SYMBOLIZER_PATH
# UBSan aborts with a stack trace (it is also built with -fno-sanitize-recover).
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-}
