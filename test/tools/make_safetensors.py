#!/usr/bin/env python3
"""Writes a safetensors file for tests, with the standard library only.

    make_safetensors.py OUT.safetensors --tensor NAME:SHAPE:VALUES[:DTYPE] ...

SHAPE is like 2x3 (or "scalar"); VALUES is one number (a fill) or a
comma-separated list; DTYPE is F32 (default), F16, BF16 or I64.
--truncate N drops the last N bytes, to make a damaged file.
"""
import argparse
import json
import struct

FORMATS = {"F32": ("<f", 4), "F16": ("<e", 2), "I64": ("<q", 8)}


def encode(values, dtype):
    if dtype == "BF16":  # The upper half of each float32.
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    fmt, _ = FORMATS[dtype]
    return b"".join(struct.pack(fmt, int(v) if dtype == "I64" else v) for v in values)


def parse_tensor(spec):
    parts = spec.split(":")
    name, shape_text, values_text = parts[0], parts[1], parts[2]
    dtype = parts[3] if len(parts) > 3 else "F32"
    shape = [] if shape_text == "scalar" else [int(s) for s in shape_text.split("x")]
    count = 1
    for size in shape:
        count *= size
    values = [float(v) for v in values_text.split(",")]
    if len(values) == 1:
        values = values * count
    if len(values) != count:
        raise SystemExit(f"{name}: {len(values)} values for shape {shape}")
    return name, dtype, shape, encode(values, dtype)


def write(path, specs, truncate=0):
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, data in sorted(parse_tensor(s) for s in specs):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    content = struct.pack("<Q", len(text)) + text + b"".join(blobs)
    with open(path, "wb") as f:
        f.write(content[: len(content) - truncate])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--tensor", action="append", default=[])
    parser.add_argument("--truncate", type=int, default=0)
    args = parser.parse_args()
    write(args.output, args.tensor, args.truncate)


if __name__ == "__main__":
    main()
