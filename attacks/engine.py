"""Per-point worst case over an attack sequence at one (norm, eps).

Each attack starts from the clean image and runs only on points that are clean-correct and still unbroken; every
example an attack returns is checked (finite, in [0, 1], inside the eps-ball) before it counts, and judged by the
logits the attack computed at it. Randomness: every point draws from its own streams, keyed by (run seed, task key,
attack position and name, restart, sample id) (noise.py), and no attack lets points of a batch interact, so the
records do not depend on the batch size, the order, the shard size, the executor or the worker count. Batches are
the still-unbroken points in order, `batch_size` at a time.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from robustbench_local.models import Classifier
from robustbench_local.models.classifier import frozen_mode, to_tensor
from robustbench_local.progress import Progress

from .base import Outcome, margins
from .noise import PointNoise
from .registry import AttackConfig, build_attack, restarts
from .threat import verify_examples

NOT_BROKEN = ""
MISCLASSIFIED = "clean"


@dataclass
class PointState:
    """Per-point outcome: the recorded example's logits, its perturbation norms and which attack broke it.

    For a broken point the record is the first verified example that fooled the model; for a robust point it is
    the verified candidate with the smallest margin z_y - max_{k != y} z_k (the clean image until an attack ran).
    `queries` counts the model passes (forward and backward) each point received; `clean` keeps the clean logits.
    """

    clean: np.ndarray
    logits: np.ndarray
    clean_correct: np.ndarray
    broken_by: np.ndarray
    margin: np.ndarray
    linf: np.ndarray
    l2: np.ndarray
    queries: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_clean(cls, clean_logits: np.ndarray, labels: np.ndarray) -> PointState:
        n = len(labels)
        logits = np.asarray(clean_logits, np.float32).copy()
        correct = logits.argmax(axis=1) == labels
        marg = margins(torch.from_numpy(logits), torch.from_numpy(labels.astype(np.int64))).numpy()
        return cls(logits.copy(), logits, correct, np.where(correct, NOT_BROKEN, MISCLASSIFIED).astype(object),
                   marg.astype(np.float64), np.zeros(n), np.zeros(n), np.zeros(n, np.int64))

    @property
    def broken(self) -> np.ndarray:
        return self.clean_correct & (self.broken_by != NOT_BROKEN)

    @property
    def active(self) -> np.ndarray:
        return self.clean_correct & (self.broken_by == NOT_BROKEN)

    def adopt(self, other: PointState, where: np.ndarray) -> None:
        """Take `other`'s records at `where` (breaks found at a smaller eps hold at every larger eps)."""
        for name in ("logits", "broken_by", "margin", "linf", "l2", "queries"):
            getattr(self, name)[where] = getattr(other, name)[where]


def run_sequence(model: Classifier, read: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, ids: np.ndarray,
                 members: list[AttackConfig], norm: str, eps: float, state: PointState, seed_parts: tuple,
                 batch_size: int, progress: Progress | None = None) -> PointState:
    """Run `members` in order on the still-unbroken points of `state` (updated in place and returned);
    `read(positions)` gives the uint8 NHWC images of those positions (e.g. `DataSource.read`).

    At eps = 0 the ball holds only the clean image, so nothing runs and the records are the clean predictions.
    """
    if eps == 0:
        return state
    device, progress = model.device, progress or Progress(quiet=True)
    y_all = torch.from_numpy(labels.astype(np.int64))
    with frozen_mode(model):
        for position, member in enumerate(members):
            attack = build_attack(member, model, norm, eps, model.num_classes)
            start = time.perf_counter()
            for restart in range(restarts(member)):
                active = state.active
                with progress.bar(int(active.sum()), f"{member.name} {norm} eps={eps:.4g}", "pt") as bar:
                    for lo in range(0, len(active), batch_size):  # fixed blocks of positions: a batch holds the same
                        idx = lo + np.flatnonzero(active[lo:lo + batch_size])  # points however the run is sharded
                        if not len(idx):
                            continue
                        x = to_tensor(read(idx), device)
                        y = y_all[idx].to(device)
                        noise = PointNoise((*seed_parts, position, member.name, restart), ids[idx])
                        outcome = attack(x, y, torch.from_numpy(state.clean[idx]).to(device), noise)
                        _record(state, idx, outcome, x, y, norm, eps, member, ids[idx])
                        bar.update(len(idx))
            state.seconds[f"{position}:{member.name}"] = time.perf_counter() - start
    return state


def _record(state: PointState, idx: np.ndarray, outcome: Outcome, x: torch.Tensor, y: torch.Tensor, norm: str,
            eps: float, member: AttackConfig, ids: np.ndarray) -> None:
    """Check the examples of one batch and keep, per point, a fooling one or a candidate with a lower margin."""
    x_adv, logits = outcome.x_adv.detach(), outcome.logits.detach().float()
    if member.spec.meta["minimum_norm"]:  # a minimum-norm attack's example outside the ball is a failure at this eps
        inside = _inside_ball(x_adv, x, norm, eps)
        x_adv = torch.where(inside.view(-1, *[1] * (x.dim() - 1)), x_adv, x)
        logits = torch.where(inside[:, None], logits, torch.from_numpy(state.clean[idx]).to(logits.device))
    linf, l2 = verify_examples(x_adv, x, norm, eps, member.name, ids)
    marg = margins(logits, y).cpu().numpy().astype(np.float64)
    fooled = (logits.argmax(dim=1) != y).cpu().numpy()
    better = fooled | (marg < state.margin[idx])
    take = idx[better]
    state.logits[take] = logits.cpu().numpy()[better]
    state.margin[take] = marg[better]
    state.linf[take], state.l2[take] = linf[better], l2[better]
    state.broken_by[idx[fooled]] = member.name
    state.queries[idx] += outcome.queries.cpu().numpy()


def _inside_ball(x_adv: torch.Tensor, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "Linf" else delta.norm(dim=1)
    return size <= eps
