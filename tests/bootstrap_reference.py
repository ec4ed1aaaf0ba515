"""The bootstrap as the package computed it before chunked resampling, kept as the slow oracle the package must match
interval for interval (tests/test_bootstrap.py, bench/bench_aggregation.py): dense (B, N) matrices of resample counts
drawn 100 rows at a time from the generator seeded by ("bootstrap", *seed parts), per-bin sums by scipy.sparse
products, equal-mass ECE by a loop over replicates that repeats each sample by its count."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
from robustbench_local.ood.metrics import OOD_METRICS, Counts
from scipy import sparse
from scipy.special import log_softmax

from robustbench_local.seeding import numpy_rng

N_BINS = 15
LOG_FLOOR = np.log(1e-12)


def weights(n: int, n_boot: int, *seed_parts: object) -> Iterator[np.ndarray]:
    rng = numpy_rng("bootstrap", *seed_parts)
    for start in range(0, n_boot, 100):
        b = min(100, n_boot - start)
        draws = rng.integers(0, n, size=(b, n)) + np.arange(b)[:, None] * n
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


class Predictions:
    def __init__(self, logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> None:
        self.log_probs = log_softmax(np.asarray(logits, np.float64) / temperature, axis=1)
        self.labels = np.asarray(labels)
        self.probs = np.exp(self.log_probs)
        self.pred = self.log_probs.argmax(axis=1)
        rows = np.arange(len(self.labels))
        self.confidence = self.probs[rows, self.pred]
        self.correct = (self.pred == self.labels).astype(np.float64)
        self.nll = -np.maximum(self.log_probs[rows, self.labels], LOG_FLOOR)
        self.brier = ((self.probs - np.eye(self.probs.shape[1])[self.labels]) ** 2).sum(axis=1)


def _bins(confidence: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(confidence * N_BINS).astype(np.int64), 0, N_BINS - 1)


def _mean(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w @ values) / w.sum(axis=1)


def _binned_gaps(gap: np.ndarray, bins: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    onehot = sparse.csr_matrix((np.ones(len(bins)), (np.arange(len(bins)), bins)), shape=(len(bins), N_BINS))
    return np.asarray((onehot.T @ (w * gap).T).T), np.asarray((onehot.T @ w.T).T)


def ece_equal_width(p: Predictions, w: np.ndarray) -> np.ndarray:
    sums, _ = _binned_gaps(p.correct - p.confidence, _bins(p.confidence), w)
    return np.abs(sums).sum(axis=1) / w.sum(axis=1)


def mce(p: Predictions, w: np.ndarray) -> np.ndarray:
    sums, counts = _binned_gaps(p.correct - p.confidence, _bins(p.confidence), w)
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.where(counts > 0, np.abs(sums) / counts, -np.inf)
    return gaps.max(axis=1)


def ece_equal_mass(p: Predictions, w: np.ndarray) -> np.ndarray:
    order = np.argsort(p.confidence, kind="stable")
    gap = (p.correct - p.confidence)[order]
    out = np.empty(len(w))
    for r, counts in enumerate(w[:, order].astype(np.int64)):
        expanded = np.repeat(gap, counts)
        m = len(expanded)
        size, extra = divmod(m, N_BINS)
        starts = np.cumsum([0] + [size + (b < extra) for b in range(N_BINS - 1)])
        starts = starts[starts < m]
        out[r] = np.abs(np.add.reduceat(expanded, starts)).sum() / m
    return out


def classwise_ece(p: Predictions, w: np.ndarray) -> np.ndarray:
    n, k = p.probs.shape
    target = np.eye(k)[p.labels]
    columns = (np.arange(k)[None, :] * N_BINS + _bins(p.probs)).ravel()
    rows = np.repeat(np.arange(n), k)
    z = sparse.csr_matrix(((target - p.probs).ravel(), (rows, columns)), shape=(n, k * N_BINS))
    sums = np.asarray((z.T @ w.T).T).reshape(len(w), k, N_BINS)
    return np.abs(sums).sum(axis=2).mean(axis=1) / w.sum(axis=1)


def _errors_ranked(p: Predictions, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One replicate's samples repeated by their counts, by descending confidence: each position's expected error
    under a uniformly random order within tied confidences (the group's error share), and the errors themselves."""
    confidence, errors = np.repeat(p.confidence, counts), np.repeat(1.0 - p.correct, counts)
    _, group, sizes = np.unique(-confidence, return_inverse=True, return_counts=True)
    return (np.bincount(group, errors) / sizes)[np.sort(group)], errors


def _per_replicate(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[Predictions, np.ndarray], np.ndarray]:
    """A selective metric of (expected errors by rank, errors), replicate by replicate."""
    return lambda p, w: np.array([fn(*_errors_ranked(p, row.astype(int))) for row in w])


def _area(values: np.ndarray) -> float:
    m = len(values)
    return float(np.trapezoid(values, np.arange(1, m + 1) / m) / (1 - 1 / m)) if m >= 2 else np.nan


def _risk(e: np.ndarray) -> np.ndarray:
    return np.cumsum(e) / np.arange(1, len(e) + 1)


def _coverage_at(e: np.ndarray, risk: float) -> float:
    ok = np.flatnonzero(_risk(e) <= risk + 1e-12)
    return (ok[-1] + 1) / len(e) if len(ok) else np.nan


def _misclassification_auroc(p: Predictions, w: np.ndarray) -> np.ndarray:
    from sklearn.metrics import roc_auc_score
    out = []
    for row in w:
        keep = row > 0
        correct = p.correct[keep]
        both = 0 < correct.sum() < len(correct)
        out.append(roc_auc_score(correct, p.confidence[keep], sample_weight=row[keep]) if both else np.nan)
    return np.array(out)


SELECTIVE: dict[str, Callable[[Predictions, np.ndarray], np.ndarray]] = {
    "aurc": _per_replicate(lambda e, _: _area(_risk(e))),
    "eaurc": _per_replicate(lambda e, errors: _area(_risk(e)) - _area(_risk(np.sort(errors)))),
    "augrc": _per_replicate(lambda e, _: _area(np.cumsum(e) / len(e))),
    **{f"selective_risk_at_{c}": _per_replicate(lambda e, _, c=c: _risk(e)[int(np.ceil(round(len(e) * c / 100, 9))) - 1])
       for c in (80, 90, 95)},
    **{f"coverage_at_risk_{r}": _per_replicate(lambda e, _, r=r: _coverage_at(e, r / 100)) for r in (1, 5)},
    "misclassification_auroc": _misclassification_auroc,
}

METRICS: dict[str, Callable[[Predictions, np.ndarray], np.ndarray]] = {
    "acc": lambda p, w: _mean(p.correct, w),
    "nll": lambda p, w: _mean(p.nll, w),
    "brier_sum": lambda p, w: _mean(p.brier, w),
    "ece_15_equal_width": ece_equal_width,
    "ece_15_equal_mass": ece_equal_mass,
    "mce": mce,
    "classwise_ece": classwise_ece,
    **SELECTIVE,
}


def replicates(metrics: Mapping[str, Callable[[np.ndarray], np.ndarray]], n: int, *seed_parts: object,
               n_boot: int = 1000) -> dict[str, np.ndarray]:
    draws: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
    for w in weights(n, n_boot, *seed_parts):
        for name, metric in metrics.items():
            draws[name].append(metric(w))
    return {name: np.concatenate(d) for name, d in draws.items()}


def bootstrap(metrics: Mapping[str, Callable[[np.ndarray], np.ndarray]], n: int, *seed_parts: object,
              n_boot: int = 1000) -> dict[str, tuple[float, float, float]]:
    out = {}
    for name, draws in replicates(metrics, n, *seed_parts, n_boot=n_boot).items():
        low, high = np.nanpercentile(draws, [2.5, 97.5])
        out[name] = (float(metrics[name](np.ones((1, n)))[0]), float(low), float(high))
    return out


def classification_metrics(logits: np.ndarray, labels: np.ndarray, temperature: float | None, seed_parts: tuple,
                           n_boot: int = 1000) -> dict[str, tuple[float, float, float]]:
    """{metric: (value, ci_low, ci_high)}, raw and `_ts`."""
    metrics = {}
    for suffix, t in [("", 1.0)] + ([("_ts", temperature)] if temperature is not None else []):
        p = Predictions(logits, labels, t)
        metrics |= {name + suffix: (lambda w, fn=fn, p=p: fn(p, w))
                    for name, fn in METRICS.items() if not (suffix and name == "acc")}
    return bootstrap(metrics, len(labels), *seed_parts, n_boot=n_boot)


def paired(logits: np.ndarray, labels: np.ndarray, ids: np.ndarray, temperature: float | None, run_seed: object,
           key: str, n_boot: int = 1000) -> dict[str, np.ndarray]:
    """The corruption summary's replicates of acc, AURC, misclassification AUROC and equal-width ECE (raw, `_ts`)
    under the run's shared resamples, laid over the ids in sorted order."""
    order = np.argsort(ids, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    fns = {}
    for suffix, t in (("", 1.0), ("_ts", temperature)):
        if t is not None:
            p = Predictions(logits, labels, t)
            names = ["ece_15_equal_width"] + ([] if suffix else ["acc", "aurc", "misclassification_auroc"])
            fns |= {m + suffix: (lambda w, fn=METRICS[m], p=p: fn(p, w[:, rank])) for m in names}
    return replicates(fns, len(ids), run_seed, key, n_boot=n_boot)


def _counts(score: np.ndarray, is_ood: np.ndarray, w: np.ndarray) -> Counts:
    _, group = np.unique(score, return_inverse=True)
    onehot = sparse.csr_matrix((np.ones(len(group)), (np.arange(len(group)), group.ravel())),
                               shape=(len(group), int(group.max()) + 1))
    ood = is_ood.astype(np.float64)
    return Counts(np.asarray((onehot.T @ (w * (1 - ood)).T).T), np.asarray((onehot.T @ (w * ood).T).T))


def ood_rows(score: np.ndarray, is_ood: np.ndarray, id_seed: tuple, ood_seed: tuple,
             n_boot: int = 1000) -> dict[str, tuple[float, float, float, list[float]]]:
    """{metric: (value, ci_low, ci_high, replicates rounded to 1e-6)} with ID and OOD resampled separately."""
    id_idx, ood_idx = np.flatnonzero(~is_ood), np.flatnonzero(is_ood)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in OOD_METRICS}
    for w_id, w_ood in zip(weights(len(id_idx), n_boot, *id_seed, "id"),
                           weights(len(ood_idx), n_boot, *ood_seed, "ood"), strict=True):
        w = np.empty((len(w_id), len(is_ood)))
        w[:, id_idx], w[:, ood_idx] = w_id, w_ood
        counts = _counts(score, is_ood, w)
        for name, fn in OOD_METRICS.items():
            draws[name].append(fn(counts))
    point = _counts(score, is_ood, np.ones((1, len(score))))
    out = {}
    for name, fn in OOD_METRICS.items():
        d = np.concatenate(draws[name])
        low, high = np.nanpercentile(d, [2.5, 97.5])
        out[name] = (float(fn(point)[0]), float(low), float(high), np.round(d, 6).tolist())
    return out
