"""Images in files: decoded with Pillow on demand, brought to one size by the usual evaluation transform."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ..fingerprint import digest64

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp", ".gif"}
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
HIGH_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}  # 16-bit (or 32-bit integer) grayscale


@dataclass(frozen=True)
class Transform:
    """torchvision's eval pipeline: Resize(resize) of the shorter side, then CenterCrop(crop); None skips a step."""

    resize: int | None = None
    crop: int | None = None
    interpolation: str = "bilinear"

    def __call__(self, img: Image.Image, path: Path) -> Image.Image:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.functional import center_crop, resize

        if self.resize:
            img = resize(img, [self.resize], InterpolationMode(self.interpolation))
        if self.crop:
            w, h = img.size
            if self.crop > min(w, h):
                raise DataError(f"crop {self.crop} is larger than {path} ({w}x{h}); lower ?crop= or raise ?resize=")
            img = center_crop(img, [self.crop])
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB of any Pillow mode; 16-bit grayscale is scaled to 8 bits (a plain convert would clip it to white)."""
    if img.mode in HIGH_BIT_MODES:
        values = np.asarray(img, dtype=np.int64)
        top = 65535 if values.max(initial=0) > 255 or img.mode != "I" else 255
        img = Image.fromarray(np.round(values.clip(0, top) * (255 / top)).astype(np.uint8), mode="L")
    elif img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.round(values.clip(0, 1) * 255).astype(np.uint8), mode="L")
    return img if img.mode == "RGB" else img.convert("RGB")


def decode(path: Path, transform: Transform) -> np.ndarray:
    """uint8 (H, W, 3) pixels of the image file at `path` after `transform`."""
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(transform(to_rgb(img), path), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; remove or replace the file") from None


class FileReader:
    """Rows are files `root / relpaths[row]` (or `root / variant / relpaths[row]` for each of `variants`)."""

    in_memory = False

    def __init__(self, root: Path, relpaths: np.ndarray, transform: Transform,
                 variants: tuple[str, ...] = ()) -> None:
        self.root, self.relpaths, self.transform, self.variants = Path(root), relpaths, transform, variants
        self._shape: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"FileReader({str(self.root)!r}, {len(self.relpaths)} files, {self.transform})"

    def _folder(self, variant: str | None) -> Path:
        if self.variants and variant is None:
            raise DataError(f"{self.root} holds only precomputed variants ({', '.join(self.variants[:3])}, ...); "
                            "read them one variant at a time")
        return self.root / variant if variant else self.root

    def read(self, rows: np.ndarray, variant: str | None) -> np.ndarray:
        folder = self._folder(variant)
        images = [decode(folder / self.relpaths[r], self.transform) for r in rows.tolist()]
        for r, image in zip(rows.tolist(), images, strict=True):
            self._check_shape(image, folder / self.relpaths[r])
        return np.stack(images) if images else np.zeros((0, *(self._shape or (0, 0, 3))), np.uint8)

    def image_shape(self, row: int, variant: str | None) -> tuple[int, int, int]:
        if self._shape is None:
            self.read(np.array([row]), variant)
        return tuple(self._shape)

    def _check_shape(self, image: np.ndarray, path: Path) -> None:
        if self._shape is None:
            self._shape = image.shape
        elif image.shape != self._shape:
            h, w = self._shape[:2]
            raise DataError(f"{path} is {image.shape[0]}x{image.shape[1]} after the transform but the set's images "
                            f"are {h}x{w}; pass ?resize=N&crop=N to bring every image to one size")

    def sample_digests(self, rows: np.ndarray) -> np.ndarray:
        """Per row: relative path, size and modification time of its file in every variant, and the transform."""
        folders = [self.root / v for v in self.variants] or [self.root]
        out = np.empty(len(rows), np.uint64)
        for i, r in enumerate(rows.tolist()):
            parts = [self.relpaths[r], repr(self.transform)]
            for folder in folders:
                path = folder / self.relpaths[r]
                try:
                    st = os.stat(path)
                except OSError:
                    raise DataError(f"missing image {path}; restore it, or restrict the set to what is present") \
                        from None
                parts.append(f"{st.st_size}:{st.st_mtime_ns}")
            out[i] = digest64(*parts)
        return out

    def origins(self, rows: np.ndarray) -> np.ndarray:
        base = self.root.resolve()
        return np.array([str(base / self.relpaths[r]) for r in rows.tolist()])


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
