#!/usr/bin/env python3
"""Copies a Hugging Face PEFT adapter directory, changed for a test.

    copy_adapter.py SRC_DIR DST_DIR [--duplicate OLD=NEW] [--drop KEY]

--duplicate adds, beside every tensor whose name contains OLD, a copy named
with NEW in its place (say .h.1.=.h.0.: layer 1's tensors for layer 0 too);
--drop removes KEY from adapter_config.json. Standard library only: the
tensors' bytes are copied as they are.
"""
import argparse
import json
import os
import struct


def read_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    metadata = header.pop("__metadata__", None)
    tensors = {name: (info["dtype"], info["shape"], data[slice(*info["data_offsets"])])
               for name, info in header.items()}
    return tensors, metadata


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # The data starts 8-byte aligned.
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--duplicate", action="append", default=[])
    parser.add_argument("--drop", action="append", default=[])
    args = parser.parse_args()
    os.makedirs(args.destination, exist_ok=True)
    with open(os.path.join(args.source, "adapter_config.json")) as f:
        config = json.load(f)
    for key in args.drop:
        config.pop(key)
    with open(os.path.join(args.destination, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tensors, metadata = read_safetensors(os.path.join(args.source, "adapter_model.safetensors"))
    for rule in args.duplicate:
        old, new = rule.split("=")
        copies = {name.replace(old, new): value for name, value in tensors.items() if old in name}
        if not copies:
            raise SystemExit(f"no tensor name contains {old!r}")
        tensors.update(copies)
    write_safetensors(os.path.join(args.destination, "adapter_model.safetensors"), tensors, metadata)


if __name__ == "__main__":
    main()
