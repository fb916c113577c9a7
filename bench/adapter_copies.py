"""Copies of one PEFT LoRA adapter that differ only in lora_alpha (so in
scale): the many adapters of the multi-adapter benchmarks."""
import json
import os
import shutil


def alpha_copies(source, work, count, alpha_step):
    """`count` copies of the adapter directory `source` as WORK/adapter<i>,
    copy i with lora_alpha × (1 + i·alpha_step); returns their directories."""
    with open(os.path.join(source, "adapter_config.json")) as f:
        config = json.load(f)
    directories = []
    for i in range(count):
        directory = os.path.join(work, f"adapter{i}")
        os.makedirs(directory)
        shutil.copy(os.path.join(source, "adapter_model.safetensors"), directory)
        with open(os.path.join(directory, "adapter_config.json"), "w") as f:
            json.dump(dict(config, lora_alpha=config["lora_alpha"] * (1 + i * alpha_step)), f)
        directories.append(directory)
    return directories
