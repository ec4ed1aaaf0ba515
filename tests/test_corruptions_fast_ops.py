"""The fast backend's building blocks against independent oracles: Pillow (pixelate, JPEG), the sequential glass-blur
loop, scipy (bilinear sampling, gaussian filter), OpenCV (CIFAR-10-C's affine warp)."""
from __future__ import annotations

from io import BytesIO

import cv2
import numpy as np
import pytest
import torch
from corruption_samples import DIGITS, PHOTO
from PIL import Image
from robustbench_local.corruptions.api import corrupt_images
from robustbench_local.corruptions.fast import ops
from robustbench_local.corruptions.fast.blur import _duplicate
from robustbench_local.corruptions.fast.digital import _affine, _pixel_to_grid, bilinear
from robustbench_local.corruptions.fast.jpeg import jpeg_roundtrip
from robustbench_local.corruptions.fast.ops import generators
from robustbench_local.corruptions.names import SEVERITIES
from scipy.ndimage import gaussian_filter, map_coordinates

pytestmark = pytest.mark.numerics  # results depend on float kernels: `make test` reruns them per CPU capability

RNG = np.random.default_rng(5)


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
    """Shifted slices, for kernels short and long (longer than the axis: padded by index) alike, equal scipy."""
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
