"""CPU latency of several models measured side by side in one process.

Every repetition times one forward pass of each model on the same batch, the models in a rotated order (so none is
always first after another's cache traffic); warm-up repetitions are timed and dropped; the figure is the median over
the kept repetitions divided by the batch size. The torch thread count is fixed for the measurement (and restored).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .device import processor
from .errors import SpecError
from .models import Classifier


@dataclass(frozen=True)
class LatencySetup:
    """How the latency is measured: batch sizes, kept and warm-up repetitions, torch threads."""

    batch_sizes: tuple[int, ...] = (1, 32)
    repetitions: int = 20
    warmup: int = 3
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1 or self.repetitions < 1 or self.warmup < 0 \
                or self.threads < 1:
            raise SpecError("latency needs batch sizes >= 1, repetitions >= 1, warm-up >= 0 and threads >= 1, got "
                            f"{self.batch_sizes}, {self.repetitions}, {self.warmup}, {self.threads}")

    def describe(self) -> str:
        """One line saying how the figures were measured."""
        return (f"CPU latency in ms per image: median of {self.repetitions} repetitions after {self.warmup} warm-up, "
                f"the models alternating within each repetition, {self.threads} torch thread(s), {processor()}")


@dataclass(frozen=True)
class Latency:
    """The median time per image of one model at one batch size, and every kept repetition (ms per image)."""

    model: str
    batch_size: int
    ms_per_image: float
    samples: tuple[float, ...]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to `n` inside the block, restored after."""
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def measure_latency(models: dict[str, Classifier], images: torch.Tensor, setup: LatencySetup,
                    on_repetition=lambda: None) -> list[Latency]:
    """Latency of each model (on the CPU) at each of `setup.batch_sizes`, on the first images of `images` ([0, 1]
    pixels, NCHW; a batch size above their count is refused); `on_repetition` is called after each repetition."""
    if max(setup.batch_sizes) > len(images):
        raise SpecError(f"a latency batch of {max(setup.batch_sizes)} needs as many images, the data gives "
                        f"{len(images)}; choose a smaller --latency-batch")
    names = list(models)
    out = []
    with torch_threads(setup.threads), torch.no_grad():
        for size in setup.batch_sizes:
            batch = images[:size].cpu()
            times: dict[str, list[float]] = {name: [] for name in names}
            for rep in range(setup.warmup + setup.repetitions):
                shift = rep % len(names)
                for name in names[shift:] + names[:shift]:
                    start = time.perf_counter_ns()
                    models[name](batch)
                    elapsed = time.perf_counter_ns() - start
                    if rep >= setup.warmup:
                        times[name].append(elapsed / 1e6 / size)
                on_repetition()
            out += [Latency(name, size, statistics.median(times[name]), tuple(times[name])) for name in names]
    return out
