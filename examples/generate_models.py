#!/usr/bin/env python3
"""Generates the tiny models and adapters that the demo and the end-to-end
tests use, with reference outputs computed by torch.

Run with Debian's interpreter (it has torch 1.13, onnx and numpy):
    /usr/bin/python3 examples/generate_models.py

For each model it writes, under examples/models/<name>/:
  model.onnx              torch.onnx.export, opset 17, dynamic batch and sequence
  adapter/                a LoRA adapter exactly as Hugging Face PEFT saves it
                          (adapter_config.json + adapter_model.safetensors)
  inputs/<name>.npy       a batch of inputs
  expected/<output>.npy   torch's outputs with the adapter applied unmerged,
                          the way PEFT's LoRA layers compute them
  base/<output>.npy       torch's outputs of the base model alone
  batch5/                 inputs/ and expected/ again for a batch of 5 (and,
                          for the text models, another sequence length), which
                          the same compiled model must run (symbolic batch and
                          sequence)
The models mirror Hugging Face's BERT, GPT-2, LLaMA and ViT module names (and
torchvision's ResNet), so adapter keys look like the ones PEFT writes for them.
"""
import json
import math
import os
import re
import struct

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


# --- BERT-style encoder ------------------------------------------------------

class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def split(self, x):
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        context = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).contiguous()
        return context.view(context.size(0), context.size(1), -1)


class BertSelfOutput(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.self = BertSelfAttention(hidden, heads)
        self.output = BertSelfOutput(hidden)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))


class BertOutput(BertSelfOutput):
    def __init__(self, inner, hidden):
        nn.Module.__init__(self)
        self.dense = nn.Linear(inner, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, inner):
        super().__init__()
        self.attention = BertAttention(hidden, heads)
        self.intermediate = BertIntermediate(hidden, inner)
        self.output = BertOutput(inner, hidden)

    def forward(self, x, mask):
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, positions):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(2, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(positions).unsqueeze(0))

    def forward(self, input_ids):
        positions = self.position_ids[:, : input_ids.size(1)]
        types = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.LayerNorm(x + self.token_type_embeddings(types))


class BertEncoder(nn.Module):
    """A stack of `layer_type` layers (BERT's, or ViT's without a mask)."""

    def __init__(self, layers, *args, layer_type=None):
        super().__init__()
        self.layer = nn.ModuleList([(layer_type or BertLayer)(*args) for _ in range(layers)])

    def forward(self, x, *mask):
        for layer in self.layer:
            x = layer(x, *mask)
        return x


class BertPooler(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, vocab=96, hidden=32, layers=2, heads=4, inner=64, positions=16):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, hidden, positions)
        self.encoder = BertEncoder(layers, hidden, heads, inner)
        self.pooler = BertPooler(hidden)

    def forward(self, input_ids, attention_mask):
        mask = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        hidden = self.encoder(self.embeddings(input_ids), mask)
        return hidden, self.pooler(hidden)


# --- GPT-2-style decoder -----------------------------------------------------

class Conv1D(nn.Module):
    """GPT-2's linear layer: weight stored [in, out] (PEFT's fan_in_fan_out)."""

    def __init__(self, out_features, in_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) * 0.2)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)

    def forward(self, x):
        shape = x.size()[:-1] + (self.weight.size(1),)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(shape)


class GPT2Attention(nn.Module):
    def __init__(self, hidden, heads, positions):
        super().__init__()
        self.heads, self.head_dim, self.hidden = heads, hidden // heads, hidden
        self.c_attn = Conv1D(3 * hidden, hidden)
        self.c_proj = Conv1D(hidden, hidden)
        causal = torch.tril(torch.ones(positions, positions, dtype=torch.bool))
        self.register_buffer("bias", causal.view(1, 1, positions, positions))

    def split(self, x):
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x):
        q, k, v = self.c_attn(x).split(self.hidden, dim=2)
        q, k, v = self.split(q), self.split(k), self.split(v)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        length = x.size(1)
        causal = self.bias[:, :, :length, :length]
        scores = torch.where(causal, scores, torch.tensor(torch.finfo(torch.float32).min))
        context = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).contiguous()
        return self.c_proj(context.view(context.size(0), context.size(1), self.hidden))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2MLP(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.c_fc = Conv1D(inner, hidden)
        self.c_proj = Conv1D(hidden, inner)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, hidden, heads, inner, positions):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden)
        self.attn = GPT2Attention(hidden, heads, positions)
        self.ln_2 = nn.LayerNorm(hidden)
        self.mlp = GPT2MLP(hidden, inner)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, inner, positions):
        super().__init__()
        self.wte = nn.Embedding(vocab, hidden)
        self.wpe = nn.Embedding(positions, hidden)
        self.h = nn.ModuleList([GPT2Block(hidden, heads, inner, positions) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(hidden)

    def forward(self, input_ids):
        positions = torch.arange(input_ids.size(1), dtype=torch.long).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(positions)
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, vocab=96, hidden=32, layers=2, heads=4, inner=64, positions=16):
        super().__init__()
        self.transformer = GPT2Model(vocab, hidden, layers, heads, inner, positions)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, input_ids):
        return self.lm_head(self.transformer(input_ids))


# --- LLaMA-style decoder -----------------------------------------------------

class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(1 + 0.1 * torch.randn(hidden))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.q_proj = nn.Linear(hidden, hidden, bias=False)
        self.k_proj = nn.Linear(hidden, hidden, bias=False)
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.o_proj = nn.Linear(hidden, hidden, bias=False)

    def split(self, x):
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, cos, sin, mask):
        q, k, v = self.split(self.q_proj(x)), self.split(self.k_proj(x)), self.split(self.v_proj(x))
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim) + mask
        context = torch.matmul(scores.softmax(-1), v).transpose(1, 2)
        return self.o_proj(context.reshape(x.size(0), x.size(1), -1))


class LlamaMLP(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, hidden, heads, inner):
        super().__init__()
        self.input_layernorm = LlamaRMSNorm(hidden)
        self.self_attn = LlamaAttention(hidden, heads)
        self.post_attention_layernorm = LlamaRMSNorm(hidden)
        self.mlp = LlamaMLP(hidden, inner)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, inner, positions):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList([LlamaDecoderLayer(hidden, heads, inner) for _ in range(layers)])
        self.norm = LlamaRMSNorm(hidden)
        head_dim = hidden // heads
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        freqs = torch.outer(torch.arange(positions).float(), inv_freq)
        angles = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", angles.cos())
        self.register_buffer("sin_cached", angles.sin())

    def forward(self, input_ids):
        length = input_ids.size(1)
        cos, sin = self.cos_cached[:length], self.sin_cached[:length]
        mask = torch.full((length, length), torch.finfo(torch.float32).min).triu(1)
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self, vocab=96, hidden=32, layers=2, heads=4, inner=64, positions=32):
        super().__init__()
        self.model = LlamaModel(vocab, hidden, layers, heads, inner, positions)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, input_ids):
        return self.lm_head(self.model(input_ids))


# --- ViT ------------------------------------------------------------------------

class ViTPatchEmbeddings(nn.Module):
    def __init__(self, channels, hidden, patch):
        super().__init__()
        self.projection = nn.Conv2d(channels, hidden, kernel_size=patch, stride=patch)

    def forward(self, pixels):
        return self.projection(pixels).flatten(2).transpose(1, 2)


class ViTEmbeddings(nn.Module):
    def __init__(self, channels, hidden, patch, patches):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, hidden) * 0.2)
        self.patch_embeddings = ViTPatchEmbeddings(channels, hidden, patch)
        self.position_embeddings = nn.Parameter(torch.randn(1, patches + 1, hidden) * 0.2)

    def forward(self, pixels):
        x = self.patch_embeddings(pixels)
        cls = self.cls_token.expand(x.size(0), -1, -1)
        return torch.cat((cls, x), dim=1) + self.position_embeddings


class ViTSelfAttention(BertSelfAttention):
    def forward(self, x):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        context = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).contiguous()
        return context.view(context.size(0), context.size(1), -1)


class ViTSelfOutput(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def forward(self, x):
        return self.dense(x)


class ViTAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.attention = ViTSelfAttention(hidden, heads)
        self.output = ViTSelfOutput(hidden)

    def forward(self, x):
        return self.output(self.attention(x))


class ViTLayer(nn.Module):
    def __init__(self, hidden, heads, inner):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(hidden, eps=1e-12)
        self.attention = ViTAttention(hidden, heads)
        self.layernorm_after = nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate = BertIntermediate(hidden, inner)
        self.output = ViTSelfOutput(hidden)
        self.output.dense = nn.Linear(inner, hidden)

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(self.intermediate(self.layernorm_after(x)))


class ViTModel(nn.Module):
    def __init__(self, channels, hidden, layers, heads, inner, image, patch):
        super().__init__()
        self.embeddings = ViTEmbeddings(channels, hidden, patch, (image // patch) ** 2)
        self.encoder = BertEncoder(layers, hidden, heads, inner, layer_type=ViTLayer)
        self.layernorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, pixels):
        return self.layernorm(self.encoder(self.embeddings(pixels)))


class ViTForImageClassification(nn.Module):
    def __init__(self, channels=3, hidden=32, layers=2, heads=4, inner=64, image=16, patch=4,
                 labels=10):
        super().__init__()
        self.vit = ViTModel(channels, hidden, layers, heads, inner, image, patch)
        self.classifier = nn.Linear(hidden, labels)

    def forward(self, pixel_values):
        return self.classifier(self.vit(pixel_values)[:, 0])


# --- ResNet-style CNN -----------------------------------------------------------

def batch_norm(channels):
    """A BatchNorm2d with non-trivial running statistics."""
    norm = nn.BatchNorm2d(channels)
    norm.running_mean.copy_(torch.randn(channels) * 0.1)
    norm.running_var.copy_(1 + torch.rand(channels))
    nn.init.normal_(norm.weight, 1.0, 0.1)
    nn.init.normal_(norm.bias, 0.0, 0.1)
    return norm


class BasicBlock(nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = batch_norm(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = batch_norm(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False),
                                            batch_norm(outputs))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, channels=3, width=8, labels=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, 1, 1, bias=False)
        self.bn1 = batch_norm(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(width, width, 1))
        self.layer2 = nn.Sequential(BasicBlock(width, 2 * width, 2))
        self.layer3 = nn.Sequential(BasicBlock(2 * width, 2 * width, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, labels)

    def forward(self, pixel_values):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(pixel_values))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ConvNet(nn.Module):
    """Convolutions without BatchNorm, so that each keeps its own weight in
    the exported model: 3×3, strided 3×3 and 1×1 (no bias), then a linear
    head."""

    def __init__(self, channels=3, width=8, labels=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, 2, 1)
        self.conv3 = nn.Conv2d(2 * width, 2 * width, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, labels)

    def forward(self, pixel_values):
        x = torch.relu(self.conv1(pixel_values))
        x = torch.relu(self.conv3(torch.relu(self.conv2(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class BFloat16Mlp(nn.Module):
    """Linear layers in bfloat16 between an f32 input and output (the casts
    are in the graph): a base model of BF16 weights."""

    def __init__(self, features=16, hidden=32, labels=10):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, labels)
        self.to(torch.bfloat16)

    def forward(self, features):
        x = torch.relu(self.fc1(features.to(torch.bfloat16)))
        return self.head(torch.relu(self.fc2(x))).float()


# --- Hugging Face PEFT LoRA, written and applied as PEFT does it -------------

TORCH_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16}


def rounded(tensor, dtype):
    """`tensor` rounded to the nearest F16 / BF16 value, kept as float32 (as
    PEFT computes with an adapter saved in half precision)."""
    return tensor.to(TORCH_DTYPES[dtype]).float() if dtype in TORCH_DTYPES else tensor


def encode(array, dtype):
    """float32 values as safetensors data of `dtype`: F32, F16 or BF16 (the
    upper half of each float32, rounded to nearest even)."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    if dtype == "F16":
        return array.astype("<f2").tobytes()
    if dtype == "BF16":
        bits = array.view(np.uint32).astype(np.uint64)
        return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()
    return array.tobytes()


def write_safetensors(path, tensors, dtype="F32"):
    """The safetensors format: u64 header size, JSON header, raw data."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = encode(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def save_adapter(directory, config, tensors, dtype="F32"):
    """An adapter directory as PEFT saves it: adapter_config.json (keys
    sorted) and adapter_model.safetensors, its tensors of `dtype`."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    write_safetensors(os.path.join(directory, "adapter_model.safetensors"), tensors, dtype)


def targets(config, path):
    """PEFT's check_target_module_exists for a list of target modules."""
    names = config["target_modules"]
    if not any(path == n or path.endswith("." + n) for n in names):
        return False
    layers = config.get("layers_to_transform")
    if layers is None:
        return True
    pattern = config.get("layers_pattern") or "[^.]*"
    match = re.match(rf".*\.{pattern}\.(\d+)\.", path)
    return match is not None and int(match.group(1)) in layers


def pattern_value(patterns, path, default):
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", path):
            return value
    return default


class LoraWeights:
    """One adapted module's LoRA tensors, in PEFT's shapes."""

    def __init__(self, module, a, b, bias, scale, magnitude=None):
        self.module, self.a, self.b, self.bias, self.scale = module, a, b, bias, scale
        self.magnitude = magnitude  # DoRA's lora_magnitude_vector, [out].

    def delta(self):
        """B·A in the module's weight layout (PEFT's get_delta_weight / scale)."""
        if isinstance(self.module, nn.Conv2d):
            return (self.b.flatten(1) @ self.a.flatten(1)).view(self.module.weight.shape)
        if isinstance(self.module, nn.Embedding):
            return (self.b @ self.a).t()
        if isinstance(self.module, Conv1D):
            return (self.b @ self.a).t()
        return self.b @ self.a

    def branch(self, x):
        """(x·Aᵀ)·Bᵀ as PEFT's lora_B(lora_A(x)) computes it."""
        if isinstance(self.module, nn.Conv2d):
            down = F.conv2d(x, self.a, stride=self.module.stride, padding=self.module.padding)
            return F.conv2d(down, self.b)
        if isinstance(self.module, nn.Embedding):
            return F.embedding(x, self.a.t()) @ self.b.t()
        return torch.matmul(torch.matmul(x, self.a.t()), self.b.t())

    def weight_norm(self):
        """‖W + s·B·A‖ per output (PEFT's DoRA get_weight_norm), W as [out, ...]."""
        weight = self.module.weight.to(self.a.dtype) + self.scale * self.delta()
        if isinstance(self.module, Conv1D):
            weight = weight.t()
        return weight.flatten(1).norm(dim=1)


def make_adapter(model, config, directory, seed, magnitude=0.3, dtype="F32"):
    """Random LoRA weights (entries ~ N(0, magnitude²)) for every targeted
    linear, Conv2d and Embedding layer, saved as PEFT saves them, as `dtype`
    (and rounded to it); with use_dora, a magnitude vector too. Returns
    {module path: LoraWeights}."""
    generator = torch.Generator().manual_seed(seed)
    adapters, tensors = {}, {}
    kinds = (nn.Linear, Conv1D, nn.Conv2d, nn.Embedding)
    for path, module in model.named_modules():
        if not isinstance(module, kinds) or not targets(config, path):
            continue
        rank = pattern_value(config["rank_pattern"], path, config["r"])
        alpha = pattern_value(config["alpha_pattern"], path, config["lora_alpha"])
        scale = alpha / (math.sqrt(rank) if config["use_rslora"] else rank)
        key = f"base_model.model.{path}"
        if isinstance(module, nn.Conv2d):
            a_shape = (rank, module.in_channels, *module.kernel_size)
            b_shape = (module.out_channels, rank, 1, 1)
            names = f"{key}.lora_A.weight", f"{key}.lora_B.weight"
        elif isinstance(module, nn.Embedding):
            a_shape, b_shape = (rank, module.num_embeddings), (module.embedding_dim, rank)
            names = f"{key}.lora_embedding_A", f"{key}.lora_embedding_B"
        else:
            fan_in, fan_out = (module.weight.shape if isinstance(module, Conv1D)
                               else module.weight.shape[::-1])
            a_shape, b_shape = (rank, fan_in), (fan_out, rank)
            names = f"{key}.lora_A.weight", f"{key}.lora_B.weight"
        a = rounded(torch.randn(*a_shape, generator=generator) * magnitude, dtype)
        b = rounded(torch.randn(*b_shape, generator=generator) * magnitude, dtype)
        bias = torch.zeros(b_shape[0])
        if config.get("lora_bias"):  # lora_B has a bias: lora_B.bias
            bias = rounded(torch.randn(b_shape[0], generator=generator) * magnitude, dtype)
            tensors[f"{key}.lora_B.bias"] = bias.numpy()
        weights = LoraWeights(module, a, b, bias, scale)
        if config.get("use_dora"):  # Trained away from its initial value, the norm.
            weights.magnitude = rounded(weights.weight_norm().detach() * (
                1 + 0.2 * torch.randn(b_shape[0], generator=generator)), dtype)
            shape = (1, b_shape[0], 1, 1) if isinstance(module, nn.Conv2d) else (b_shape[0],)
            tensors[f"{key}.lora_magnitude_vector"] = weights.magnitude.reshape(shape).numpy()
        adapters[path] = weights
        tensors[names[0]], tensors[names[1]] = a.numpy(), b.numpy()
    tensors.update(replace_saved_parameters(model, config, adapters, generator, dtype))
    save_adapter(directory, config, tensors, dtype)
    return adapters


def merge_lora(adapters):
    """PEFT's merge into each adapted module: W += s·ΔW, computed in f32 and
    rounded once to the weight's type."""
    for weights in adapters.values():
        weight = weights.module.weight
        weight.copy_((weight.float() + weights.scale * weights.delta()).to(weight.dtype))


def save_merged_weights(adapters, directory):
    """PEFT's merge of each adapted module's weight, saved as
    DIRECTORY/<path>.weight.npy: W + s·ΔW, and with DoRA
    (m / ‖W + s·ΔW‖) ⊙ (W + s·ΔW) per output."""
    os.makedirs(directory, exist_ok=True)
    for path, weights in adapters.items():
        merged = weights.module.weight + weights.scale * weights.delta()
        if weights.magnitude is not None:
            factor = weights.magnitude / weights.weight_norm()
            merged = factor.view(-1, *([1] * (merged.dim() - 1))) * merged
        np.save(os.path.join(directory, f"{path}.weight.npy"), merged.detach().numpy())


def replace_saved_parameters(model, config, adapters, generator, dtype):
    """What PEFT saves beside the LoRA weights, given new values (rounded to
    `dtype`) in `model`: the modules in `modules_to_save` whole, and with bias
    = "all" every other bias (`<path>.base_layer.bias` under a LoRA layer).
    Returns their tensors."""
    tensors = {}
    saved = config.get("modules_to_save") or []
    with torch.no_grad():
        for path, module in model.named_modules():
            whole = any(path == n or path.endswith("." + n) for n in saved)
            for name, parameter in module.named_parameters(recurse=False):
                if not whole and not (name == "bias" and config.get("bias") == "all"):
                    continue
                parameter.copy_(rounded(
                    parameter + 0.3 * torch.randn(parameter.shape, generator=generator), dtype))
                wrapped = ".base_layer" if path in adapters and not whole else ""
                tensors[f"base_model.model.{path}{wrapped}.{name}"] = parameter.numpy().copy()
    return tensors


def bias_along_channels(module, bias):
    return bias.view(-1, 1, 1) if isinstance(module, nn.Conv2d) else bias


def apply_lora_unmerged(model, adapters):
    """PEFT's LoRA forward on each adapted layer: y = base(x) + scale·(B(A(x))
    + bias_B) (bias_B is 0 without lora_bias), the branch in the adapter's
    type (f32) and the sum rounded to the layer's; with DoRA, PEFT's
    DoraLinearLayer / DoraConv2dLayer forward."""
    for path, weights in adapters.items():
        module = model.get_submodule(path)
        base_forward = module.forward
        if weights.magnitude is None:
            module.forward = lambda x, f=base_forward, w=weights: lora_output(f, w, x)
        else:
            module.forward = lambda x, f=base_forward, w=weights: dora_sum(f, w, x)


def lora_output(base_forward, weights, x):
    base = base_forward(x)
    inputs = x.to(weights.a.dtype) if x.is_floating_point() else x
    bias = bias_along_channels(weights.module, weights.bias)
    return (base + weights.scale * (weights.branch(inputs) + bias)).to(base.dtype)


def dora_sum(base_forward, weights, x):
    """The base result plus DoRA's, rounded to the base's type (PEFT computes
    DoRA in the adapter's type, the layer's weight widened to it)."""
    base = base_forward(x)
    # PEFT's Linear reuses its base result (less the bias), in the layer's type.
    without_bias = None
    if type(weights.module) is nn.Linear:
        module = weights.module
        without_bias = base if module.bias is None else base - module.bias
    dora = dora_output(weights, x.to(weights.a.dtype), without_bias)
    return (base + dora).to(base.dtype)


def dora_output(weights, x, base=None):
    """What PEFT's DoRA layer adds to the base result: (n − 1)·(x·Wᵀ) +
    n·s·B(A(x)), n = magnitude / ‖W + s·B·A‖, x·Wᵀ being `base` when given
    (the base result without its bias), else computed in x's type."""
    module = weights.module
    factor = weights.magnitude / weights.weight_norm()
    weight = module.weight.to(x.dtype)
    if isinstance(module, nn.Conv2d):
        factor = factor.view(1, -1, 1, 1)
    if base is None and isinstance(module, nn.Conv2d):
        base = F.conv2d(x, weight, None, module.stride, module.padding)
    elif base is None and isinstance(module, Conv1D):
        base = x @ weight
    elif base is None:
        base = F.linear(x, weight)
    return (factor - 1) * base + factor * weights.scale * weights.branch(x)


def split_factor(n):
    """n = m·(n / m) with m the largest divisor of n not above sqrt(n)."""
    m = max(d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0)
    return m, n // m


def make_factored_adapter(model, peft_type, targets, directory, seed, r=4, alpha=8.0,
                          decompose_both=(), dtype="F32"):
    """Random LoHa or LoKr factors for the targeted linear and Conv2d layers,
    saved as PEFT saves them, as `dtype` (hada_w1_a [out, r], hada_w1_b [r, in·k], ...;
    lokr_w1 [a, b] or lokr_w1_a/_b for the modules in `decompose_both`, and
    lokr_w2 whole for convolutions, factored [c, r]·[r, d] for linears).
    Returns {module path: ΔW in the module's weight shape}."""
    generator = torch.Generator().manual_seed(seed)
    magnitude = 0.45 if peft_type == "LOHA" else 0.3  # LoHa multiplies four factors.
    randn = lambda *shape: rounded(torch.randn(*shape, generator=generator) * magnitude, dtype)
    deltas, tensors = {}, {}
    scale = alpha / r
    for path, module in model.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or not any(
                path == t or path.endswith("." + t) for t in targets):
            continue
        shape = module.weight.shape
        out, flat_in = shape[0], module.weight[0].numel()
        key = f"base_model.model.{path}"
        if peft_type == "LOHA":
            w1a, w1b, w2a, w2b = randn(out, r), randn(r, flat_in), randn(out, r), randn(r, flat_in)
            tensors.update({f"{key}.hada_w1_a": w1a, f"{key}.hada_w1_b": w1b,
                            f"{key}.hada_w2_a": w2a, f"{key}.hada_w2_b": w2b})
            delta = scale * (w1a @ w1b) * (w2a @ w2b)
        else:
            a, c = split_factor(out)
            b, d = split_factor(shape[1])
            if any(path.endswith(n) for n in decompose_both):
                w1a, w1b = randn(a, r), randn(r, b)
                tensors.update({f"{key}.lokr_w1_a": w1a, f"{key}.lokr_w1_b": w1b})
                w1 = w1a @ w1b
            else:
                w1 = randn(a, b)
                tensors[f"{key}.lokr_w1"] = w1
            if isinstance(module, nn.Conv2d):
                w2 = randn(c, d, *shape[2:])
                tensors[f"{key}.lokr_w2"] = w2
                w1 = w1[:, :, None, None]
            else:
                w2a, w2b = randn(c, r), randn(r, d)
                tensors.update({f"{key}.lokr_w2_a": w2a, f"{key}.lokr_w2_b": w2b})
                w2 = w2a @ w2b
            delta = scale * torch.kron(w1, w2)
        deltas[path] = delta.reshape(shape)
    config = {"alpha": alpha, "alpha_pattern": {}, "base_model_name_or_path": None,
              "exclude_modules": None, "inference_mode": True, "init_weights": True,
              "layers_pattern": None, "layers_to_transform": None, "module_dropout": 0.0,
              "modules_to_save": None, "peft_type": peft_type, "r": r, "rank_dropout": 0.0,
              "rank_pattern": {}, "revision": None, "target_modules": list(targets),
              "task_type": None, "use_effective_conv2d": False}
    if peft_type == "LOKR":
        config.update({"decompose_both": bool(decompose_both), "decompose_factor": -1})
    save_adapter(directory, config, {k: v.numpy() for k, v in tensors.items()}, dtype)
    return deltas


def apply_weight_deltas(model, deltas):
    """PEFT's LoHa / LoKr forward: the layer's op with W + ΔW."""
    for path, delta in deltas.items():
        module = model.get_submodule(path)
        if isinstance(module, nn.Conv2d):
            module.forward = lambda x, m=module, d=delta: F.conv2d(
                x, m.weight + d, m.bias, m.stride, m.padding, m.dilation, m.groups)
        else:
            module.forward = lambda x, m=module, d=delta: F.linear(x, m.weight + d, m.bias)


def export_factored_adapter(name, subdirectory, make_model, peft_type, targets, seed,
                            input_names, output_names, **options):
    """Like export_adapter, for a LoHa or LoKr adapter."""
    model = make_model().eval()
    directory = os.path.join(HERE, "models", name, subdirectory)
    deltas = make_factored_adapter(model, peft_type, targets, os.path.join(directory, "adapter"),
                                   seed, **options)
    apply_weight_deltas(model, deltas)
    run_at_both_shapes(model, name, directory, input_names, output_names)


def make_ia3_adapter(model, targets, feedforward, directory, seed):
    """Random IA3 vectors (entries ~ 1 + N(0, 0.3²)) for the targeted linear
    and Conv2d layers, saved as PEFT saves them: [out, 1], or [1, in] for
    feed-forward modules; [1, C, 1, 1] on convolutions. Returns
    {module path: (vector, feedforward)}."""
    generator = torch.Generator().manual_seed(seed)
    adapters, tensors = {}, {}
    for path, module in model.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or not any(
                path == t or path.endswith("." + t) for t in targets):
            continue
        is_ff = any(path == t or path.endswith("." + t) for t in feedforward)
        conv = isinstance(module, nn.Conv2d)
        if conv:
            size = module.in_channels if is_ff else module.out_channels
        else:
            size = module.in_features if is_ff else module.out_features
        vector = 1 + 0.3 * torch.randn(size, generator=generator)
        adapters[path] = (vector.view(1, -1, 1, 1) if conv else vector, is_ff)
        shape = (1, size, 1, 1) if conv else (1, size) if is_ff else (size, 1)
        tensors[f"base_model.model.{path}.ia3_l"] = vector.reshape(shape).numpy()
    config = {"base_model_name_or_path": None, "fan_in_fan_out": False,
              "feedforward_modules": feedforward, "inference_mode": True,
              "init_ia3_weights": True, "modules_to_save": None, "peft_type": "IA3",
              "revision": None, "target_modules": targets, "task_type": None}
    save_adapter(directory, config, tensors)
    return adapters


def apply_ia3(model, adapters):
    """PEFT's IA3 forward: the output scaled by l, or for a feed-forward
    module its input."""
    for path, (vector, is_ff) in adapters.items():
        module = model.get_submodule(path)
        base_forward = module.forward
        if is_ff:
            module.forward = lambda x, f=base_forward, l=vector: f(x * l)
        else:
            module.forward = lambda x, f=base_forward, l=vector: f(x) * l


# --- peft-mlir's own adapter formats (docs/adapters.md) ---------------------------

def matching_modules(model, target_modules, kinds):
    """The (path, module) pairs of `kinds` that a target_modules list names."""
    return [(path, module) for path, module in model.named_modules()
            if isinstance(module, kinds) and any(path == t or path.endswith("." + t)
                                                 for t in target_modules)]


def make_ssf_adapter(model, target_modules, directory, seed):
    """SSF after the targeted linears, convolutions and layer norms, saved in
    our format (ssf_scale, ssf_shift [C]), and hooked onto the modules'
    outputs: y = γ⊙x + β along the channels."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for path, module in matching_modules(model, target_modules,
                                         (nn.Linear, nn.Conv2d, nn.LayerNorm)):
        conv = isinstance(module, nn.Conv2d)
        channels = (module.out_channels if conv else module.out_features
                    if isinstance(module, nn.Linear) else module.normalized_shape[0])
        scale = 1 + 0.3 * torch.randn(channels, generator=generator)
        shift = 0.3 * torch.randn(channels, generator=generator)
        tensors[f"base_model.model.{path}.ssf_scale"] = scale.numpy()
        tensors[f"base_model.model.{path}.ssf_shift"] = shift.numpy()
        shape = (1, -1, 1, 1) if conv else (-1,)
        module.register_forward_hook(
            lambda m, args, out, s=scale.view(shape), b=shift.view(shape): out * s + b)
    save_adapter(directory, {"peft_type": "SSF", "target_modules": target_modules}, tensors)


ACTIVATIONS = {"identity": lambda x: x, "relu": F.relu, "gelu": F.gelu, "silu": F.silu,
               "tanh": torch.tanh}


def make_residual_adapter(model, peft_type, target_modules, directory, seed, position,
                          hidden=8, scaling=1.0, groups=1, non_linearity="identity", dtype="F32"):
    """A residual adapter x + s·(up(act(down·x + b1)) + b2) before or after
    each targeted linear layer, saved in our format as `dtype` and hooked onto
    the modules. A REPADAPTER runs RepAdapter's own nn.Conv1d pair on the
    transposed tokens, its up-projection grouped."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for path, module in matching_modules(model, target_modules, nn.Linear):
        d = module.in_features if position == "before" else module.out_features
        down = nn.Conv1d(d, hidden, 1)
        up = nn.Conv1d(hidden, d, 1, groups=groups)
        for parameter in (down.weight, down.bias, up.weight, up.bias):
            parameter.data = rounded(0.3 * torch.randn(parameter.shape, generator=generator),
                                     dtype)
        key = f"base_model.model.{path}."
        if peft_type == "REPADAPTER":
            names = {"adapter_conv_A": down, "adapter_conv_B": up}
            keep = lambda w: w
            branch = lambda x, a=down, b=up: b(a(x.transpose(1, 2))).transpose(1, 2)
        else:
            names = {"adapter_down": down, "adapter_up": up}
            keep = lambda w: w[..., 0]  # nn.Linear weights
            act = ACTIVATIONS[non_linearity]
            branch = lambda x, a=down, b=up, f=act: F.linear(
                f(F.linear(x, a.weight[..., 0], a.bias)), b.weight[..., 0], b.bias)
        for name, conv in names.items():
            tensors[key + name + ".weight"] = keep(conv.weight.data).numpy()
            tensors[key + name + ".bias"] = conv.bias.data.numpy()
        adapt = lambda x, f=branch: x + scaling * f(x)
        if position == "before":
            module.register_forward_pre_hook(lambda m, args, f=adapt: (f(args[0]),))
        else:
            module.register_forward_hook(lambda m, args, out, f=adapt: f(out))
    config = {"peft_type": peft_type, "target_modules": target_modules, "position": position,
              "scaling": scaling}
    if peft_type == "REPADAPTER":
        config["groups"] = groups
    if peft_type == "BOTTLENECK":
        config["non_linearity"] = non_linearity
    save_adapter(directory, config, tensors, dtype)


def shift_heads(x, frames, heads, fold):
    """ZeroI2V's STDHA on a key or value projection's output [clips·frames,
    tokens, heads·d]: heads [0, fold) take the previous frame's values, heads
    [fold, 2·fold) the next frame's; edge frames keep their own. A trailing
    clip cut short is a clip of fewer frames (docs/adapters.md)."""
    return torch.cat([shift_clip(clip, heads, fold) for clip in x.split(frames)])


def shift_clip(v, heads, fold):
    v = v.reshape(v.shape[0], v.shape[1], heads, -1)
    out = v.clone()
    out[1:, :, :fold] = v[:-1, :, :fold]
    out[:-1, :, fold:2 * fold] = v[1:, :, fold:2 * fold]
    return out.reshape(v.shape[0], v.shape[1], -1)


def export_stdha_adapter(name, make_model, target_modules, frames, heads, fold, seed,
                         input_shape, input_names, output_names):
    """An STDHA config (no tensors) in models/NAME/stdha/adapter, hooked onto
    a fresh copy of the model, with clips of `frames` frames as inputs
    (models/NAME/stdha/inputs) and torch's outputs (.../expected); and the
    same inputs but the last half clip's frames (.../partial)."""
    model = make_model().eval()
    directory = os.path.join(HERE, "models", name, "stdha")
    config = {"peft_type": "STDHA", "target_modules": target_modules, "num_frames": frames,
              "num_heads": heads, "shift_heads": fold}
    os.makedirs(os.path.join(directory, "adapter"), exist_ok=True)
    with open(os.path.join(directory, "adapter", "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    inputs = [torch.randn(*input_shape, generator=torch.Generator().manual_seed(seed))]
    save_inputs(directory, input_names, inputs)
    with torch.no_grad():
        run_and_save(model, inputs, output_names, os.path.join(directory, "base"))
        for _, module in matching_modules(model, target_modules, nn.Linear):
            module.register_forward_hook(
                lambda m, args, out: shift_heads(out, frames, heads, fold))
        run_and_save(model, inputs, output_names, os.path.join(directory, "expected"))
        partial = [inputs[0][:-(frames // 2)]]
        save_inputs(os.path.join(directory, "partial"), input_names, partial)
        run_and_save(model, partial, output_names, os.path.join(directory, "partial", "expected"))


def export_own_adapters(name, subdirectory, make_model, makers, input_names, output_names):
    """Adapters in our formats for an exported model: each maker saves one
    under models/NAME/SUBDIRECTORY/<its name> and hooks it onto a fresh copy
    of the model; torch's outputs with all of them go in .../expected and
    .../batch5/expected."""
    model = make_model().eval()
    directory = os.path.join(HERE, "models", name, subdirectory)
    with torch.no_grad():
        for adapter, make in makers:
            make(model, os.path.join(directory, adapter))
    run_at_both_shapes(model, name, directory, input_names, output_names)


def lora_config(**overrides):
    config = {"alpha_pattern": {}, "base_model_name_or_path": None, "bias": "none",
              "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True,
              "layers_pattern": None, "layers_to_transform": None, "lora_alpha": 8,
              "lora_dropout": 0.0, "modules_to_save": None, "peft_type": "LORA", "r": 4,
              "rank_pattern": {}, "revision": None, "target_modules": [], "task_type": None,
              "use_dora": False, "use_rslora": False}
    config.update(overrides)
    return config


def save_outputs(directory, names, outputs):
    os.makedirs(directory, exist_ok=True)
    for name, value in zip(names, outputs):
        np.save(os.path.join(directory, f"{name}.npy"), value.detach().numpy())


def save_inputs(directory, input_names, inputs):
    os.makedirs(os.path.join(directory, "inputs"), exist_ok=True)
    for input_name, value in zip(input_names, inputs):
        np.save(os.path.join(directory, "inputs", f"{input_name}.npy"), value.numpy())


def run_and_save(model, inputs, output_names, directory):
    """Runs the model and saves its outputs as directory/NAME.npy."""
    outputs = model(*inputs)
    save_outputs(directory, output_names, outputs if isinstance(outputs, tuple) else (outputs,))


def export_onnx(directory, model, inputs, input_names, output_names, sequence):
    """torch.onnx.export at opset 17 with a dynamic batch, and a dynamic
    sequence (dimension 1) in the inputs and outputs named in `sequence`;
    plus the inputs."""
    model.eval()
    dynamic = {n: {0: "batch", 1: "sequence"} if n in sequence else {0: "batch"}
               for n in input_names + output_names}
    os.makedirs(directory, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, tuple(inputs), os.path.join(directory, "model.onnx"),
                          opset_version=17, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic, do_constant_folding=True)
    save_inputs(directory, input_names, inputs)


def export(name, model, inputs, input_names, output_names, config, seed, batch5, sequence=(),
           merged_weights=False):
    directory = os.path.join(HERE, "models", name)
    export_onnx(directory, model, inputs, input_names, output_names, sequence)
    with torch.no_grad():
        run_and_save(model, inputs, output_names, os.path.join(directory, "base"))
        adapters = make_adapter(model, config, os.path.join(directory, "adapter"), seed)
        if merged_weights:
            save_merged_weights(adapters, os.path.join(directory, "merged"))
        apply_lora_unmerged(model, adapters)
        run_and_save(model, inputs, output_names, os.path.join(directory, "expected"))
        save_inputs(os.path.join(directory, "batch5"), input_names, batch5)
        run_and_save(model, batch5, output_names, os.path.join(directory, "batch5", "expected"))


def export_adapter(name, subdirectory, make_model, config, seed, input_names, output_names,
                   merged_weights=False, dtype="F32"):
    """An extra adapter for an exported model: a fresh copy of the model (the
    same weights), the adapter saved as `dtype` in models/NAME/SUBDIRECTORY/adapter, and
    torch's outputs with it at both input shapes in .../expected and
    .../batch5/expected; with `merged_weights`, PEFT's merged weights in
    .../merged."""
    model = make_model().eval()
    directory = os.path.join(HERE, "models", name, subdirectory)
    adapters = make_adapter(model, config, os.path.join(directory, "adapter"), seed, dtype=dtype)
    if merged_weights:
        save_merged_weights(adapters, os.path.join(directory, "merged"))
    apply_lora_unmerged(model, adapters)
    run_at_both_shapes(model, name, directory, input_names, output_names)


def export_merged_outputs(name, make_model, config, seed, input_names, output_names):
    """The outputs of PEFT's merged model at both input shapes, in
    models/NAME/merged/expected and .../batch5/expected: the adapter of
    models/NAME/adapter (made again from its seed) merged into a fresh copy."""
    model = make_model().eval()
    with torch.no_grad():
        merge_lora(make_adapter(model, config, os.path.join(HERE, "models", name, "adapter"), seed))
    run_at_both_shapes(model, name, os.path.join(HERE, "models", name, "merged"), input_names,
                       output_names)


def run_at_both_shapes(model, name, directory, input_names, output_names):
    """Runs the adapted model on models/NAME's inputs at both shapes, saving
    the outputs in DIRECTORY/expected and DIRECTORY/batch5/expected."""
    with torch.no_grad():
        for inputs, expected in (("inputs", "expected"), ("batch5/inputs", "batch5/expected")):
            values = [torch.from_numpy(np.load(os.path.join(HERE, "models", name, inputs,
                                                            f"{n}.npy"))) for n in input_names]
            run_and_save(model, values, output_names, os.path.join(directory, expected))


def export_ia3_adapter(name, make_model, targets, feedforward, seed, input_names, output_names):
    """Like export_adapter, for an IA3 adapter in models/NAME/ia3."""
    model = make_model().eval()
    directory = os.path.join(HERE, "models", name, "ia3")
    adapters = make_ia3_adapter(model, targets, feedforward, os.path.join(directory, "adapter"),
                                seed)
    apply_ia3(model, adapters)
    run_at_both_shapes(model, name, directory, input_names, output_names)


def seeded(factory, seed):
    """A factory that makes the model with the weights seed `seed` gives."""
    def make():
        torch.manual_seed(seed)
        return factory()
    return make


def main():
    torch.manual_seed(0)
    bert = BertModel()
    input_ids = torch.randint(0, 96, (2, 8), dtype=torch.long)
    attention_mask = torch.ones(2, 8, dtype=torch.long)
    attention_mask[1, 6:] = 0
    ids5 = torch.randint(0, 96, (5, 12), dtype=torch.long)
    mask5 = torch.ones(5, 12, dtype=torch.long)
    mask5[3:, 9:] = 0
    bert_config = lora_config(target_modules=["query", "value", "intermediate.dense"],
                              rank_pattern={"value": 2}, alpha_pattern={"intermediate.dense": 4})
    export("bert-tiny", bert, [input_ids, attention_mask], ["input_ids", "attention_mask"],
           ["last_hidden_state", "pooler_output"], bert_config, seed=1, batch5=[ids5, mask5],
           sequence=["input_ids", "attention_mask", "last_hidden_state"])
    # Another adapter with the same targets, ranks and scales, to swap in at
    # run time.
    export_adapter("bert-tiny", "swap", seeded(BertModel, 0), bert_config, seed=20,
                   input_names=["input_ids", "attention_mask"],
                   output_names=["last_hidden_state", "pooler_output"])

    torch.manual_seed(1)
    gpt2 = GPT2LMHeadModel()
    input_ids = torch.randint(0, 96, (3, 8), dtype=torch.long)
    export("gpt2-tiny", gpt2, [input_ids], ["input_ids"], ["logits"],
           lora_config(target_modules=["c_attn", "c_fc", "attn.c_proj"], fan_in_fan_out=True,
                       layers_to_transform=[1], layers_pattern="h", r=8, lora_alpha=16,
                       use_rslora=True),
           seed=2, batch5=[torch.randint(0, 96, (5, 12), dtype=torch.long)],
           sequence=["input_ids", "logits"])

    torch.manual_seed(2)
    llama = LlamaForCausalLM()
    export("llama-tiny", llama, [torch.randint(0, 96, (2, 7), dtype=torch.long)], ["input_ids"],
           ["logits"],
           lora_config(target_modules=["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"],
                       r=4, lora_alpha=8),
           seed=3, batch5=[torch.randint(0, 96, (5, 11), dtype=torch.long)],
           sequence=["input_ids", "logits"])

    # The same BERT weights with a LoRA adapter whose lora_B has a bias.
    torch.manual_seed(0)
    bert = BertModel().eval()
    directory = os.path.join(HERE, "models", "bert-tiny", "lora-bias")
    adapters = make_adapter(bert, lora_config(target_modules=["query", "value", "dense"],
                                              lora_bias=True),
                            os.path.join(directory, "adapter"), seed=7)
    apply_lora_unmerged(bert, adapters)
    with torch.no_grad():
        names = ["input_ids", "attention_mask"]
        inputs = [torch.from_numpy(np.load(os.path.join(HERE, "models", "bert-tiny", "batch5",
                                                        "inputs", f"{n}.npy"))) for n in names]
        run_and_save(bert, inputs, ["last_hidden_state", "pooler_output"],
                     os.path.join(directory, "batch5", "expected"))

    # The same LLaMA weights with an IA3 adapter as PEFT configures it for
    # LLaMA: keys, values and the MLP's down projection (feed-forward).
    export_ia3_adapter("llama-tiny", seeded(LlamaForCausalLM, 2),
                       ["k_proj", "v_proj", "down_proj"], ["down_proj"], 6, ["input_ids"],
                       ["logits"])

    torch.manual_seed(3)
    vit = ViTForImageClassification()
    export("vit-tiny", vit, [torch.randn(2, 3, 16, 16)], ["pixel_values"], ["logits"],
           lora_config(target_modules=["query", "value"], r=4, lora_alpha=8),
           seed=4, batch5=[torch.randn(5, 3, 16, 16)])

    # Our own formats on the ViT: SSF after convolution, layer norms and
    # linears; ZeroI2V linear adapters before and after linears; RepAdapter
    # before qkv and fc1; Houlsby bottlenecks after the attention and MLP
    # outputs.
    make_vit = seeded(ViTForImageClassification, 3)
    vit_io = dict(input_names=["pixel_values"], output_names=["logits"])
    export_own_adapters("vit-tiny", "ssf", make_vit, [("adapter", lambda m, d: make_ssf_adapter(
        m, ["projection", "layernorm_before", "vit.layernorm", "query", "output.dense"], d,
        seed=21))], **vit_io)
    export_own_adapters("vit-tiny", "zeroi2v", make_vit, [
        ("before", lambda m, d: make_residual_adapter(
            m, "LINEAR_ADAPTER", ["query", "intermediate.dense"], d, seed=22, position="before",
            scaling=0.5)),
        ("after", lambda m, d: make_residual_adapter(
            m, "LINEAR_ADAPTER", ["attention.output.dense"], d, seed=23, position="after"))],
        **vit_io)
    export_own_adapters("vit-tiny", "repadapter", make_vit, [("adapter", lambda m, d:
        make_residual_adapter(m, "REPADAPTER", ["key", "intermediate.dense"], d, seed=24,
                              position="before", groups=2, scaling=0.7))], **vit_io)
    export_own_adapters("vit-tiny", "bottleneck", make_vit, [("adapter", lambda m, d:
        make_residual_adapter(m, "BOTTLENECK", ["attention.output.dense", "output.dense"], d,
                              seed=25, position="after", non_linearity="gelu", scaling=2.0))],
        **vit_io)

    # ZeroI2V's STDHA on the keys and values: two clips of four frames.
    export_stdha_adapter("vit-tiny", make_vit, ["key", "value"], frames=4, heads=4, fold=1,
                         seed=26, input_shape=(8, 3, 16, 16), **vit_io)

    torch.manual_seed(4)
    resnet = ResNet()
    export("resnet-tiny", resnet, [torch.randn(2, 3, 16, 16)], ["pixel_values"], ["logits"],
           lora_config(target_modules=["fc"], r=4, lora_alpha=8),
           seed=5, batch5=[torch.randn(5, 3, 16, 16)])

    # LoRA and DoRA on convolutions (3×3, strided, 1×1) and the linear head.
    torch.manual_seed(5)
    export("cnn-tiny", ConvNet(), [torch.randn(2, 3, 12, 12)], ["pixel_values"], ["logits"],
           lora_config(target_modules=["conv1", "conv2", "conv3", "fc"], r=4, lora_alpha=8),
           seed=8, batch5=[torch.randn(5, 3, 12, 12)], merged_weights=True)
    export_adapter("cnn-tiny", "dora", seeded(ConvNet, 5),
                   lora_config(target_modules=["conv2", "conv3", "fc"], r=4, lora_alpha=8,
                               use_dora=True),
                   seed=9, input_names=["pixel_values"], output_names=["logits"],
                   merged_weights=True)

    # bias = "all" (the LoRA layers' biases as .base_layer.bias) and
    # modules_to_save (the head, whole).
    export_adapter("cnn-tiny", "saved-parameters", seeded(ConvNet, 5),
                   lora_config(target_modules=["conv1", "conv2"], r=4, lora_alpha=8, bias="all",
                               modules_to_save=["fc"]),
                   seed=13, input_names=["pixel_values"], output_names=["logits"])

    # IA3 on convolutions (output scaling, and a feed-forward one scaling its
    # input channels) and the head.
    export_ia3_adapter("cnn-tiny", seeded(ConvNet, 5), ["conv2", "conv3", "fc"], ["conv3"], 19,
                       ["pixel_values"], ["logits"])

    # A second LoRA adapter for combining with the first (cat, svd).
    export_adapter("cnn-tiny", "second", seeded(ConvNet, 5),
                   lora_config(target_modules=["conv2", "fc"], r=2, lora_alpha=4),
                   seed=18, input_names=["pixel_values"], output_names=["logits"])

    # LoHa and LoKr on convolutions and linears.
    for peft_type, seed in (("LOHA", 14), ("LOKR", 15)):
        export_factored_adapter("cnn-tiny", peft_type.lower(), seeded(ConvNet, 5), peft_type,
                                ["conv2", "conv3", "fc"], seed, ["pixel_values"], ["logits"])
    export_factored_adapter("llama-tiny", "loha", seeded(LlamaForCausalLM, 2), "LOHA",
                            ["q_proj", "v_proj", "down_proj"], 16, ["input_ids"], ["logits"])
    export_factored_adapter("llama-tiny", "lokr", seeded(LlamaForCausalLM, 2), "LOKR",
                            ["q_proj", "v_proj", "gate_proj"], 17, ["input_ids"], ["logits"],
                            r=2, decompose_both=["gate_proj"])

    # LoRA on the token embedding (lora_embedding_A/B) beside attention
    # projections; DoRA on linears with and without biases.
    export_adapter("llama-tiny", "lora-embedding", seeded(LlamaForCausalLM, 2),
                   lora_config(target_modules=["embed_tokens", "q_proj", "v_proj"], r=4,
                               lora_alpha=8),
                   seed=10, input_names=["input_ids"], output_names=["logits"])
    export_adapter("llama-tiny", "dora", seeded(LlamaForCausalLM, 2),
                   lora_config(target_modules=["q_proj", "v_proj", "down_proj"], r=4,
                               lora_alpha=8, use_dora=True),
                   seed=11, input_names=["input_ids"], output_names=["logits"])
    export_adapter("bert-tiny", "dora", seeded(BertModel, 0),
                   lora_config(target_modules=["query", "value", "output.dense"], r=4,
                               lora_alpha=8, use_dora=True),
                   seed=12, input_names=["input_ids", "attention_mask"],
                   output_names=["last_hidden_state", "pooler_output"])

    # Adapters saved in half precision (F16, BF16) over the f32 models:
    # LoRA with lora_bias, LoRA on an embedding, DoRA on convolutions, LoHa
    # and a bottleneck. The references use the rounded values in f32.
    export_adapter("bert-tiny", "half-lora", seeded(BertModel, 0),
                   lora_config(target_modules=["query", "value", "dense"], lora_bias=True),
                   seed=27, input_names=["input_ids", "attention_mask"],
                   output_names=["last_hidden_state", "pooler_output"], dtype="F16")
    export_adapter("llama-tiny", "half-embedding", seeded(LlamaForCausalLM, 2),
                   lora_config(target_modules=["embed_tokens", "q_proj"], r=4, lora_alpha=8),
                   seed=28, input_names=["input_ids"], output_names=["logits"], dtype="BF16")
    export_adapter("cnn-tiny", "half-dora", seeded(ConvNet, 5),
                   lora_config(target_modules=["conv2", "conv3", "fc"], r=4, lora_alpha=8,
                               use_dora=True),
                   seed=29, input_names=["pixel_values"], output_names=["logits"], dtype="BF16")
    export_factored_adapter("cnn-tiny", "half-loha", seeded(ConvNet, 5), "LOHA",
                            ["conv2", "conv3", "fc"], 30, ["pixel_values"], ["logits"],
                            dtype="F16")
    export_own_adapters("vit-tiny", "half-bottleneck", make_vit, [("adapter", lambda m, d:
        make_residual_adapter(m, "BOTTLENECK", ["output.dense"], d, seed=31, position="after",
                              non_linearity="silu", dtype="BF16"))], **vit_io)

    # An F32 LoRA over BF16 weights, unmerged (the branch in f32, the sum
    # rounded to bf16) and merged (W + s·ΔW rounded once to bf16).
    mlp_config = lora_config(target_modules=["fc1", "fc2", "head"])
    torch.manual_seed(6)
    export("mlp-bf16", BFloat16Mlp(), [torch.randn(2, 16)], ["features"], ["logits"], mlp_config,
           seed=32, batch5=[torch.randn(5, 16)])
    export_merged_outputs("mlp-bf16", seeded(BFloat16Mlp, 6), mlp_config, 32, ["features"],
                          ["logits"])
    # DoRA over the BF16 weights: its factors come from the bf16 weight at
    # compile time; the runtime, which reads F32 weights only, refuses to load it.
    export_adapter("mlp-bf16", "dora", seeded(BFloat16Mlp, 6),
                   lora_config(target_modules=["fc1", "fc2", "head"], use_dora=True),
                   seed=33, input_names=["features"], output_names=["logits"])


if __name__ == "__main__":
    main()
