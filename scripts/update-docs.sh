#!/usr/bin/env bash
# Regenerates the dialect and pass reference docs into docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target peft-docs
cp build/docs/PeftDialect.md build/docs/PeftPasses.md build/docs/PeftLoweringPasses.md \
  build/docs/PeftCpuPasses.md build/docs/PeftCudaPasses.md docs/
