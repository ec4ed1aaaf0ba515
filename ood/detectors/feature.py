"""Detectors on penultimate features, fitted on ID data: Mahalanobis, KNN, ViM, and the activation shapers
ReAct, DICE and ASH-B that re-apply the linear head before taking the energy."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from robustbench_local.errors import DataError

from .. import defaults
from ..representations import Representations
from .base import Detector, energy_of

CHUNK = 1024


def _need(reps: Representations | None, what: str, detector: str) -> Representations:
    if reps is None or len(reps) == 0:
        raise DataError(f"detector {detector!r} is fitted on the ID {what} split, which is missing or empty; "
                        "use a --data spec with that split or pick a detector that needs no fitting")
    return reps


@dataclass
class Mahalanobis(Detector):
    """Minimum squared Mahalanobis distance to the class means under one tied covariance (fitted on ID train)."""

    name = "mahalanobis"

    def fit(self, train, val):
        train = _need(train, "train", self.name)
        x, y = train.need_features(self.name).astype(np.float64), np.asarray(train.labels)
        classes = np.unique(y)
        self.means_ = np.stack([x[y == c].mean(axis=0) for c in classes])
        centred = x - self.means_[np.searchsorted(classes, y)]
        self.precision_ = np.linalg.pinv(centred.T @ centred / len(x), hermitian=True)
        return self

    def score(self, reps):
        self._check_fitted("means_", "precision_")
        x = reps.need_features(self.name).astype(np.float64)
        xp = x @ self.precision_
        quad = (xp * x).sum(axis=1)[:, None] - 2 * xp @ self.means_.T
        quad += ((self.means_ @ self.precision_) * self.means_).sum(axis=1)[None, :]
        return quad.min(axis=1)


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class KNN(Detector):
    """Euclidean distance to the k-th nearest ID training feature, all features L2-normalised."""

    k: int = defaults.KNN_K
    name = "knn"

    def fit(self, train, val):
        x = _need(train, "train", self.name).need_features(self.name)
        if len(x) < self.k:
            raise DataError(f"knn with k={self.k} needs at least {self.k} ID training samples, got {len(x)}")
        self.bank_ = _l2_normalise(x.astype(np.float64)).astype(np.float32)
        return self

    def score(self, reps):
        self._check_fitted("bank_")
        q = _l2_normalise(reps.need_features(self.name).astype(np.float64))
        bank = self.bank_.astype(np.float64)
        out = np.empty(len(q))
        for start in range(0, len(q), CHUNK):
            sim = q[start:start + CHUNK] @ bank.T
            kth = -np.partition(-sim, self.k - 1, axis=1)[:, self.k - 1]
            out[start:start + CHUNK] = np.sqrt(np.maximum(2 - 2 * kth, 0))
        return out


@dataclass
class ViM(Detector):
    """Virtual-logit matching: residual norm off the principal subspace (scaled by α) minus the log-sum-exp."""

    dim: int | None = None
    name = "vim"

    def fit(self, train, val):
        train = _need(train, "train", self.name)
        x = train.need_features(self.name).astype(np.float64)
        head = train.need_head(self.name)
        dim = self.dim or defaults.vim_dim(x.shape[1])
        if not 0 < dim < x.shape[1]:
            raise DataError(f"vim: principal dimension {dim} must be between 1 and the feature width "
                            f"{x.shape[1]} - 1")
        self.origin_ = -np.linalg.pinv(head.weight) @ head.bias
        centred = x - self.origin_
        eigvals, eigvecs = np.linalg.eigh(centred.T @ centred / len(x))
        self.residual_basis_ = eigvecs[:, np.argsort(eigvals)[::-1][dim:]]
        virtual = np.linalg.norm(centred @ self.residual_basis_, axis=1)
        self.alpha_ = np.asarray(head(x).max(axis=1).mean() / virtual.mean())
        return self

    def score(self, reps):
        self._check_fitted("origin_", "residual_basis_", "alpha_")
        x = reps.need_features(self.name).astype(np.float64)
        virtual = np.linalg.norm((x - self.origin_) @ self.residual_basis_, axis=1) * self.alpha_
        return virtual - logsumexp(np.asarray(reps.logits, np.float64), axis=1)


@dataclass
class ReAct(Detector):
    """Energy after clipping features at a percentile of ID validation activations."""

    percentile: float = defaults.REACT_PERCENTILE
    name = "react"

    def fit(self, train, val):
        x = _need(val, "val", self.name).need_features(self.name)
        self.threshold_ = np.asarray(np.percentile(x.astype(np.float64).ravel(), self.percentile))
        return self

    def score(self, reps):
        self._check_fitted("threshold_")
        x = np.minimum(reps.need_features(self.name).astype(np.float64), self.threshold_)
        return energy_of(reps.need_head(self.name)(x))


@dataclass
class DICE(Detector):
    """Energy of the head with only the top-(100-p)% weight contributions (mean ID train feature × weight)."""

    percentile: float = defaults.DICE_PERCENTILE
    name = "dice"

    def fit(self, train, val):
        train = _need(train, "train", self.name)
        head = train.need_head(self.name)
        contribution = train.need_features(self.name).astype(np.float64).mean(axis=0)[None, :] * head.weight
        self.mask_ = contribution > np.percentile(contribution, self.percentile)
        return self

    def score(self, reps):
        self._check_fitted("mask_")
        head = reps.need_head(self.name)
        x = reps.need_features(self.name).astype(np.float64)
        return energy_of(x @ (head.weight * self.mask_).T + head.bias)


@dataclass
class ASH(Detector):
    """ASH-B: keep each sample's top-(100-p)% activations, all set to (sum of activations) / kept; then energy."""

    percentile: float = defaults.ASH_PERCENTILE
    name = "ash"

    def score(self, reps):
        x = reps.need_features(self.name).astype(np.float64)
        n = x.shape[1]
        keep = n - int(np.round(n * self.percentile / 100.0))
        top = np.argpartition(-x, keep - 1, axis=1)[:, :keep]
        shaped = np.zeros_like(x)
        np.put_along_axis(shaped, top, (x.sum(axis=1) / keep)[:, None], axis=1)
        return energy_of(reps.need_head(self.name)(shaped))
