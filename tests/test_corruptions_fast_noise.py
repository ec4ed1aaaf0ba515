"""The fast backend's noise: shot noise's table sampler follows scipy's Poisson distribution, impulse noise flips at
the set rate, draws do not depend on the memory layout."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from robustbench_local.corruptions.fast import poisson
from robustbench_local.corruptions.fast.noise import gaussian_noise, impulse_noise, shot_noise, speckle_noise
from robustbench_local.corruptions.fast.ops import generators

pytestmark = pytest.mark.numerics  # results depend on float kernels: `make test` reruns them per CPU capability

RNG = np.random.default_rng(5)
SMALL = RNG.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
SHOT_C = (60, 25, 12, 5, 3, 500, 250, 100, 75, 50)  # imagenet-c, cifar-10-c


def _shot_rates(c: float) -> np.ndarray:
    return (np.arange(256, dtype=np.float32) / np.float32(255) * np.float32(c)).astype(np.float64)  # x * c in float32


def test_poisson_cdf_matches_scipy_to_double_precision():
    for c in SHOT_C:
        rates = _shot_rates(c)
        k = np.arange(int(c + 12 * c ** 0.5 + 30))
        cdf = poisson.poisson_cdf(torch.from_numpy(rates), torch.from_numpy(k)).numpy()
        assert np.abs(cdf - scipy.stats.poisson.cdf(k[None], rates[:, None])).max() < 2e-15, c


@pytest.mark.parametrize("c", [3, 60, 500])
def test_shot_table_inverts_exactly(c):
    """The guide's decided bins and the flat key search both equal #{T <= u} counted directly; T = cdf * 2^53."""
    table = poisson.shot_table(float(c), "cpu")
    levels, bins = table.guide.shape
    t = (table.keys.view(levels, -1) - (torch.arange(levels)[:, None] << 53)).numpy()
    values = np.floor(np.clip(np.arange(c + 1) / c, 0, 1) * 255)
    kmax = np.array([np.flatnonzero(values <= v).max() for v in range(255)])
    assert np.abs(t / 2.0 ** 53 - scipy.stats.poisson.cdf(kmax[None], _shot_rates(c)[:, None])).max() < 2e-15
    guide = table.guide.numpy()
    low_end = (t[:, :, None] <= (np.arange(bins) << 42)[None, None]).sum(1)
    high_end = (t[:, :, None] <= ((np.arange(bins) + 1) << 42)[None, None] - 1).sum(1)
    assert (guide >= 0).mean() > 0.9
    np.testing.assert_array_equal(guide[guide >= 0], low_end[guide >= 0])
    np.testing.assert_array_equal(guide[guide >= 0], high_end[guide >= 0])
    assert (low_end[guide < 0] < high_end[guide < 0]).all()
    level = RNG.integers(0, levels, 20000)
    u = RNG.integers(0, 2 ** 53, 20000)
    found = torch.searchsorted(table.keys, torch.from_numpy(level << 53 | u), right=True).numpy() - level * t.shape[1]
    np.testing.assert_array_equal(found, (t[level] <= u[:, None]).sum(1))


def _chisquare_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """Pearson's test p-value after merging neighbouring outcomes until each expects at least 20 draws."""
    expected, total = probs * counts.sum(), counts.sum()
    merged_obs, merged_exp, obs, exp = [], [], 0.0, 0.0
    for o, e in zip(counts, expected):
        obs, exp = obs + o, exp + e
        if exp >= 20:
            merged_obs, merged_exp, obs, exp = merged_obs + [obs], merged_exp + [exp], 0.0, 0.0
    merged_obs[-1] += obs
    merged_exp[-1] += exp
    merged_exp = np.array(merged_exp) * total / np.sum(merged_exp)
    return scipy.stats.chisquare(merged_obs, merged_exp).pvalue


def test_poisson_sampler_counts_follow_scipy():
    rates = np.array([0.0, 0.37, 4.2, 31.5, 240.0])
    kmax = np.arange(456)  # V = min(K, 456)
    assert scipy.stats.poisson.sf(455, rates.max()) < 1e-17
    table = poisson.inverse_table(torch.from_numpy(rates), torch.from_numpy(kmax))
    levels = torch.arange(len(rates)).repeat(4, 40000)  # 4 rows (generators) x 40000 draws per rate each
    v = poisson.sample(table, levels, generators([11, 12, 13, 14], levels.device)).numpy()
    for i, rate in enumerate(rates):
        draws = v[levels.numpy() == i].astype(np.int64)
        mean, var = scipy.stats.poisson.stats(rate, moments="mv")
        assert abs(draws.mean() - mean) <= 5 * np.sqrt(max(var, 1e-12) / len(draws)), rate
        assert draws.var() == pytest.approx(var, rel=0.05, abs=1e-9), rate
        if rate > 0:
            pmf = scipy.stats.poisson.pmf(np.arange(len(kmax) + 1), rate)
            assert _chisquare_p(np.bincount(draws, minlength=len(pmf)), pmf / pmf.sum()) > 1e-4, rate


@pytest.mark.parametrize("c", [3, 60, 500])
def test_shot_noise_values_follow_scipy(c):
    """Per pixel level, the uint8 outputs' frequencies against scipy's Poisson(p / 255 * c) pushed through
    truncate(clip(k / c, 0, 1) * 255)."""
    levels = np.array([0, 1, 60, 128, 200, 255])
    x = torch.from_numpy(np.broadcast_to(levels[:, None], (3, 6, 30000)).astype(np.float32) / 255)
    out = shot_noise(x, c, generators([1, 2, 3], x.device), "").numpy()
    k = np.arange(c)
    values = np.floor(k / c * 255).astype(int)
    for i, p in enumerate(levels):
        rate = _shot_rates(c)[p]
        probs = np.bincount(values, weights=scipy.stats.poisson.pmf(k, rate), minlength=256)
        probs[255] += scipy.stats.poisson.sf(c - 1, rate)
        counts = np.bincount(out[:, i].ravel(), minlength=256)
        if p == 0:
            assert counts[0] == counts.sum()
        else:
            assert _chisquare_p(counts, probs) > 1e-4, p


def test_impulse_noise_flips_to_salt_and_pepper_at_the_set_rate():
    images = torch.from_numpy(RNG.integers(1, 255, (2, 3, 200, 200), dtype=np.uint8))  # no 0 or 255 in the input
    out = impulse_noise(images.float() / 255, 0.27, generators([4, 5], images.device), "")
    kept = out == images
    assert ((out == 0) | (out == 255) | kept).all()
    n = out.numel()
    for count, p in (((out == 255).sum(), 0.135), ((out == 0).sum(), 0.135), (kept.sum(), 0.73)):
        assert abs(int(count) - n * p) <= 5 * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("fn", [gaussian_noise, shot_noise, impulse_noise, speckle_noise])
def test_noise_draws_do_not_depend_on_the_memory_layout(fn):
    x = torch.from_numpy(SMALL).permute(0, 3, 1, 2).float() / 255  # channels-last strides, as from NHWC arrays
    seeds = [7, 8, 9]
    out = fn(x, 0.2 if fn is not shot_noise else 12, generators(seeds, x.device), "")
    assert out.dtype == torch.uint8 and out.is_contiguous()
    assert torch.equal(out, fn(x.contiguous(), 0.2 if fn is not shot_noise else 12, generators(seeds, x.device), ""))
