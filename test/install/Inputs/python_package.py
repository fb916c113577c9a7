#!/usr/bin/env python3
"""The installed Python package (PREFIX/python on PYTHONPATH): it is the prefix's,
compiles in process (the archives model.so links found in PREFIX/lib) and runs the
artifact; its outputs equal DIR's (peft-run's, on the same model and inputs).

    python_package.py PREFIX MODEL.onnx ADAPTER INPUTS EXPECTED OUT
"""
import os
import sys

import numpy as np

import peft_mlir

prefix, model, adapter, inputs, expected, out = sys.argv[1:]
package = os.path.realpath(os.path.dirname(peft_mlir.__file__))
assert package.startswith(os.path.realpath(prefix)), package
print("package:", os.path.relpath(package, prefix))
compiled = peft_mlir.load(peft_mlir.compile(model, adapters=[adapter], output=out))
arrays = {n: np.load(os.path.join(inputs, n + ".npy")) for n in compiled.inputs}
for name, value in compiled.run(**arrays).items():
    want = np.load(os.path.join(expected, name + ".npy"))
    assert np.allclose(value, want, rtol=1e-6, atol=1e-6), name
    print(name + ": OK")
