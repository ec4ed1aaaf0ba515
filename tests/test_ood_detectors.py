"""Each detector on a synthetic case with a known answer, its sign convention, and its fitted state."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from robustbench_local.ood.detectors import DETECTORS, build, parse_detectors
from robustbench_local.ood.metrics import auroc
from robustbench_local.ood.representations import Head, Representations, extract
from scipy.special import logsumexp, softmax
from torch import nn

from robustbench_local.data.stream import batched
from robustbench_local.errors import DataError, ModelError, SpecError
from robustbench_local.models import Classifier

RNG = np.random.default_rng(0)
K, D = 4, 16
CENTRES = np.eye(K, D) * 12.0
W = np.eye(K, D) * 0.8
HEAD_ = Head(W, np.zeros(K))


def clusters(n_per_class: int, centres: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(centres)), n_per_class)
    x = centres[y] + rng.normal(0, 1.0, (len(y), D))
    return np.abs(x), y  # non-negative, like post-ReLU penultimate features


def reps(x: np.ndarray, y: np.ndarray | None = None) -> Representations:
    return Representations(HEAD_(x).astype(np.float32), x.astype(np.float32), y, HEAD_)


TRAIN = reps(*clusters(100, CENTRES, 1))
VAL = reps(*clusters(30, CENTRES, 2))
ID_TEST = reps(*clusters(50, CENTRES, 3))


def ood_far() -> Representations:
    return reps(np.abs(RNG.normal(0, 1.0, (120, D)) + 6.0 * np.r_[np.zeros(K), np.ones(D - K)]))


def fitted(name: str):
    return build(name, temperature=1.5).fit(TRAIN, VAL)


FEATURE_DETECTORS = ["mahalanobis", "knn", "vim", "react", "dice", "ash", "msp", "maxlogit", "energy", "gen",
                     "msp_ts"]


@pytest.mark.parametrize("name", FEATURE_DETECTORS)
def test_far_cluster_is_separated(name):
    # OOD features sit off the class directions: no class logit is large and features leave the ID subspace.
    det = fitted(name)
    if name == "react":  # one feature in 16 carries the class here, so the 90th percentile would clip it away
        det = type(det)(percentile=99.0).fit(TRAIN, VAL)
    s_id, s_ood = det.score(ID_TEST), det.score(ood_far())
    is_ood = np.r_[np.zeros(len(s_id), bool), np.ones(len(s_ood), bool)]
    assert auroc(np.r_[s_id, s_ood], is_ood) > 0.99


@pytest.mark.parametrize("name", ["mahalanobis", "knn"])
def test_shifted_cluster_ranked_by_distance(name):
    det = fitted(name)
    base, _ = clusters(40, CENTRES[:1], 4)
    near, far = reps(base + 2.0), reps(base + 8.0)
    s_id, s_near, s_far = det.score(ID_TEST).mean(), det.score(near).mean(), det.score(far).mean()
    assert s_id < s_near < s_far
    assert auroc(np.r_[det.score(near), det.score(far)], np.r_[np.zeros(40, bool), np.ones(40, bool)]) > 0.99


@pytest.mark.parametrize("name", ["msp", "msp_ts", "maxlogit", "energy", "gen"])
def test_logit_sign_confident_is_less_ood(name):
    confident = Representations(np.array([[10.0, 0, 0, 0]]))
    flat = Representations(np.array([[1.0, 1, 1, 1]]))
    det = build(name, temperature=2.0)
    assert det.score(confident)[0] < det.score(flat)[0]


def test_logit_scores_equal_formulas():
    z = RNG.normal(0, 3, (20, K))
    r = Representations(z)
    assert np.allclose(build("msp").score(r), -softmax(z, axis=1).max(axis=1))
    assert np.allclose(build("msp_ts", 2.5).score(r), -softmax(z / 2.5, axis=1).max(axis=1))
    assert np.allclose(build("maxlogit").score(r), -z.max(axis=1))
    assert np.allclose(build("energy").score(r), -logsumexp(z, axis=1))
    p = softmax(z, axis=1)
    assert np.allclose(build("gen").score(r), (p ** 0.1 * (1 - p) ** 0.1).sum(axis=1))


def test_msp_ts_without_temperature_is_refused():
    with pytest.raises(SpecError, match="clean-fitted temperature"):
        build("msp_ts").score(Representations(np.zeros((2, 3))))


def test_mahalanobis_equals_by_hand_and_sklearn_covariance():
    from sklearn.covariance import EmpiricalCovariance

    det = fitted("mahalanobis")
    x, y = TRAIN.features.astype(np.float64), TRAIN.labels
    means = np.stack([x[y == c].mean(0) for c in range(K)])
    precision = EmpiricalCovariance(assume_centered=False).fit(x - means[y]).precision_
    q = ID_TEST.features[:7].astype(np.float64)
    expected = np.min([np.einsum("nd,de,ne->n", q - m, precision, q - m) for m in means], axis=0)
    assert np.allclose(det.score(reps(q)), expected, rtol=1e-6)


def test_knn_equals_sklearn_neighbours():
    from sklearn.neighbors import NearestNeighbors

    det = build("knn")
    det.k = 5
    det.fit(TRAIN, None)
    def norm(a):
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    nn_ = NearestNeighbors(n_neighbors=5).fit(norm(TRAIN.features.astype(np.float64)))
    dist, _ = nn_.kneighbors(norm(ID_TEST.features.astype(np.float64)))
    assert np.allclose(det.score(ID_TEST), dist[:, -1], atol=1e-5)


def test_react_threshold_and_score():
    det = fitted("react")
    assert float(det.threshold_) == pytest.approx(np.percentile(VAL.features.astype(np.float64), 90))
    clipped = np.minimum(ID_TEST.features.astype(np.float64), det.threshold_)
    assert np.allclose(det.score(ID_TEST), -logsumexp(HEAD_(clipped), axis=1))


def test_vim_matches_formula_and_uses_null_space():
    det = fitted("vim")
    assert det.residual_basis_.shape == (D, D - D // 2)
    assert np.allclose(det.residual_basis_.T @ det.residual_basis_, np.eye(D - D // 2), atol=1e-8)
    x = ID_TEST.features.astype(np.float64)
    expected = np.linalg.norm((x - det.origin_) @ det.residual_basis_, axis=1) * det.alpha_ - logsumexp(
        ID_TEST.logits.astype(np.float64), axis=1)
    assert np.allclose(det.score(ID_TEST), expected)


def test_ash_b_by_hand():
    x = np.array([[4.0, 0.0, 1.0, 3.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0] + [0.0] * 6])
    det = build("ash")  # p = 90 of 16 -> keep 16 - 14 = 2: positions 0 and 3, each 10 / 2
    shaped = np.zeros_like(x)
    shaped[0, [0, 3]] = 5.0
    assert np.allclose(det.score(reps(x)), -logsumexp(HEAD_(shaped), axis=1))


def test_fitted_state_round_trip_and_repr():
    for name in ("mahalanobis", "knn", "vim", "react", "dice"):
        det = fitted(name)
        state = det.fitted_state()
        assert state and all(k.endswith("_") for k in state)
        fresh = build(name).load_state({k: np.asarray(v) for k, v in state.items()})
        assert np.allclose(fresh.score(ID_TEST), det.score(ID_TEST))
    assert repr(build("knn")) == "KNN(k=50)"
    assert repr(build("odin")) == "ODIN(temperature=1000.0, eps=0.0014)"


def test_unfitted_and_missing_inputs_errors():
    with pytest.raises(ModelError, match="not fitted"):
        build("knn").score(ID_TEST)
    with pytest.raises(ModelError, match="penultimate features"):
        fitted("knn").score(Representations(ID_TEST.logits))
    with pytest.raises(DataError, match="train split"):
        build("mahalanobis").fit(None, None)


def test_parse_detectors():
    assert parse_detectors("all") == tuple(DETECTORS)
    assert parse_detectors("Energy, knn,energy") == ("energy", "knn")
    with pytest.raises(SpecError, match="unknown detector.*nope"):
        parse_detectors("energy,nope")


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.body(x))


def tiny_model() -> Classifier:
    torch.manual_seed(0)
    from robustbench_local.models.features import HeadInputFeatures

    return Classifier(TinyNet(), 3, (0.5,) * 3, (0.25,) * 3, feature_fn=HeadInputFeatures())


@pytest.mark.numerics
def test_extract_one_pass_matches_model():
    model = tiny_model()
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    r = extract(model, batched(images, 4))
    assert np.allclose(r.logits, model.predict(images), atol=1e-6)
    from robustbench_local.models.classifier import to_tensor

    with torch.no_grad():
        assert np.allclose(r.features, model.features(to_tensor(images)).numpy(), atol=1e-6)
    assert np.allclose(r.head(r.features.astype(np.float64)), r.logits, atol=1e-5)


def test_extract_counts_forward_passes_and_other_feature_layers():
    from robustbench_local.models.features import HeadInputFeatures

    model = tiny_model()
    calls = []
    model.net.body.register_forward_hook(lambda *_: calls.append(1))
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    extract(model, batched(images, 4))
    assert len(calls) == 3 + 1  # one pass per batch, plus one features() call to check the hook on batch 1
    named = Classifier(model.net, 3, (0.0,) * 3, (1.0,) * 3,
                       feature_fn=HeadInputFeatures("body.1"))  # pre-ReLU layer: not the head input
    r = extract(named, batched(images, 4))
    with torch.no_grad():
        assert np.allclose(r.features, named.features(torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0))
    assert r.head is None
    bare = extract(Classifier(model.net, 3, (0.0,) * 3, (1.0,) * 3), batched(images, 256))
    assert bare.features is None and bare.head is None
    with pytest.raises(ModelError, match="classifier head"):
        build("react").fit(None, r).score(r)


def test_odin_equals_by_hand_and_step_is_in_pixel_space():
    model = tiny_model()
    images = np.random.default_rng(1).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    det = build("odin")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    x.requires_grad_(True)
    z = model(x) / 1000.0
    nn.functional.cross_entropy(z, z.argmax(1), reduction="sum").backward()
    x2 = x.detach() - 0.0014 * torch.where(x.grad >= 0, 1.0, -1.0)
    expected = -torch.softmax(model(x2).double() / 1000.0, 1).max(1).values.detach().numpy()
    got = det.score_inputs(model, batched(images, 4))
    assert np.allclose(got, expected, atol=1e-12)
    assert np.allclose(det.score_inputs(model, batched(images, 6)), got)
    step = det.perturb(model, x.detach()) - x.detach()
    assert torch.allclose(step.abs(), torch.full_like(step, 0.0014))
