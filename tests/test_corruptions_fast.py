"""The fast backend: runs everywhere, batch-independent, deterministic corruptions match the reference's pixels,
random ones match its perturbation statistics, glass blur's parallel resolution equals the sequential loop."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from click.testing import CliRunner
from scipy.ndimage import gaussian_filter, map_coordinates

from corruptions.api import corrupt_images
from corruptions.fast import corrupt_tensor, ops
from corruptions.fast.blur import _duplicate
from corruptions.fast.digital import _affine, _pixel_to_grid, bilinear
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
