"""Per-point worst case over an attack sequence at one (norm, eps).

Each attack starts from the clean image and runs only on points that are clean-correct and still unbroken;
every example an attack returns is verified (finite, in [0, 1], inside the eps-ball) before it counts.
Randomness: torchattacks draws random starts from the global torch RNG (APGD/FAB/Square reseed it from their
`seed`), so the engine seeds it per batch from (run seed, task key, attack position, restart, ids of the
batch) inside `torch.random.fork_rng` (the caller's RNG state is left untouched). A batch holds the still-active
points of one fixed block of `batch_size` positions, and the runner's shards are whole blocks, so results do
not depend on the shard size, the executor or the worker count; they do depend on the batch size, because a
random start depends on which points share its batch.
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
from robustbench_local.seeding import derive_seed

from .registry import AttackConfig, budget, build_attack, margins, restarts
from .threat import verify_examples

NOT_BROKEN = ""
MISCLASSIFIED = "clean"


@dataclass
class PointState:
    """Per-point outcome: the recorded example's logits, its perturbation norms and which attack broke it.

    For a broken point the record is the first verified example that fooled the model; for a robust point it is
    the verified candidate with the smallest margin z_y - max_{k != y} z_k (the clean image until an attack ran).
    """

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
        return cls(logits, correct, np.where(correct, NOT_BROKEN, MISCLASSIFIED).astype(object),
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
            atk = build_attack(member, model, norm, eps, model.num_classes)
            cost = budget(member, model.num_classes)
            label = member.name
            start = time.perf_counter()
            for restart in range(restarts(member)):
                active = state.active
                with progress.bar(int(active.sum()), f"{label} {norm} eps={eps:.4g}", "pt") as bar:
                    for lo in range(0, len(labels), batch_size):  # batches = fixed blocks of positions
                        idx = lo + np.flatnonzero(active[lo:lo + batch_size])
                        if not len(idx):
                            continue
                        seed = derive_seed(*seed_parts, position, label, restart, ",".join(map(str, ids[idx])))
                        _attack_batch(model, atk, member.spec.minimum_norm, read(idx), y_all[idx], ids[idx], idx,
                                      norm, eps, label, seed, state, device)
                        state.queries[idx] += cost
                        bar.update(len(idx))
            state.seconds[f"{position}:{label}"] = time.perf_counter() - start
    return state


def _attack_batch(model, atk, minimum_norm, images, y, ids, idx, norm, eps, label, seed, state, device) -> None:
    x = to_tensor(images, device).contiguous()  # torchattacks uses .view() on inputs and their gradients
    y = y.to(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if hasattr(atk, "seed"):
            atk.seed = seed
        x_adv = atk(x, y).detach()
    if minimum_norm:  # a minimum-norm attack's example outside the ball is a failure at this eps
        x_adv = _inside_ball(x_adv, x, norm, eps)
    linf, l2 = verify_examples(x_adv, x, norm, eps, label, ids)
    with torch.no_grad():
        logits = model(x_adv).float()
    marg = margins(logits, y).cpu().numpy().astype(np.float64)
    fooled = (logits.argmax(dim=1) != y).cpu().numpy()
    better = fooled | (marg < state.margin[idx])
    take = idx[better]
    state.logits[take] = logits.cpu().numpy()[better]
    state.margin[take] = marg[better]
    state.linf[take], state.l2[take] = linf[better], l2[better]
    state.broken_by[idx[fooled]] = label


def _inside_ball(x_adv: torch.Tensor, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "Linf" else delta.norm(dim=1)
    keep = (size <= eps).view(-1, *[1] * (x.dim() - 1))
    return torch.where(keep, x_adv, x)
