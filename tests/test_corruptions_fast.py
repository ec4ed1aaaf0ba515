"""The fast backend: runs everywhere, batch-independent, deterministic corruptions match the reference's pixels,
random ones match its perturbation statistics, glass blur's parallel resolution equals the sequential loop, shot
noise's table sampler follows scipy's Poisson distribution."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.stats
import skimage.data
import torch
from click.testing import CliRunner
from scipy.ndimage import gaussian_filter, map_coordinates

from corruptions.api import corrupt_images
from corruptions.fast import corrupt_tensor, ops, poisson
from corruptions.fast.blur import _duplicate
from corruptions.fast.digital import _affine, _pixel_to_grid, bilinear
from corruptions.fast.noise import gaussian_noise, impulse_noise, shot_noise, speckle_noise
from corruptions.fast.ops import generators
from corruptions.fidelity import FidelityRow, compare, psnr
from corruptions.names import ALL, DETERMINISTIC, SEVERITIES
from robustbench_local import evaluate
from robustbench_local.cli import cli
from robustbench_local.data import load_data

RNG = np.random.default_rng(5)
SMALL = RNG.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
ODD = RNG.integers(0, 256, (1, 33, 48, 3), dtype=np.uint8)
DIGITS = load_data("builtin:digits", "test", 8).images
PHOTO = cv2.resize(skimage.data.astronaut(), (224, 224), interpolation=cv2.INTER_AREA)[None]


@pytest.mark.parametrize("params", ["imagenet-c", "cifar-10-c"])
def test_every_corruption_runs_and_is_batch_independent(params):
    for name in ALL:
        for images, severities in ((SMALL, SEVERITIES), (ODD, (5,))):
            ids = np.arange(len(images))
            for s in severities:
                out = corrupt_images(images, name, s, 3, ids, params, backend="fast")
                assert out.shape == images.shape and out.dtype == np.uint8
                alone = corrupt_images(images[-1:], name, s, 3, ids[-1:], params, backend="fast")
                np.testing.assert_array_equal(out[-1:], alone, err_msg=f"{name}/{s} depends on the batch")


@pytest.mark.parametrize("params, images", [("cifar-10-c", DIGITS), ("imagenet-c", DIGITS), ("imagenet-c", PHOTO),
                                            ("cifar-10-c", SMALL), ("imagenet-c", SMALL)],
                         ids=["cifar-digits", "imagenet-digits", "imagenet-224px-photo", "cifar-noise", "imagenet-noise"])
def test_deterministic_corruptions_match_the_reference_pixels(params, images):
    ids = np.arange(len(images))
    for name in sorted(DETERMINISTIC):
        if name == "jpeg_compression" and images is SMALL and params == "imagenet-c":
            continue  # uniform noise at quality <= 25: 38-40 dB (float DCT vs libjpeg's integer islow), see README
        for s in SEVERITIES:
            ref = corrupt_images(images, name, s, 0, ids, params, backend="reference")
            fast = corrupt_images(images, name, s, 0, ids, params, backend="fast")
            assert psnr(ref, fast) >= 40, f"{name}/{s}: {psnr(ref, fast):.1f} dB"


def test_random_corruptions_match_the_reference_statistics(digits_test):
    """The fidelity report on a small set (96 digits, CIFAR-10-C parameters; one 224 px photo, ImageNet-C, for the
    per-pixel random corruptions): 10% instead of the full split's 5%, since fewer draws average less."""
    data = digits_test.limit(96)
    rows = compare(data.images, data.ids, 0, "cifar-10-c", severities=(1, 3, 5),
                   corruptions=tuple(n for n in ALL if n not in DETERMINISTIC))
    rows += compare(PHOTO, np.arange(1), 0, "imagenet-c", severities=(2, 5),
                    corruptions=("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "snow",
                                 "elastic_transform", "spatter"))
    failed = [(r.corruption, r.severity, r.mean_ref, r.mean_fast, r.std_ref, r.std_fast) for r in rows
              if not r.within(0.10)]
    assert not failed


def test_fidelity_row_bounds_by_hand():
    assert FidelityRow("contrast", 1, 40.0, 0, 0, 1, 1).passed
    assert not FidelityRow("contrast", 1, 39.9, 0, 0, 1, 1).passed
    # random: mean within 5% of the reference RMS (here 5), std within 5% of the reference std (here 4)
    assert FidelityRow("fog", 1, 10.0, 3.0, 3.24, 4.0, 4.19).passed
    assert not FidelityRow("fog", 1, 10.0, 3.0, 3.26, 4.0, 4.0).passed
    assert not FidelityRow("fog", 1, 10.0, 3.0, 3.0, 4.0, 4.21).passed
    assert psnr(np.zeros(4, np.uint8), np.full(4, 255, np.uint8)) == pytest.approx(0.0)


def _sequential(y: np.ndarray, offsets: np.ndarray, delta: int) -> np.ndarray:
    """The reference loop itself: bottom-right to top-left, each pixel copied from its (already updated) source."""
    y = y.copy()
    h, w = y.shape[1:]
    for r, hh in enumerate(range(h - delta, delta, -1)):
        for c, ww in enumerate(range(w - delta, delta, -1)):
            dx, dy = offsets[r, c]
            y[:, hh, ww] = y[:, hh + dy, ww + dx]
    return y


@pytest.mark.parametrize("delta", [1, 2, 4])
def test_glass_blur_parallel_duplication_equals_the_sequential_loop(delta):
    y = RNG.integers(0, 256, (2, 3, 20, 23)).astype(np.float32)
    offsets = RNG.integers(-delta, delta, (2, 20 - 2 * delta, 23 - 2 * delta, 2))  # (dx, dy) per scanned pixel
    out = _duplicate(torch.from_numpy(y), torch.from_numpy(offsets).permute(0, 3, 1, 2), delta).numpy()
    for i in range(2):
        np.testing.assert_array_equal(out[i], _sequential(y[i], offsets[i], delta))


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


def test_corrupt_tensor_stays_on_the_input_device():
    x = torch.from_numpy(SMALL).permute(0, 3, 1, 2)
    out = corrupt_tensor(x, "fog", 2, [1, 2, 3], "cifar-10-c")
    assert out.device == x.device and out.dtype == torch.uint8 and out.shape == x.shape


def test_suite_fast_backend_agrees_with_reference(digits_model, digits_test, tmp_path):
    data = digits_test.limit(120)
    acc = {}
    for backend in ("reference", "fast"):
        run = evaluate(digits_model, data, suites=["corruptions"], out=tmp_path / backend, backend=backend,
                       corruptions="contrast,zoom_blur,gaussian_noise,fog", severities="2,5", corruption_workers="0")
        acc[backend] = run.metrics.set_index(["condition", "metric"]).value
    for c in ("contrast", "zoom_blur"):  # deterministic: the same images, the same predictions
        for s in (2, 5):
            assert acc["fast"][f"{c}/{s}", "acc"] == pytest.approx(acc["reference"][f"{c}/{s}", "acc"], abs=1 / 120)
    # independent oracle for the fast path: the backend's images through Classifier.predict
    images = corrupt_images(data.images, "fog", 5, 0, data.ids, "cifar-10-c", backend="fast")
    assert acc["fast"]["fog/5", "acc"] == pytest.approx(float((digits_model.predict(images).argmax(1)
                                                               == data.labels).mean()))
    gap = abs(acc["fast"]["common", "mean_corruption_acc"] - acc["reference"]["common", "mean_corruption_acc"])
    assert gap <= 0.03


def test_cli_validate_prints_the_table(tmp_path):
    result = CliRunner().invoke(cli, ["--quiet", "corrupt", "builtin:digits", "--validate", "--limit", "16",
                                      "--corruptions", "contrast,pixelate", "--severities", "1,5",
                                      "--model", "builtin:digits-cnn"])
    assert result.exit_code == 0, result.output
    assert "fidelity: PASS" in result.stdout and "pixelate             5  det" in result.stdout
    result = CliRunner().invoke(cli, ["--quiet", "corrupt", "builtin:digits", "--backend", "fast", "--corruption",
                                      "snow", "--severity", "2", "--limit", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0 and "fast backend" in result.stdout
    result = CliRunner().invoke(cli, ["--quiet", "corrupt", "builtin:digits", "--corruption", "snow"])
    assert result.exit_code == 2 and "missing --severity, --out" in result.stderr


@pytest.mark.parametrize("mode", ["reflect", "mirror"])
@pytest.mark.parametrize("shape", [(17, 24), (1, 5)])
def test_bilinear_equals_scipy_map_coordinates_up_to_a_size_outside(mode, shape):
    h, w = shape
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.random((2, 3, h, w), dtype=np.float32))
    lattice = np.stack(np.meshgrid(np.arange(-w, 2 * w), np.arange(-h, 2 * h)), -1).reshape(-1, 2)
    points = np.concatenate([rng.uniform(-1, 2, (500, 2)) * [w, h], lattice])  # (x, y) up to one size outside
    xy = np.stack([points, points[::-1]])[:, None]  # (N, 1, K, 2)
    scale, offset = _pixel_to_grid(h, w, mode, torch.device("cpu"))
    out = bilinear(x, torch.from_numpy(xy) * scale + offset, mode).numpy()
    ref = [[map_coordinates(x[i, c].numpy().astype(np.float64), [xy[i, ..., 1], xy[i, ..., 0]], order=1, mode=mode)
            for c in range(3)] for i in range(2)]
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("shape", "sigma"), [((100, 130), (2.24, 3.0)), ((224, 40), (2.24, 0.4)),
                                              ((60, 300), (9.0, 0.5))])
def test_separable_gaussian_equals_scipy_gaussian_filter(shape, sigma):
    """Short kernels as shifted slices, long ones as a banded matrix: both equal scipy."""
    x = np.random.default_rng(2).random((2, 2, *shape), dtype=np.float32)
    out = ops.gaussian(torch.from_numpy(x), sigma, "reflect", 3.0).numpy()
    ref = [[gaussian_filter(x[i, c].astype(np.float64), sigma, mode="reflect", truncate=3.0) for c in range(2)]
           for i in range(2)]
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


def test_cifar_affine_step_matches_cv2_warp_affine():
    x = torch.from_numpy(DIGITS[:3]).permute(0, 3, 1, 2).float() / 255
    jitter, seeds = 0.08 * 32, [11, 12, 13]
    out = _affine(x, generators(seeds, torch.device("cpu")), jitter).permute(0, 2, 3, 1).numpy()
    src = np.float32([[26, 26], [26, 6], [6, 6]])  # CIFAR-10-C's points for 32 px: centre 16 +- 32 // 3
    for i, seed in enumerate(seeds):
        draws = torch.rand((3, 2), generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
        m = cv2.getAffineTransform(src, np.float32(src + draws * 2 * jitter - jitter))
        ref = cv2.warpAffine(x[i].permute(1, 2, 0).numpy(), m, (32, 32), borderMode=cv2.BORDER_REFLECT_101)
        diff = np.abs(out[i] - ref)  # OpenCV 4 rounds positions to 1/32 pixel (5.0 agrees to ~1e-6)
        assert diff.max() < 0.02 and diff.mean() < 2e-3
