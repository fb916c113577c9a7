#!/usr/bin/env python3
"""Builds an ONNX model from ONNX's textual syntax, for importer tests.

    onnx_from_text.py TEST_FILE OUT.onnx

Lines of TEST_FILE that start with '#' (lit's RUN and FileCheck lines) are
dropped; the rest is parsed with onnx.parser and checked by onnx.checker
(when its opset is one ONNX 1.12 knows, 17 or below).
Initializers written in the text become real initializers.

ONNX 1.12's text syntax has no quoted names, so two directives give the
names torch writes:
  # onnx-rename: OLD NEW        renames a tensor everywhere (encoder.fc.bias)
  # onnx-node-name: INDEX NAME  names the INDEX-th node (/encoder/fc/MatMul)
A third, `# onnx-no-check`, skips the checker: for invalid models that
error tests feed to peftc.
"""
import sys

import onnx
import onnx.checker
import onnx.parser


def rename(graph, old, new):
    for tensor in list(graph.input) + list(graph.output) + list(graph.value_info):
        if tensor.name == old:
            tensor.name = new
    for tensor in graph.initializer:
        if tensor.name == old:
            tensor.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def main():
    source, output = sys.argv[1], sys.argv[2]
    with open(source) as f:
        lines = f.readlines()
    text = "".join(line for line in lines if not line.lstrip().startswith("#"))
    model = onnx.parser.parse_model(text)
    check = True
    for line in lines:
        directive, _, argument = line.lstrip("# ").partition(":")
        if directive == "onnx-rename":
            rename(model.graph, *argument.split())
        elif directive == "onnx-node-name":
            index, name = argument.split()
            model.graph.node[int(index)].name = name
        elif directive.strip() == "onnx-no-check":
            check = False
    # ONNX 1.12's checker knows opsets up to 17; newer models skip it.
    if check and max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 17:
        onnx.checker.check_model(model)
    onnx.save(model, output)


if __name__ == "__main__":
    main()
