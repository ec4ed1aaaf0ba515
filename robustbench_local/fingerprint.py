"""Content fingerprints of models and data, recorded in manifests and used in task keys."""
from __future__ import annotations

import hashlib

import numpy as np
import torch


def hash_arrays(*arrays: np.ndarray) -> str:
    """Hex digest over the dtype, shape and bytes of each array."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes() if a.dtype.kind != "U" else "\x1f".join(a.tolist()).encode())
    return h.hexdigest()


def digest64(*parts: object) -> int:
    """A 64-bit digest of the string forms of `parts` (per-sample identities)."""
    return int.from_bytes(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def hash_module(module: torch.nn.Module) -> str:
    """Hex digest over a module's parameters and buffers (names, shapes, values)."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
