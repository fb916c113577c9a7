#!/usr/bin/env python3
"""Builds an ONNX model from ONNX's textual syntax, for importer tests.

    onnx_from_text.py TEST_FILE OUT.onnx

Lines of TEST_FILE that start with '#' (lit's RUN and FileCheck lines) are
dropped; the rest is parsed with onnx.parser and checked by onnx.checker.
Initializers written in the text become real initializers.
"""
import sys

import onnx
import onnx.checker
import onnx.parser


def main():
    source, output = sys.argv[1], sys.argv[2]
    with open(source) as f:
        text = "".join(line for line in f if not line.lstrip().startswith("#"))
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model)
    onnx.save(model, output)


if __name__ == "__main__":
    main()
