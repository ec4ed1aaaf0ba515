"""Random streams keyed by (run seed, task key, sample id), so results never depend on batching or order."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on the string forms of `parts`."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def numpy_rng(*parts: object) -> np.random.Generator:
    """A numpy generator seeded from `parts`."""
    return np.random.default_rng(derive_seed(*parts))


def torch_generator(*parts: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded from `parts`."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(*parts))
    return gen


@contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Run the block with torch's global CPU generator seeded with `seed` (as after `torch.manual_seed(seed)`),
    restoring its state afterwards: for code that draws from it, such as a model's random initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
