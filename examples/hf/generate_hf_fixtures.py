#!/usr/bin/env python3
"""Generates end-to-end fixtures with the real Hugging Face libraries:
tiny transformers models exported to ONNX, adapters made and saved by PEFT,
and PEFT's own outputs as references.

Run with the interpreter of the virtual environment scripts/setup.sh makes
(Debian's torch 1.13 + transformers 4.46.3, peft 0.14.0 from PyPI):
    build/hf-venv/bin/python examples/hf/generate_hf_fixtures.py [MODEL...]

It rewrites examples/hf-models/<model>/ for each model (all of them when none
is named); the output is deterministic (fixed seeds, one thread), so running
it again changes no file.

Models (random init, fixed seed, weights of std 0.1 so that outputs are not
degenerate; eager attention, use_cache=False):
  bert              BertModel, 512 positions (so the [1, 512] position_ids
                    buffer is in the export as a Constant; the token_type_ids
                    buffer is not: token_type_ids is an input); inputs
                    input_ids, attention_mask, token_type_ids; outputs
                    last_hidden_state, pooler_output
  gpt2              GPT2Model, 64 positions (the [1, 1, 64, 64] causal-mask
                    buffer is in the export as a Constant); inputs input_ids,
                    attention_mask, position_ids; output last_hidden_state
  llama             LlamaModel (grouped-query attention: 4 heads, 2 key/value
                    heads; the padding is written into the causal mask by a
                    ScatterND); inputs input_ids, attention_mask, position_ids;
                    output last_hidden_state
  llama-causal-lm   LlamaForCausalLM; inputs input_ids, attention_mask;
                    output logits. Also model-raw.onnx: the same model exported
                    straight, as users do, which makes its num_logits_to_keep
                    argument a graph input (an int64 scalar: the logits of
                    the last N positions, all of them for 0), with
                    base-last/ and base2-last/ its logits for N = 1
  vit               ViTModel (16x16 images, 4x4 patches); input pixel_values;
                    outputs last_hidden_state, pooler_output

Layout of examples/hf-models/<model>/:
  model.onnx                torch.onnx.export of the base model, opset 17,
                            dynamic axes `batch` (and `sequence` for text)
  inputs/<input>.npy        batch 2 x sequence 8 (vision: batch 2); row 1 of
                            attention_mask ends in padding (zeros)
  inputs2/<input>.npy       batch 3 x sequence 5 (vision: batch 3); row 2 is
                            padded: the same artifact runs both shapes
  base/, base2/             the base model's outputs on inputs/, inputs2/
  adapters/<case>/          what PeftModel.save_pretrained wrote
                            (adapter_config.json, adapter_model.safetensors;
                            the model card README.md is not written). Where
                            the adapter is not named `default`, PEFT saves it
                            in a subdirectory named after it:
                            adapters/two-adapters/first/ and .../second/,
                            adapters/combo/combo/
  expected/<case>/, expected2/<case>/
                            PEFT's forward on inputs/ and inputs2/: the saved
                            adapter(s) loaded back onto a fresh copy of the
                            base model (PeftModel.from_pretrained, then
                            load_adapter for a second one), eval mode,
                            unmerged, all of the case's adapters active
  rows/<case>/adapter_index.npy, rows2/<case>/adapter_index.npy
                            for a mixed-batch case: each row's adapter,
                            as its index among the case's adapters (-1:
                            none), which expected/<case>/ used
  cases.json                each case: its adapter directories (relative to
                            the model's directory) with the names to give
                            them (`peftc --adapter DIR=NAME`), its method and
                            what it covers

Before saving, every adapter tensor is perturbed with seeded noise (lora_B,
LoHa's hada_w2_b and the like are zero at init, DoRA magnitudes equal the
weight norms, IA3 vectors are 1), and so are the parameters PEFT saves whole
(modules_to_save copies, trainable biases, the embedding layers saved with
save_embedding_layers="auto"), so each adapter changes the output. The
generator checks that PEFT's forward of the reloaded adapter equals the one
of the model it saved, except where PEFT 0.14 itself does not save what it
trained (bias="lora_only": the trained biases are not written, see
KNOWN_UNSAVED), and that every case changes the outputs by more than 1e-2.
"""
import copy
import json
import os
import shutil
import sys

import numpy as np
import torch

from peft import (IA3Config, LoHaConfig, LoKrConfig, LoraConfig, PeftModel,
                  get_peft_model)
from transformers import (BertConfig, BertModel, GPT2Config, GPT2Model, LlamaConfig,
                          LlamaForCausalLM, LlamaModel, ViTConfig, ViTModel)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(os.path.dirname(HERE), "hf-models")

# The model card needs Jinja2 and is not part of the adapter; skip it.
PeftModel.create_or_update_model_card = lambda self, output_dir: None

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# Cases whose saved adapter is known to differ from the model that saved it:
# PEFT 0.14 trains the adapted layers' biases with bias="lora_only" but its
# get_peft_model_state_dict looks them up as `<module>.bias` rather than
# `<module>.base_layer.bias`, so none is saved.
KNOWN_UNSAVED = {("bert", "bias-lora-only")}


# --- base models -------------------------------------------------------------

def text_inputs(seed, batch, sequence, vocab, pad_row, pad_from, token_types=False,
                position_ids=False):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, sequence), generator=g)
    mask = torch.ones(batch, sequence, dtype=torch.long)
    mask[pad_row, pad_from:] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    if token_types:
        types = torch.zeros(batch, sequence, dtype=torch.long)
        types[:, sequence // 2:] = 1
        inputs["token_type_ids"] = types
    if position_ids:
        # As generate() computes them: positions count the attended tokens.
        inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    return inputs


def image_inputs(seed, batch):
    g = torch.Generator().manual_seed(seed)
    return {"pixel_values": torch.randn(batch, 3, 16, 16, generator=g)}


def make_bert():
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, type_vocab_size=2,
                        initializer_range=0.1)
    return BertModel(config)


def make_gpt2():
    config = GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                        initializer_range=0.1)
    return GPT2Model(config)


def llama_config():
    return LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                       initializer_range=0.1)


def make_vit():
    config = ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32,
                       num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       initializer_range=0.1)
    return ViTModel(config)


def settle(model):
    """What every export shares: eager attention, tuples out, no cache."""
    model.config._attn_implementation = "eager"
    model.config.return_dict = False
    model.config.use_cache = False
    return model.eval()


MODELS = {
    "bert": dict(make=make_bert, seed=1,
                 inputs=lambda: text_inputs(11, 2, 8, 64, 1, 5, token_types=True),
                 inputs2=lambda: text_inputs(12, 3, 5, 64, 2, 3, token_types=True),
                 outputs=["last_hidden_state", "pooler_output"]),
    "gpt2": dict(make=make_gpt2, seed=2,
                 inputs=lambda: text_inputs(21, 2, 8, 64, 1, 5, position_ids=True),
                 inputs2=lambda: text_inputs(22, 3, 5, 64, 2, 3, position_ids=True),
                 outputs=["last_hidden_state"]),
    "llama": dict(make=lambda: LlamaModel(llama_config()), seed=3,
                  inputs=lambda: text_inputs(31, 2, 8, 64, 1, 5, position_ids=True),
                  inputs2=lambda: text_inputs(32, 3, 5, 64, 2, 3, position_ids=True),
                  outputs=["last_hidden_state"]),
    "llama-causal-lm": dict(make=lambda: LlamaForCausalLM(llama_config()), seed=4,
                            inputs=lambda: text_inputs(41, 2, 8, 64, 1, 5),
                            inputs2=lambda: text_inputs(42, 3, 5, 64, 2, 3),
                            outputs=["logits"], raw_export="num_logits_to_keep"),
    "vit": dict(make=make_vit, seed=5,
                inputs=lambda: image_inputs(51, 2), inputs2=lambda: image_inputs(52, 3),
                outputs=["last_hidden_state", "pooler_output"]),
}


def build_base(name):
    spec = MODELS[name]
    torch.manual_seed(spec["seed"])
    return settle(spec["make"]())


def dynamic_axes(input_names, output_names, vision):
    axes = {}
    for n in input_names + output_names:
        two_d = n in ("pooler_output",)
        axes[n] = {0: "batch"} if vision or two_d else {0: "batch", 1: "sequence"}
    return axes


def export(model, inputs, output_names, path, vision):
    """torch.onnx.export of the model itself (no wrapper module, so the
    module paths stay the model's), its forward narrowed for the export to
    the inputs given: otherwise torch makes graph inputs of other arguments
    (LlamaForCausalLM's num_logits_to_keep)."""
    names = list(inputs)
    full = type(model).forward

    def narrowed(*args):
        return full(model, **dict(zip(names, args)))

    model.forward = narrowed
    try:
        with torch.no_grad():
            torch.onnx.export(model, tuple(inputs[n] for n in names), path, opset_version=17,
                              input_names=names, output_names=output_names,
                              dynamic_axes=dynamic_axes(names, output_names, vision),
                              do_constant_folding=True)
    finally:
        del model.forward


def export_raw(model, inputs, extra_input, output_names, path):
    """torch.onnx.export of the model's own forward with keyword inputs: torch
    turns the integer argument `extra_input` (left at its default) into a
    graph input after the tensors."""
    names = list(inputs) + [extra_input]
    with torch.no_grad():
        torch.onnx.export(model, (dict(inputs),), path, opset_version=17, input_names=names,
                          output_names=output_names,
                          dynamic_axes=dynamic_axes(list(inputs), output_names, False),
                          do_constant_folding=True)


def mixed_forward(model, inputs, output_names, adapter_names):
    """Each row as PEFT computes it with that row's adapter active alone
    ("__base__": with adapters disabled). PEFT's own mixed-batch forward
    (`adapter_names=`) needs torch 2's keyword forward hooks; this is what it
    computes, row by row."""
    by_adapter = {}
    for name in set(adapter_names):
        if name == "__base__":
            with model.disable_adapter():
                by_adapter[name] = forward(model, inputs, output_names)
        else:
            model.base_model.set_adapter(name)
            by_adapter[name] = forward(model, inputs, output_names)
    return {n: np.stack([by_adapter[name][n][i] for i, name in enumerate(adapter_names)])
            for n in output_names}


def forward(model, inputs, output_names):
    with torch.no_grad():
        out = model(**inputs)
    if not isinstance(out, (tuple, list)):
        out = (out,)
    assert len(out) >= len(output_names), (len(out), output_names)
    return {n: out[i].detach().numpy().astype(np.float32) for i, n in enumerate(output_names)}


def save_npys(directory, arrays):
    os.makedirs(directory, exist_ok=True)
    for name, value in arrays.items():
        np.save(os.path.join(directory, name + ".npy"), np.ascontiguousarray(value))


# --- adapters ----------------------------------------------------------------

ADAPTER_TAGS = ("lora_", "ia3_l", "hada_", "lokr_", "modules_to_save.")


def perturb(model, seed, extra=()):
    """Seeded noise on every adapter tensor, every parameter PEFT made
    trainable (biases with bias="all"/"lora_only", modules_to_save copies) and
    the parameters named in `extra` (saved whole by save_embedding_layers)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not (p.requires_grad or any(t in name for t in ADAPTER_TAGS)
                    or any(name.endswith(e) for e in extra)):
                continue
            noise = torch.randn(p.shape, generator=g)
            if "lora_magnitude_vector" in name:
                p.mul_(1 + 0.3 * noise)
            elif "ia3_l" in name:
                p.add_(0.3 * noise)
            elif not p.any():
                p.copy_(0.3 * noise)
            else:
                p.add_(0.3 * p.std() * noise)


def lora(**kw):
    kw.setdefault("r", 4)
    kw.setdefault("lora_alpha", 8)
    return LoraConfig(**kw)


def single(config, extra=()):
    """A case of one adapter named `default`, saved at adapters/<case>/."""
    def build(base, seed):
        torch.manual_seed(seed)
        model = get_peft_model(base, config)
        perturb(model, seed, extra)
        return model

    def save(model, directory):
        model.save_pretrained(directory)
        return [("", "default")]

    def load(base, directory):
        return PeftModel.from_pretrained(base, directory)

    return dict(build=build, save=save, load=load)


def two_adapters():
    """Adapters `first` (r 4) and `second` (r 2) on the same modules, both
    active. (PEFT strips ".<name>" from every key on save and keeps the keys
    that contain the name: a name like "a" would mangle ".attention".)"""
    def build(base, seed):
        torch.manual_seed(seed)
        model = get_peft_model(base, lora(target_modules=["query", "value", "intermediate.dense"]),
                               adapter_name="first")
        model.add_adapter("second", lora(r=2, lora_alpha=6, target_modules=["query", "value",
                                                                          "intermediate.dense"]))
        perturb(model, seed)
        model.base_model.set_adapter(["first", "second"])
        return model

    def save(model, directory):
        model.save_pretrained(directory)
        return [("first", "first"), ("second", "second")]

    def load(base, directory):
        model = PeftModel.from_pretrained(base, os.path.join(directory, "first"),
                                         adapter_name="first")
        model.load_adapter(os.path.join(directory, "second"), adapter_name="second")
        model.base_model.set_adapter(["first", "second"])
        return model

    return dict(build=build, save=save, load=load)


def combo():
    """Adapters first and second combined by add_weighted_adapter(..., "cat") into one
    adapter of rank 6, saved and loaded alone."""
    inner = two_adapters()

    def build(base, seed):
        model = inner["build"](base, seed)
        model.add_weighted_adapter(["first", "second"], [0.7, 0.5], "combo", combination_type="cat")
        model.set_adapter("combo")
        return model

    def save(model, directory):
        model.save_pretrained(directory, selected_adapters=["combo"])
        return [("combo", "combo")]

    def load(base, directory):
        return PeftModel.from_pretrained(base, os.path.join(directory, "combo"),
                                         adapter_name="combo")

    return dict(build=build, save=save, load=load)


def mixed_ranks():
    """Adapters r4, r16 (rsLoRA) and r64 on overlapping modules, for batches
    whose rows use different ones (mixed_forward: each row with its adapter
    active in PEFT, "__base__" for none)."""
    adapters = [("r4", lora(r=4, lora_alpha=8, target_modules=["query", "value",
                                                                "intermediate.dense"])),
                ("r16", lora(r=16, lora_alpha=16, use_rslora=True,
                             target_modules=["query", "key", "output.dense"])),
                ("r64", lora(r=64, lora_alpha=32, target_modules=["query", "value",
                                                                  "intermediate.dense",
                                                                  "output.dense"]))]

    def build(base, seed):
        torch.manual_seed(seed)
        model = get_peft_model(base, adapters[0][1], adapter_name=adapters[0][0])
        for name, config in adapters[1:]:
            model.add_adapter(name, config)
        perturb(model, seed)
        return model

    def save(model, directory):
        model.save_pretrained(directory)
        return [(name, name) for name, _ in adapters]

    def load(base, directory):
        model = PeftModel.from_pretrained(base, os.path.join(directory, adapters[0][0]),
                                         adapter_name=adapters[0][0])
        for name, _ in adapters[1:]:
            model.load_adapter(os.path.join(directory, name), adapter_name=name)
        return model

    # Each row's adapter, for inputs/ (2 rows) and inputs2/ (3 rows).
    rows = {1: ["r64", "__base__"], 2: ["r4", "r16", "r64"]}
    return dict(build=build, save=save, load=load, rows=rows)


LLAMA_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# (model, case, method, what it covers, maker)
CASES = [
    # BERT: LoRA's options.
    ("bert", "lora-patterns", "LoRA",
     "query/key/value/dense (dense also matches the pooler's Gemm), rank_pattern and alpha_pattern",
     single(lora(target_modules=["query", "key", "value", "dense"],
                 rank_pattern={"query": 2, "encoder.layer.1.output.dense": 6},
                 alpha_pattern={"value": 16, "pooler.dense": 2}))),
    ("bert", "lora-rslora-layers", "LoRA",
     "use_rslora, layers_to_transform [1] with layers_pattern 'layer'",
     single(lora(r=8, lora_alpha=8, use_rslora=True, layers_to_transform=[1], layers_pattern="layer",
                 target_modules=["query", "value", "intermediate.dense"]))),
    ("bert", "lora-regex", "LoRA",
     "target_modules as a regex string (full match: not attention.output.dense)",
     single(lora(target_modules=r".*\.layer\.\d+\.(attention\.self\.(query|key)|output\.dense)"))),
    ("bert", "lora-bias", "LoRA", "lora_bias=True (lora_B.bias)",
     single(lora(target_modules=["query", "value", "output.dense"], lora_bias=True))),
    ("bert", "bias-all", "LoRA",
     "bias='all': every bias of the model saved (linear, LayerNorm, pooler)",
     single(lora(target_modules=["query", "value"], bias="all"))),
    ("bert", "bias-lora-only", "LoRA",
     "bias='lora_only' (PEFT 0.14 saves no bias: plain LoRA on disk)",
     single(lora(target_modules=["key", "intermediate.dense"], bias="lora_only"))),
    ("bert", "pooler-save", "LoRA",
     "modules_to_save=['pooler'] (a container: pooler.dense.weight/bias saved)",
     single(lora(target_modules=["query", "value"], modules_to_save=["pooler"]))),
    ("bert", "embedding-lora", "LoRA",
     "LoRA on word_embeddings (lora_embedding_A/B) and query",
     single(lora(target_modules=["word_embeddings", "query"]))),
    ("bert", "dora", "DoRA", "use_dora on biased linears",
     single(lora(target_modules=["query", "value", "intermediate.dense"], use_dora=True))),
    ("bert", "ia3", "IA3",
     "PEFT's default BERT targets: key, value, output.dense (feed-forward)",
     single(IA3Config(target_modules=["key", "value", "output.dense"],
                      feedforward_modules=["output.dense"]))),
    ("bert", "two-adapters", "LoRA", "two LoRA adapters (first, second) on the same modules, both active",
     two_adapters()),
    ("bert", "combo", "LoRA",
     "add_weighted_adapter([first, second], [0.7, 0.5], combination_type='cat') saved as one adapter",
     combo()),
    ("bert", "mixed-ranks", "LoRA",
     "adapters of ranks 4, 16 (rsLoRA) and 64 on overlapping modules, each row of a batch "
     "with its own (rows/, rows2/ hold each row's adapter index)",
     mixed_ranks()),
    # GPT-2: Conv1D layers, weights stored [in, out].
    ("gpt2", "lora-fan-in-fan-out", "LoRA", "fan_in_fan_out on Conv1D c_attn, c_proj, c_fc",
     single(lora(target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True))),
    ("gpt2", "dora-fan-in-fan-out", "DoRA", "use_dora with fan_in_fan_out on c_attn, mlp.c_proj",
     single(lora(target_modules=["c_attn", "mlp.c_proj"], fan_in_fan_out=True, use_dora=True))),
    ("gpt2", "ia3", "IA3",
     "PEFT's default GPT-2 targets: c_attn, mlp.c_proj (feed-forward), fan_in_fan_out",
     single(IA3Config(target_modules=["c_attn", "mlp.c_proj"], feedforward_modules=["mlp.c_proj"],
                      fan_in_fan_out=True))),
    # LLaMA.
    ("llama", "lora-all-linear", "LoRA", "target_modules='all-linear' (saved as the list)",
     single(lora(target_modules="all-linear"))),
    ("llama", "embedding-lora", "LoRA",
     "LoRA on embed_tokens: save_embedding_layers='auto' also saves "
     "embed_tokens.base_layer.weight",
     single(lora(target_modules=["embed_tokens", "q_proj", "v_proj"]),
            extra=("embed_tokens.base_layer.weight",))),
    ("llama", "dora", "DoRA", "use_dora on every linear",
     single(lora(target_modules=LLAMA_LINEARS, use_dora=True))),
    ("llama", "ia3", "IA3", "PEFT's default LLaMA targets: k_proj, v_proj, down_proj (feed-forward)",
     single(IA3Config(target_modules=["k_proj", "v_proj", "down_proj"],
                      feedforward_modules=["down_proj"]))),
    ("llama", "loha", "LoHa", "LoHa on q_proj, v_proj, up_proj",
     single(LoHaConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]))),
    # r 3 with decompose_both: w1 is decomposed where it is large enough
    # (gate_proj's [8, 4]: lokr_w1_a/b) and kept whole elsewhere ([4, 4]).
    ("llama", "lokr", "LoKr", "LoKr with decompose_both: lokr_w1 or lokr_w1_a/b, lokr_w2_a/b",
     single(LoKrConfig(r=3, alpha=6, decompose_both=True,
                       target_modules=["q_proj", "o_proj", "gate_proj"]))),
    # PEFT 0.14 finds a layer index only after a dotted component
    # (".layers.<n>."), so layers_pattern needs LlamaForCausalLM's
    # model.layers.<n> (LlamaModel's layers.<n> never matches).
    ("llama-causal-lm", "lora-layers", "LoRA", "layers_to_transform [0] with layers_pattern 'layers'",
     single(lora(target_modules=["q_proj", "v_proj", "down_proj"], layers_to_transform=[0],
                 layers_pattern="layers"))),
    ("llama-causal-lm", "lm-head-save", "LoRA", "modules_to_save=['lm_head']",
     single(lora(target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"]))),
    ("llama-causal-lm", "embedding-lm-head-lora", "LoRA",
     "LoRA on embed_tokens and lm_head: both base layers saved (save_embedding_layers='auto')",
     single(lora(target_modules=["embed_tokens", "lm_head", "q_proj"]),
            extra=("embed_tokens.base_layer.weight", "lm_head.base_layer.weight"))),
    # ViT: the patch embedding is a Conv2d.
    ("vit", "conv-lora", "LoRA", "LoRA on patch_embeddings.projection (Conv2d 4x4/4) and query/value",
     single(lora(target_modules=["projection", "query", "value"]))),
    ("vit", "conv-dora", "DoRA", "use_dora on the Conv2d projection and query",
     single(lora(target_modules=["projection", "query"], use_dora=True))),
    ("vit", "conv-ia3", "IA3", "IA3 on the Conv2d projection, key, value, output.dense (feed-forward)",
     single(IA3Config(target_modules=["projection", "key", "value", "output.dense"],
                      feedforward_modules=["output.dense"]))),
    ("vit", "conv-loha", "LoHa", "LoHa on the projection (conv: hada_w1_b/w2_b [r, in*k*k]) and query",
     single(LoHaConfig(r=4, alpha=8, target_modules=["projection", "query"]))),
    ("vit", "conv-lokr", "LoKr",
     "LoKr on the projection (conv: lokr_w2_b [r, in*k*k]), value (lokr_w2_a/b) and, "
     "with rank_pattern, query (rank 4: a whole lokr_w2)",
     single(LoKrConfig(r=2, alpha=4, rank_pattern={"query": 4}, alpha_pattern={"query": 2},
                       target_modules=["projection", "query", "value"]))),
    # use_effective_conv2d: the conv factors in CP form (a core tensor).
    ("vit", "conv-loha-cp", "LoHa",
     "LoHa with use_effective_conv2d on the projection (hada_t1/t2 [r, r, k, k]) and query",
     single(LoHaConfig(r=4, alpha=8, use_effective_conv2d=True,
                       target_modules=["projection", "query"]))),
    ("vit", "conv-lokr-cp", "LoKr",
     "LoKr with use_effective_conv2d on the projection (lokr_t2 [r, r, k, k]) and value",
     single(LoKrConfig(r=2, alpha=4, use_effective_conv2d=True,
                       target_modules=["projection", "value"]))),
]


def close(a, b, tol=1e-5):
    return all(np.abs(a[k] - b[k]).max() <= tol * max(1.0, np.abs(b[k]).max()) for k in a)


def generate(model_name):
    spec = MODELS[model_name]
    directory = os.path.join(ROOT, model_name)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    base = build_base(model_name)
    vision = model_name == "vit"
    inputs = {1: spec["inputs"](), 2: spec["inputs2"]()}
    suffix = {1: "", 2: "2"}
    outputs = spec["outputs"]
    export(base, inputs[1], outputs, os.path.join(directory, "model.onnx"), vision)
    base_out = {}
    for k in (1, 2):
        save_npys(os.path.join(directory, "inputs" + suffix[k]),
                  {n: t.numpy() for n, t in inputs[k].items()})
        base_out[k] = forward(base, inputs[k], outputs)
        save_npys(os.path.join(directory, "base" + suffix[k]), base_out[k])
    if "raw_export" in spec:
        extra = spec["raw_export"]
        export_raw(base, inputs[1], extra, outputs, os.path.join(directory, "model-raw.onnx"))
        for k in (1, 2):
            save_npys(os.path.join(directory, "base" + suffix[k] + "-last"),
                      forward(base, dict(inputs[k], **{extra: 1}), outputs))
    cases = []
    for index, (m, case, method, covers, maker) in enumerate(CASES):
        if m != model_name:
            continue
        seed = 1000 + index
        model = maker["build"](copy.deepcopy(base), seed).eval()
        adapter_dir = os.path.join(directory, "adapters", case)
        saved = maker["save"](model, adapter_dir)
        reloaded = maker["load"](copy.deepcopy(base), adapter_dir).eval()
        for k in (1, 2):
            rows = maker.get("rows", {}).get(k)
            run = (lambda m: mixed_forward(m, inputs[k], outputs, rows)) if rows else \
                (lambda m: forward(m, inputs[k], outputs))
            expected, in_memory = run(reloaded), run(model)
            if rows:
                # The slot of each row's adapter, in the order the case lists them.
                order = [name for _, name in saved]
                index = np.array([-1 if r == "__base__" else order.index(r) for r in rows],
                                 dtype=np.int64)
                save_npys(os.path.join(directory, "rows" + suffix[k], case),
                          {"adapter_index": index})
            if not close(expected, in_memory) and (model_name, case) not in KNOWN_UNSAVED:
                sys.exit(f"{model_name}/{case}: the reloaded adapter computes another result")
            change = min(float(np.abs(expected[n] - base_out[k][n]).max()) for n in outputs)
            if change <= 1e-2:
                sys.exit(f"{model_name}/{case}: the adapter changes the outputs by {change:.3g} only")
            save_npys(os.path.join(directory, "expected" + suffix[k], case), expected)
        print(f"{model_name}/{case}: {method}, changes the outputs by {change:.3g}")
        cases.append({"case": case, "method": method, "covers": covers,
                      "adapters": [{"dir": os.path.join("adapters", case, sub) if sub else
                                    os.path.join("adapters", case), "name": name}
                                   for sub, name in saved]})
    with open(os.path.join(directory, "cases.json"), "w") as f:
        json.dump({"model": model_name, "inputs": list(inputs[1]), "outputs": outputs,
                   "cases": cases}, f, indent=2)
        f.write("\n")


def main():
    # PEFT writes sets (target_modules, ...) as lists in iteration order,
    # which depends on the hash seed: fix it, so that the configs are the
    # same on every run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    names = sys.argv[1:] or list(MODELS)
    for name in names:
        if name not in MODELS:
            sys.exit(f"unknown model {name}; known: {', '.join(MODELS)}")
        generate(name)


if __name__ == "__main__":
    main()
