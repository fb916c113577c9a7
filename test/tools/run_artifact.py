#!/usr/bin/env python3
"""Runs an artifact on every input of a directory.

    run_artifact.py PEFT_RUN ARTIFACT INPUTS_DIR OUTPUT_DIR

Each INPUTS_DIR/NAME.npy is bound to input NAME; the outputs go to OUTPUT_DIR
(what lit's shell, which has no globs, cannot spell).
"""
import os
import subprocess
import sys


def main():
    peft_run, artifact, inputs, output = sys.argv[1:5]
    command = [peft_run, artifact, "--output-dir", output]
    for name in sorted(os.listdir(inputs)):
        if name.endswith(".npy"):
            command += ["--input", f"{name[:-4]}={os.path.join(inputs, name)}"]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
