"""compile_peft: an in-memory PeftModel (transformers + peft) to an artifact. The base
model goes to ONNX through torch.onnx.export, the adapters to disk through PEFT's own
save_pretrained, and both through compile() as files, so the compile sees exactly what
a user of peftc would give it."""
import copy
import os
import tempfile


def _settled(model):
    """What an export wants of a transformers model: eager attention, tuples out,
    no key/value cache."""
    config = getattr(model, "config", None)
    if config is not None:
        config._attn_implementation = "eager"
        config.use_cache = False
    return model.eval()


def _output_names(model, inputs):
    """The names of the model's outputs on `inputs`, in the order its tuples take."""
    import torch
    with torch.no_grad():
        out = model(**inputs, return_dict=True)
    if hasattr(out, "keys"):
        return [name for name in out.keys()]
    count = len(out) if isinstance(out, (tuple, list)) else 1
    return [f"output_{i}" for i in range(count)]


def _export(model, inputs, output_names, path, opset):
    """torch.onnx.export of the model itself (so that the ONNX graph's node names keep
    the module paths PEFT's adapters name), its forward narrowed to `inputs`: batch and
    sequence dimensions stay dynamic."""
    import torch
    names = list(inputs)
    full = type(model).forward

    def narrowed(*args):
        return full(model, **dict(zip(names, args)), return_dict=False)

    axes = {}
    for name, value in inputs.items():
        integer = not torch.is_floating_point(value)
        axes[name] = {0: "batch", 1: "sequence"} if integer and value.dim() >= 2 else {0: "batch"}
    for name in output_names:
        axes[name] = {0: "batch"}
    model.forward = narrowed
    try:
        with torch.no_grad():
            torch.onnx.export(model, tuple(inputs[n] for n in names), path, opset_version=opset,
                              input_names=names, output_names=output_names,
                              dynamic_axes=axes, do_constant_folding=True)
    finally:
        del model.forward


def compile_peft(peft_model, example_inputs, *, output, mode="merge", adapters=None,
                 target="cpu", work_dir=None, opset=17, **options):
    """Compiles an in-memory `peft.PeftModel`: its base model is exported to ONNX with
    `example_inputs` (a dict of tensors, as the model's forward takes them; their batch
    and sequence sizes stay free), its adapters saved with save_pretrained, and both
    compiled with compile(mode=..., target=..., **options) into `output`.

    `adapters` names the adapters to compile; by default the active ones (mode merge or
    fuse), or every adapter the model holds, in slots 0, 1, ... (mode multi). The files
    go to a temporary directory, or to `work_dir` if given (model.onnx, adapters/)."""
    from . import PeftError, compile
    try:
        import torch  # noqa: F401
        from peft import PeftModel
    except ImportError as error:
        raise PeftError(f"compile_peft needs torch and peft: {error}") from None
    if not isinstance(peft_model, PeftModel):
        raise PeftError(f"compile_peft takes a peft.PeftModel, not {type(peft_model).__name__}")
    if not isinstance(example_inputs, dict) or not example_inputs:
        raise PeftError("compile_peft's example_inputs is a dict of the forward's tensors "
                        "(input_ids=..., attention_mask=...)")
    if adapters is None:
        adapters = (list(peft_model.peft_config) if mode == "multi"
                    else list(peft_model.active_adapters))
    missing = [name for name in adapters if name not in peft_model.peft_config]
    if missing:
        raise PeftError(f"the PeftModel has no adapter '{missing[0]}' (it has: "
                        f"{', '.join(peft_model.peft_config)})")

    with tempfile.TemporaryDirectory(prefix="peft-mlir-") as scratch:
        directory = os.fspath(work_dir) if work_dir is not None else scratch
        os.makedirs(directory, exist_ok=True)
        adapter_root = os.path.join(directory, "adapters")
        specs = [(adapter_root if name == "default" else os.path.join(adapter_root, name), name)
                 for name in adapters]
        # save_pretrained updates the model card in adapter_root; without one to
        # update it renders a template, which needs Jinja2 (not a dependency of
        # transformers or peft).
        os.makedirs(adapter_root, exist_ok=True)
        card = os.path.join(adapter_root, "README.md")
        if not os.path.exists(card):
            with open(card, "w") as f:
                f.write("---\nlibrary_name: peft\n---\n")
        peft_model.save_pretrained(adapter_root, selected_adapters=list(adapters))

        # The base model alone: a copy with the adapter layers taken out, unmerged.
        base = copy.deepcopy(peft_model)
        unload = getattr(base.base_model, "unload", None)
        if unload is None:
            kind = type(peft_model.base_model).__name__
            raise PeftError(f"compile_peft takes adapters of PEFT's tuners (LoRA, IA3, ...), "
                            f"not {kind}")
        base = _settled(unload())
        model_path = os.path.join(directory, "model.onnx")
        _export(base, example_inputs, _output_names(base, example_inputs), model_path, opset)
        del base
        return compile(model_path, specs, output=output, mode=mode, target=target, **options)
