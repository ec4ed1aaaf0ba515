"""Per-point random streams for attacks: each point's draws come from its own generator, keyed by the run seed, the
task, the attack's position and name in the sequence, the restart, what the draw is for, and the sample id, so a
point's random start (or Square proposal) never depends on which points share its batch, or on the batch size."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from robustbench_local.seeding import torch_generator


class PointNoise:
    """Random draws for the points `ids` of one attack run; `parts` = (run seed, task key, position, name, restart)."""

    def __init__(self, parts: tuple, ids: np.ndarray | Sequence[str]) -> None:
        self.parts = parts
        self.ids = [str(i) for i in ids]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray | torch.Tensor) -> PointNoise:
        """The streams of the points at `rows` (positions in this set)."""
        return PointNoise(self.parts, [self.ids[int(r)] for r in rows])

    def generators(self, purpose: object) -> list[torch.Generator]:
        """One CPU generator per point for `purpose` (e.g. 'start', ('target', 2)); draw from it in a fixed order."""
        return [torch_generator(*self.parts, purpose, i) for i in self.ids]

    def uniform(self, purpose: object, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        """(n, *shape) draws from U[0, 1), row i from point i's own stream."""
        return _stack([torch.rand(shape, generator=g) for g in self.generators(purpose)], shape, device)

    def normal(self, purpose: object, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        """(n, *shape) draws from N(0, 1), row i from point i's own stream."""
        return _stack([torch.randn(shape, generator=g) for g in self.generators(purpose)], shape, device)


def _stack(rows: list[torch.Tensor], shape: tuple[int, ...], device: torch.device | str) -> torch.Tensor:
    out = torch.stack(rows) if rows else torch.empty((0, *shape))
    return out.to(device)
