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
    """Hex digest over a module's parameters and buffers (names, shapes, values), quantised weights included.

    Quantised layers keep their int8 weights in packed objects: in the state dict as tuples of quantised tensors
    (eager modules), or hidden from it in a `_packed_params` script object (TorchScript): both are hashed.
    """
    h = hashlib.blake2b(digest_size=16)
    state = dict(module.state_dict())
    for name, sub in module.named_modules():
        packed = getattr(sub, "_packed_params", None)
        if isinstance(packed, torch.ScriptObject):
            state[f"{name}._packed_params"] = packed.__getstate__()
    for name, value in sorted(state.items()):
        _hash_value(h, name, value)
    return h.hexdigest()


def _hash_value(h: hashlib._Hash, name: str, value: object) -> None:
    if isinstance(value, torch.Tensor):
        t = (value.dequantize() if value.is_quantized else value).detach().cpu().contiguous()
        h.update(f"{name}{value.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            _hash_value(h, f"{name}.{i}", item)
    else:  # dtypes, strings and numbers inside packed parameters
        h.update(f"{name}={value!r}".encode())
