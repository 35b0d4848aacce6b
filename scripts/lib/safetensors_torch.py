"""Reads a safetensors file into CPU torch tensors with the standard library alone (no safetensors package needed)."""
import json
import struct

import torch

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def load_safetensors(path):
    """Every tensor of the file, by name, as float32/bfloat16/float16 CPU tensors."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        size = torch.tensor([], dtype=dt).element_size()
        out[name] = torch.frombuffer(data, dtype=dt, offset=b, count=(e - b) // size).reshape(info["shape"]).clone()
    return out
