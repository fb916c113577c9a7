#!/usr/bin/env python3
"""Runs peft-opt with the pipeline a file holds (as `peftc --print-pipeline`
prints it): lit's shell has no command substitution.

    replay_pipeline.py PEFT_OPT INPUT.mlir PIPELINE_FILE -o OUTPUT.mlir
"""
import subprocess
import sys


def main():
    if len(sys.argv) != 6 or sys.argv[4] != "-o":
        sys.exit(__doc__)
    peft_opt, source, pipeline_file, _, output = sys.argv[1:]
    with open(pipeline_file) as f:
        pipeline = f.read().strip()
    sys.exit(subprocess.run([peft_opt, source, f"--pass-pipeline={pipeline}", "-o", output]).returncode)


if __name__ == "__main__":
    main()
