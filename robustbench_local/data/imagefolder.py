"""`imagefolder:DIR`: one sub-folder per class (optionally under train/val/test), any PIL-readable image."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .sampleset import SampleSet

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp", ".gif"}


def _resize_center_crop(img: Image.Image, resize: int | None, crop: int | None) -> Image.Image:
    """torchvision's Resize(resize) (shorter side, bilinear) then CenterCrop(crop), the usual eval pipeline."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import center_crop
    from torchvision.transforms.functional import resize as tv_resize

    if resize:
        img = tv_resize(img, [resize], InterpolationMode.BILINEAR)
    if crop:
        w, h = img.size
        if crop > min(w, h):
            raise DataError(f"crop {crop} is larger than the image ({w}x{h}); lower ?crop= or raise ?resize=")
        img = center_crop(img, [crop])
    return img


def load_imagefolder(root: str, split: str, resize: int | None = None, crop: int | None = None) -> SampleSet:
    """Classes are the sorted sub-folder names; ids are paths relative to the split folder."""
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"image folder {root} does not exist; give a directory with one sub-folder per class")
    if (base / split).is_dir():
        base = base / split
    elif any((base / s).is_dir() for s in ("train", "val", "test")):
        raise DataError(f"{root} has no {split!r} sub-folder; add it or point at a folder of class folders")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((base / c).rglob("*"))
             if f.suffix.lower() in EXTENSIONS]
    if not files:
        raise DataError(f"no images under {base}; expected {base}/<class>/<image>.png|jpg")
    images, sizes = [], set()
    for f, _ in files:
        try:
            with Image.open(f) as img:
                arr = np.asarray(_resize_center_crop(img.convert("RGB"), resize, crop), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"cannot read image {f}: {exc}; remove or replace the file") from None
        images.append(arr)
        sizes.add(arr.shape)
    if len(sizes) > 1:
        raise DataError(f"images under {base} have different sizes {sorted(sizes)[:3]}...; "
                        "pass ?resize=N&crop=N to bring them to one size")
    ids = np.array([f.relative_to(base).as_posix() for f, _ in files])
    labels = np.array([k for _, k in files], dtype=np.int64)
    return SampleSet(np.stack(images), labels, ids, len(classes), f"imagefolder:{root}/{split}", tuple(classes))
