#!/usr/bin/env python3
"""Writes a Hugging Face PEFT adapter directory for tests.

    make_adapter.py DIR --config JSON --tensor NAME:SHAPE:VALUES[:DTYPE] ...

The config is merged over PEFT's LoRA defaults; tensors are written as in
make_safetensors.py (so NAME is e.g. base_model.model.fc.lora_A.weight).
"""
import argparse
import json
import os

from make_safetensors import write

DEFAULTS = {"peft_type": "LORA", "r": 8, "lora_alpha": 8, "target_modules": None,
            "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
            "use_dora": False, "modules_to_save": None}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--config", default="{}")
    parser.add_argument("--tensor", action="append", default=[])
    parser.add_argument("--truncate", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    config = dict(DEFAULTS, **json.loads(args.config))
    with open(os.path.join(args.directory, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    write(os.path.join(args.directory, "adapter_model.safetensors"), args.tensor, args.truncate)


if __name__ == "__main__":
    main()
