"""The `cifar-10-c` parameter set: Hendrycks' CIFAR-10-C severities on imagecorruptions' building blocks.

imagecorruptions hard-codes ImageNet-C's parameters inside each function, so the CIFAR-10-C set needs its
own parameterised functions. Each is written from the formula of CIFAR-10-C's generator (Hendrycks &
Dietterich 2019) with its severity table, and reuses imagecorruptions' helpers (disk kernel, plasma
fractal, clipped zoom, numpy motion blur) and textures. Differences from the released CIFAR-10-C files:
motion_blur and snow use imagecorruptions' numpy motion blur instead of ImageMagick, so outputs are the
same corruption in spirit, not bit-identical. Sizes other than 32 px work (elastic constants scale with
the shorter side; frost textures are scaled up when the 0.2x texture is smaller than the image).
Every random draw comes from `compat.active_random()`, the per-sample stream.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import skimage.color
from PIL import Image
from scipy.ndimage import map_coordinates

from .compat import active_random, gaussian, imagecorruptions, random_noise

CorruptionFn = Callable[[np.ndarray, tuple], np.ndarray]

TABLE: dict[str, list] = {
    "gaussian_noise": [.04, .06, .08, .09, .10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [.01, .02, .03, .05, .07],
    "speckle_noise": [.06, .1, .12, .16, .2],
    "gaussian_blur": [.4, .6, .7, .8, 1],
    "glass_blur": [(.05, 1, 1), (.25, 1, 1), (.4, 1, 1), (.25, 1, 2), (.4, 1, 2)],
    "defocus_blur": [(.3, .4), (.4, .5), (.5, .6), (1, .2), (1.5, .1)],
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    "zoom_blur": [np.arange(1, top, .01) for top in (1.06, 1.11, 1.16, 1.21, 1.26)],
    "fog": [(.2, 3), (.5, 3), (.75, 2.5), (1, 2), (1.5, 1.75)],
    "frost": [(1, .2), (1, .3), (.9, .4), (.85, .4), (.75, .45)],
    "snow": [(.1, .2, 1, .6, 8, 3, .95), (.1, .2, 1, .5, 10, 4, .9), (.15, .3, 1.75, .55, 10, 4, .9),
             (.25, .3, 2.25, .6, 12, 6, .85), (.3, .3, 1.25, .65, 14, 12, .8)],
    "spatter": [(.62, .1, .7, .7, .5, 0), (.65, .1, .8, .7, .5, 0), (.65, .3, 1, .69, .5, 0),
                (.65, .1, .7, .69, .6, 1), (.65, .1, .5, .68, .6, 1)],
    "contrast": [.75, .5, .4, .3, .15],
    "brightness": [.05, .1, .15, .2, .3],
    "saturate": [(.3, 0), (.1, 0), (1.5, 0), (2, .1), (2.5, .2)],
    "jpeg_compression": [80, 65, 58, 50, 40],
    "pixelate": [.95, .9, .85, .75, .65],
    # (alpha, sigma, affine jitter) as fractions of the image side (CIFAR-10-C: times 32)
    "elastic_transform": [(0, 0, .08), (.05, .2, .07), (.08, .06, .06), (.1, .04, .05), (.1, .03, .03)],
}
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


def _unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / 255.0


def _to_255(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 1) * 255


def _ic():
    return imagecorruptions().corruptions


def gaussian_noise(x, c):
    return _to_255(_unit(x) + active_random().normal(size=x.shape, scale=c))


def shot_noise(x, c):
    return _to_255(active_random().poisson(_unit(x) * c) / c)


def impulse_noise(x, c):
    return _to_255(random_noise(_unit(x), mode="s&p", amount=c))


def speckle_noise(x, c):
    u = _unit(x)
    return _to_255(u + u * active_random().normal(size=x.shape, scale=c))


def gaussian_blur(x, c):
    return _to_255(gaussian(_unit(x), sigma=c, channel_axis=-1))


def glass_blur(x, c):
    sigma, delta, iterations = c
    y = np.uint8(gaussian(_unit(x), sigma=sigma, channel_axis=-1) * 255)
    h_max, w_max = y.shape[0] - delta, y.shape[1] - delta
    # all offsets in one draw (the same numbers as one (dx, dy) draw per pixel), then the sequential loop
    offsets = active_random().randint(-delta, delta, size=(iterations, h_max - delta, w_max - delta, 2)).tolist()
    for steps in offsets:
        for h, row in zip(range(h_max, delta, -1), steps):
            for w, (dx, dy) in zip(range(w_max, delta, -1), row):
                y[h, w] = y[h + dy, w + dx]  # the original's "swap" of views copies one pixel onto the other
    return _to_255(gaussian(y / 255.0, sigma=sigma, channel_axis=-1))


def defocus_blur(x, c):
    kernel = _ic().disk(radius=c[0], alias_blur=c[1])
    u = _unit(x)
    return _to_255(np.stack([cv2.filter2D(u[..., d], -1, kernel) for d in range(3)], axis=-1))


def motion_blur(x, c):
    return np.clip(_ic()._motion_blur(x, radius=c[0], sigma=c[1], angle=active_random().uniform(-45, 45)), 0, 255)


def _centred_zoom(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    zoomed = _ic().clipped_zoom(img, factor)
    top, left = (zoomed.shape[0] - h) // 2, (zoomed.shape[1] - w) // 2
    return zoomed[top:top + h, left:left + w]


def zoom_blur(x, c):
    u = _unit(x).astype(np.float32)
    total = u + sum(_centred_zoom(u, z) for z in c)
    return _to_255(total / (len(c) + 1))


def fog(x, c):
    u = _unit(x)
    h, w = u.shape[:2]
    peak = u.max()
    size = 1 << (max(h, w) - 1).bit_length()
    u += c[0] * _ic().plasma_fractal(mapsize=size, wibbledecay=c[1])[:h, :w, None]
    return _to_255(u * peak / (peak + c[0]))


@functools.cache
def _frost_texture(index: int) -> np.ndarray:
    """Frost texture `index` as RGB, shrunk 0.2x as CIFAR-10-C does (read once per process)."""
    path = Path(_ic().__file__).parent / "frost" / FROST_FILES[index]
    texture = cv2.resize(cv2.imread(str(path)), (0, 0), fx=0.2, fy=0.2)[..., ::-1]
    texture = np.ascontiguousarray(texture)
    texture.flags.writeable = False
    return texture


def frost(x, c):
    rng = active_random()
    texture = _frost_texture(rng.randint(5))
    h, w = x.shape[:2]
    scale = max(h / texture.shape[0], w / texture.shape[1])
    if scale >= 1:
        size = (int(np.ceil(texture.shape[1] * scale * 1.1)), int(np.ceil(texture.shape[0] * scale * 1.1)))
        texture = cv2.resize(texture, size, interpolation=cv2.INTER_CUBIC)
    top, left = rng.randint(0, texture.shape[0] - h), rng.randint(0, texture.shape[1] - w)
    return np.clip(c[0] * x + c[1] * texture[top:top + h, left:left + w], 0, 255)


def snow(x, c):
    rng = active_random()
    u = _unit(x).astype(np.float32)
    flakes = rng.normal(size=u.shape[:2], loc=c[0], scale=c[1])
    flakes = _centred_zoom(flakes[..., None], c[2])[..., 0]
    flakes[flakes < c[3]] = 0
    flakes = np.uint8(np.clip(flakes, 0, 1) * 255)
    flakes = _ic()._motion_blur(flakes, radius=c[4], sigma=c[5], angle=rng.uniform(-135, -45))
    flakes = (np.round(np.clip(flakes, 0, 255)).astype(np.uint8) / 255.0)[..., None]
    grey = cv2.cvtColor(u, cv2.COLOR_RGB2GRAY)[..., None]
    u = c[6] * u + (1 - c[6]) * np.maximum(u, grey * 1.5 + 0.5)
    return _to_255(u + flakes + np.rot90(flakes, k=2))


def spatter(x, c):
    u = _unit(x).astype(np.float32)
    liquid = gaussian(active_random().normal(size=u.shape[:2], loc=c[0], scale=c[1]), sigma=c[2])
    liquid[liquid < c[3]] = 0
    if c[5] == 0:  # water: pale turquoise streaks along the liquid's edges
        liquid8 = (liquid * 255).astype(np.uint8)
        dist = cv2.distanceTransform(255 - cv2.Canny(liquid8, 50, 150), cv2.DIST_L2, 5)
        dist = cv2.blur(cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)[1], (3, 3)).astype(np.uint8)
        dist = cv2.filter2D(cv2.equalizeHist(dist), cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
        mask = liquid8 * cv2.blur(dist, (3, 3)).astype(np.float32)
        peak = mask.max()
        mask = mask / peak * c[4] if peak > 0 else mask
        colour = np.array([175, 238, 238], np.float32) / 255
        return _to_255(u + mask[..., None] * colour)
    mask = gaussian((liquid > c[3]).astype(np.float32), sigma=c[4])  # mud: brown blotches
    mask[mask < 0.8] = 0
    colour = np.array([63, 42, 20], np.float32) / 255
    return _to_255(u * (1 - mask[..., None]) + mask[..., None] * colour)


def contrast(x, c):
    u = _unit(x)
    mean = u.mean(axis=(0, 1), keepdims=True)
    return _to_255((u - mean) * c + mean)


def _hsv_channel(x: np.ndarray, channel: int, scale: float, shift: float) -> np.ndarray:
    hsv = skimage.color.rgb2hsv(_unit(x))
    hsv[..., channel] = np.clip(hsv[..., channel] * scale + shift, 0, 1)
    return _to_255(skimage.color.hsv2rgb(hsv))


def brightness(x, c):
    return _hsv_channel(x, 2, 1.0, c)


def saturate(x, c):
    return _hsv_channel(x, 1, c[0], c[1])


def jpeg_compression(x, c):
    buffer = BytesIO()
    Image.fromarray(x).save(buffer, "JPEG", quality=c)
    return np.asarray(Image.open(buffer).convert("RGB"))


def pixelate(x, c):
    h, w = x.shape[:2]
    small = Image.fromarray(x).resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(small.resize((w, h), Image.BOX))


def elastic_transform(x, c):
    rng = active_random()
    u = _unit(x).astype(np.float32)
    h, w = u.shape[:2]
    side = min(h, w)
    alpha, sigma, jitter = (v * side for v in c)
    centre, half = np.float32([h, w]) // 2, side // 3
    src = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    dst = src + rng.uniform(-jitter, jitter, size=src.shape).astype(np.float32)
    u = cv2.warpAffine(u, cv2.getAffineTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT_101)
    dx, dy = ((gaussian(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha)
              .astype(np.float32)[..., None] for _ in range(2))
    cols, rows, chans = np.meshgrid(np.arange(w), np.arange(h), np.arange(u.shape[2]))
    coords = (rows + dy).reshape(-1), (cols + dx).reshape(-1), chans.reshape(-1)
    return _to_255(map_coordinates(u, coords, order=1, mode="reflect").reshape(u.shape))


FUNCTIONS: dict[str, CorruptionFn] = {name: globals()[name] for name in TABLE}


def corrupt(image: np.ndarray, severity: int, name: str) -> np.ndarray:
    """`image` (uint8 HxWx3) with CIFAR-10-C corruption `name` at `severity`, as uint8 (truncated like the original)."""
    return np.uint8(FUNCTIONS[name](image, TABLE[name][severity - 1]))
