"""peft_mlir.compile_peft on in-memory PeftModels made by transformers and peft (a
small BertModel, random init, adapter weights perturbed so that they act): its outputs
against the PeftModel's own forward, on inputs of another batch and sequence size than
the example's. Prints one line per check for FileCheck; any mismatch raises.

    compile_peft_check.py WORK_DIR
"""
import os
import sys

import numpy as np
import torch
from peft import IA3Config, LoraConfig, get_peft_model
from transformers import BertConfig, BertModel

import peft_mlir

work = sys.argv[1]
torch.manual_seed(0)
config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=64, initializer_range=0.1)
base = BertModel(config).eval()
model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
model.add_adapter("wide", LoraConfig(r=8, lora_alpha=4, target_modules=["query", "key", "dense"]))
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.copy_(0.3 * torch.randn(p.shape))
model.eval()


def inputs(batch, sequence, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, sequence, dtype=torch.long)
    mask[0, sequence - 2:] = 0
    return {"input_ids": torch.randint(0, 64, (batch, sequence), generator=g),
            "attention_mask": mask}


def peft_forward(arrays):
    with torch.no_grad():
        out = model(**arrays)
    return {"last_hidden_state": out.last_hidden_state.numpy(),
            "pooler_output": out.pooler_output.numpy()}


def close(got, want, what):
    for name, expected in want.items():
        diff = float(np.abs(got[name] - expected).max())
        assert diff <= 1e-4 * max(1.0, float(np.abs(expected).max())), f"{what}: {name} {diff}"


example, check = inputs(2, 8, 1), inputs(3, 5, 2)

# The active adapter ("default"), merged.
out = peft_mlir.compile_peft(model, example, output=os.path.join(work, "merged"),
                             work_dir=os.path.join(work, "files"))
compiled = peft_mlir.load(out)
print("outputs:", compiled.outputs)
close(compiled.run(**{k: v.numpy() for k, v in check.items()}), peft_forward(check), "merge")
print("merge (default) matches PEFT")
print("files:", sorted(os.listdir(os.path.join(work, "files"))),
      sorted(os.listdir(os.path.join(work, "files", "adapters"))))

# The other adapter active, unmerged; torch tensors go in as they are.
model.set_adapter("wide")
compiled = peft_mlir.load(peft_mlir.compile_peft(model, example, mode="fuse",
                                                 output=os.path.join(work, "fused")))
close(compiled.run(**check), peft_forward(check), "fuse")
print("fuse (wide) matches PEFT")

# Every adapter in its slot (default: 0, wide: 1); rows pick theirs, -1 none.
compiled = peft_mlir.load(peft_mlir.compile_peft(model, example, mode="multi",
                                                 output=os.path.join(work, "multi")))
got = compiled.run(adapter_index=np.array([1, -1, 0]), **check)
model.set_adapter("default")
want = [None, None, peft_forward(check)]
model.set_adapter("wide")
want[0] = peft_forward(check)
with model.disable_adapter():
    want[1] = peft_forward(check)
for row in range(3):
    close({n: v[row] for n, v in got.items()}, {n: v[row] for n, v in want[row].items()},
          f"multi row {row}")
print("multi matches PEFT row by row")

# IA3 through the same path.
ia3 = get_peft_model(BertModel(config).eval(),
                     IA3Config(target_modules=["key", "value", "output.dense"],
                               feedforward_modules=["output.dense"]))
with torch.no_grad():
    for name, p in ia3.named_parameters():
        if "ia3_l" in name:
            p.add_(0.3 * torch.randn(p.shape))
ia3.eval()
compiled = peft_mlir.load(peft_mlir.compile_peft(ia3, example, output=os.path.join(work, "ia3")))
with torch.no_grad():
    expected = ia3(**check).last_hidden_state.numpy()
close(compiled.run(**check), {"last_hidden_state": expected}, "ia3")
print("ia3 matches PEFT")

for call in (lambda: peft_mlir.compile_peft(base, example, output=os.path.join(work, "x")),
             lambda: peft_mlir.compile_peft(model, example, adapters=["nope"],
                                            output=os.path.join(work, "x")),
             lambda: peft_mlir.compile_peft(model, [example["input_ids"]],
                                            output=os.path.join(work, "x"))):
    try:
        call()
        raise AssertionError("no PeftError")
    except peft_mlir.PeftError as error:
        print("error:", error)
assert not os.path.exists(os.path.join(work, "x"))
print("done")
