"""The fast backend: runs everywhere, batch-independent, deterministic corruptions match the reference's pixels,
random ones match its perturbation statistics, glass blur's parallel resolution equals the sequential loop."""
from __future__ import annotations

from io import BytesIO

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from click.testing import CliRunner
from PIL import Image

from corruptions.api import corrupt_images
from corruptions.fast import corrupt_tensor
from corruptions.fast.blur import _duplicate
from corruptions.fast.jpeg import jpeg_roundtrip
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


@pytest.mark.parametrize("params, images", [("cifar-10-c", DIGITS), ("imagenet-c", PHOTO)],
                         ids=["cifar-digits", "imagenet-224px-photo"])
def test_pixelate_equals_pillow_exactly(params, images):
    ids = np.arange(len(images))
    for s in SEVERITIES:
        ref = corrupt_images(images, "pixelate", s, 0, ids, params, backend="reference")
        np.testing.assert_array_equal(corrupt_images(images, "pixelate", s, 0, ids, params, backend="fast"), ref)


def test_jpeg_equals_pillow_exactly_on_flat_blocks():
    """Constant 16x16 MCUs hold only DC terms, which libjpeg's islow DCT computes exactly (rounding ties too)."""
    images = np.random.default_rng(7).integers(0, 256, (6, 3, 3, 3), dtype=np.uint8).repeat(16, 1).repeat(16, 2)
    for quality in (7, 10, 25, 50, 65, 80):
        ref = []
        for image in images:
            buffer = BytesIO()
            Image.fromarray(image).save(buffer, "JPEG", quality=quality)
            ref.append(np.asarray(Image.open(buffer).convert("RGB")))
        out = jpeg_roundtrip(torch.from_numpy(images).permute(0, 3, 1, 2), quality).permute(0, 2, 3, 1).numpy()
        np.testing.assert_array_equal(out, np.stack(ref), err_msg=f"quality {quality}")


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
    offsets = RNG.integers(-delta, delta, (2, 20 - 2 * delta, 23 - 2 * delta, 2))
    out = _duplicate(torch.from_numpy(y), torch.from_numpy(offsets), delta).numpy()
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
