#!/usr/bin/env python3
"""Checks that a document's marked code blocks are excerpts of tested files.

    check_doc_examples.py DOC.md --root DIR

A line `<!-- example: PATH -->` (PATH relative to DIR) marks the next code
block (indented four spaces) as an excerpt of PATH: each of its non-blank
lines must be a line of PATH (surrounding spaces ignored), in the same order.
So the examples a reader copies are the code the tests build and run.
Prints "N examples checked", or names the first line not found and exits 1.
"""
import argparse
import re
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("doc")
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    lines = open(args.doc).read().split("\n")
    checked = 0
    for at, line in enumerate(lines):
        marker = re.fullmatch(r"<!-- example: (\S+) -->", line.strip())
        if not marker:
            continue
        source = [l.strip() for l in open(f"{args.root}/{marker.group(1)}").read().split("\n")]
        block, i = [], at + 1
        while i < len(lines) and not lines[i].startswith("    "):
            i += 1  # The blank line before the block.
        while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
            if lines[i].strip():
                block.append((i + 1, lines[i].strip()))
            i += 1
        if not block:
            print(f"{args.doc}:{at + 1}: no code block after the marker")
            return 1
        position = 0
        for number, text in block:
            try:
                position = source.index(text, position) + 1
            except ValueError:
                print(f"{args.doc}:{number}: not in {marker.group(1)} (in this order): {text}")
                return 1
        checked += 1
    print(f"{checked} examples checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
