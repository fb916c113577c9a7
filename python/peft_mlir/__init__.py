"""peft-mlir from Python: compile ONNX models with Hugging Face PEFT adapters, run the
artifacts, load adapters at run time. The compiler and the runtime run in this process
(the extension _peft_mlir), not as subprocesses. docs/python.md shows the whole API.

    import peft_mlir
    peft_mlir.compile("model.onnx", adapters=["lora-dir"], mode="merge", output="out")
    model = peft_mlir.load("out")
    outputs = model.run(input_ids=ids, attention_mask=mask)   # dict of numpy arrays

Every failure raises PeftError with the one-line message peftc would print.
"""
import os
import warnings

import numpy as np

from ._peft_mlir import PeftError, get_num_threads, set_num_threads
from . import _peft_mlir

__all__ = ["PeftError", "Model", "compile", "compile_peft", "load", "get_num_threads",
           "set_num_threads"]


def _adapter_spec(adapter):
    """"DIR", ("DIR", "NAME") or ("DIR", "NAME", WEIGHT) as peftc's DIR[=NAME][:WEIGHT]."""
    if isinstance(adapter, (str, os.PathLike)):
        return os.fspath(adapter)
    if not isinstance(adapter, (tuple, list)) or not 1 <= len(adapter) <= 3:
        raise PeftError(f"an adapter is a directory, (directory, name) or (directory, name, "
                        f"weight), not {adapter!r}")
    directory, name, weight = (list(adapter) + [None, None])[:3]
    spec = os.fspath(directory)
    if name:
        spec += f"={name}"
    if weight is not None:
        spec += f":{float(weight)!r}"
    return spec


def compile(model, adapters=(), *, output, mode=None, target="cpu", emit="artifact",
            max_adapters=0, max_rank=0, slot_modules=(), slot_methods=(), combine=None,
            combine_rank=0, insert=(), seed=0, gpu_arch=None, gpu_gemm_tiles=None,
            summary=False):
    """Compiles `model` (an ONNX file) with `adapters` as peftc does (the README's
    "Tools" has each option: `max_adapters` is --max-adapters, ...) into `output`,
    which appears whole or not at all. Returns `output`; with summary=True, prints the table of
    adapted modules first."""
    options = _peft_mlir.CompileOptions()
    options.model = os.fspath(model)
    options.adapters = [_adapter_spec(a) for a in adapters]
    options.insert = [os.fspath(i) if not isinstance(i, (tuple, list)) else
                      f"{os.fspath(i[0])}={i[1]}" for i in insert]
    options.seed = seed
    options.mode = mode or ""
    options.max_adapters = max_adapters
    options.max_rank = max_rank
    options.slot_modules = list(slot_modules)
    options.slot_methods = list(slot_methods)
    options.combine = combine or ""
    options.combine_rank = combine_rank
    options.target = target
    options.gpu_arch = gpu_arch or ""
    options.gpu_gemm_tiles = gpu_gemm_tiles or ""
    options.emit = emit
    options.output = os.fspath(output)
    options.summary = summary
    text, compile_warnings = _peft_mlir.compile(options)
    for warning in compile_warnings:
        warnings.warn(warning, stacklevel=2)
    if summary:
        print(text, end="")
    return os.fspath(output)


def _bfloat16_bits(array):
    """float32 values as bfloat16 bits (round to nearest even), for bf16 inputs."""
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


class Model:
    """A compiled artifact, loaded. One Model may run on several threads at once (each
    run has its own session); loading adapters while runs go on is safe."""

    def __init__(self, directory):
        self._model = _peft_mlir.Model(os.fspath(directory))
        self.inputs = dict(self._model.inputs)   # name -> dtype name
        self.outputs = list(self._model.outputs)

    def run(self, inputs=None, **named):
        """Runs on numpy arrays (or anything np.asarray takes: CPU torch tensors), given
        as a dict or as keywords; returns a dict of numpy arrays. Arrays already of the
        input's dtype and C-contiguous are read in place; outputs are not copied."""
        arrays = dict(inputs or {}, **named)
        converted = {}
        for name, value in arrays.items():
            dtype = self.inputs.get(name)
            if dtype is None:
                raise PeftError(f"the model has no input '{name}' (its inputs: "
                                f"{', '.join(self.inputs)})")
            if dtype == "bfloat16":
                converted[name] = _bfloat16_bits(value)
            else:
                converted[name] = np.ascontiguousarray(value, dtype=dtype)
        return self._model.run(converted)

    def load_adapter(self, slot, directory):
        """Loads the PEFT adapter in `directory` into slot `slot` of a --mode multi
        artifact: rows whose adapter_index is `slot` use it from the next run."""
        self._model.load_adapter(slot, os.fspath(directory))

    def unload_adapter(self, slot):
        self._model.unload_adapter(slot)

    def free_adapter_slot(self):
        """The lowest slot no adapter holds, or None."""
        return self._model.free_adapter_slot()


def load(directory):
    """Loads the artifact in `directory` (peftc's or compile()'s output)."""
    return Model(directory)


from ._peft_models import compile_peft  # noqa: E402  (needs compile above)
