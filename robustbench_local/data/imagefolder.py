"""`imagefolder:DIR` and `imagenet:DIR`: one sub-folder per class, optionally under train/ val/ test/.

Opening lists the files only. Splits: `test` is `test/` when present, else `val/` (the ImageNet layout:
train/ and val/, evaluation on val/), else DIR itself. `val` (held-out data for the temperature, conformal sets
and fitted detectors) is `val/` unless that folder is the evaluation split; `?holdout=N` instead sets N
images of the evaluation folder aside as `val` (chosen by id, like --limit) and leaves the rest as `test`.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from ..errors import DataError, SpecError
from ..parsing import parse_int
from ..seeding import derive_seed
from .files import INTERPOLATIONS, FileReader, Transform, list_images
from .source import DataSource

SPLIT_FOLDERS = ("train", "val", "test")
IMAGENET_TRANSFORM = Transform(256, 224, "bilinear")  # the standard ImageNet evaluation preprocessing


def positive_int(options: dict[str, str], key: str) -> int | None:
    """`?key=` as a positive integer (None when absent)."""
    value = options.get(key)
    return None if value is None else parse_int(value, 1, f"?{key}=")


def transform_of(options: dict[str, str], default: Transform = Transform()) -> Transform:
    """The resize/crop/interpolation given as spec options, over `default`."""
    interpolation = options.get("interpolation", default.interpolation)
    if interpolation not in INTERPOLATIONS:
        raise SpecError(f"?interpolation= must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    resize, crop = positive_int(options, "resize"), positive_int(options, "crop")
    return Transform(resize if resize is not None else default.resize, crop if crop is not None else default.crop,
                     interpolation)


def split_folder(root: Path, split: str, holdout: int | None) -> tuple[Path, str]:
    """(folder, role) of `split`: role 'eval' is the evaluation folder, 'holdout' its set-aside part."""
    if split not in SPLIT_FOLDERS:
        raise DataError(f"{root} has splits {', '.join(SPLIT_FOLDERS)}, not {split!r}")
    present = [s for s in SPLIT_FOLDERS if (root / s).is_dir()]
    if present and not {"test", "val"} & set(present):
        raise DataError(f"{root} has no 'test' or 'val' sub-folder to evaluate (only {', '.join(present)}); add "
                        "one, or point at a folder of class folders")
    evaluation = root / "test" if "test" in present else root / "val" if "val" in present else root
    if split == "test":
        return evaluation, "eval"
    if split == "val" and holdout:
        return evaluation, "holdout"
    if split == "val" and evaluation.name == "val" and evaluation != root:
        raise DataError(f"{root} has no held-out split: val/ is the evaluation split (there is no test/); add "
                        "?holdout=N to set N of its images aside for calibration, or pass --calibration-data")
    if split in present:
        return root / split, "eval"
    hint = "add ?holdout=N to set images aside, or pass --calibration-data" if split == "val" else \
        f"add a {split}/ folder of class folders"
    found = f"folders: {', '.join(present)}" if present else "no train/val/test folders"
    raise DataError(f"{root} has no {split!r} split ({found}); {hint}")


def open_imagefolder(root: str, split: str, options: dict[str, str], scheme: str = "imagefolder",
                     default: Transform = Transform(), known: tuple[str, ...] | None = None) -> DataSource:
    """The split's index: classes are the sorted sub-folder names (or `known`, of which the folders must be a
    subset); ids are paths relative to the split folder."""
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"image folder {root} does not exist; give a directory with one sub-folder per class")
    holdout = positive_int(options, "holdout")
    folder, role = split_folder(base, split, holdout)
    relpaths, labels, classes = index_class_folders(folder, known, scheme)
    source = DataSource(FileReader(folder, relpaths, transform_of(options, default)), np.arange(len(relpaths)), labels,
                        relpaths, len(classes), f"{scheme}:{root}/{split}", tuple(classes))
    if holdout:
        keys = np.array([derive_seed("holdout", i) for i in relpaths.tolist()], dtype=np.uint64)
        if holdout >= len(source):
            raise DataError(f"?holdout={holdout} leaves no images to evaluate in {folder} ({len(source)} images)")
        held = np.zeros(len(source), bool)
        held[np.argsort(keys, kind="stable")[:holdout]] = True
        source = source.subset(np.flatnonzero(held if role == "holdout" else ~held))
    return source


def index_class_folders(folder: Path, known: tuple[str, ...] | None,
                        scheme: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(paths relative to `folder`, labels, class names) of the images in `folder`'s class sub-folders; the classes
    are the sorted sub-folder names, or `known`, of which the sub-folders must be a subset."""
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    classes = tuple(present) if known is None else known
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise DataError(f"{folder} has class folders {', '.join(unknown[:3])} that {scheme}: does not know (it uses "
                        f"the {len(classes)} classes of its data set); use imagefolder:DIR for other class sets")
    label_of = {c: k for k, c in enumerate(classes)}
    files = [(f, label_of[c]) for c in present for f in list_images(folder / c)]
    if not files:
        raise DataError(f"no images under {folder}; expected {folder}/<class>/<image>.png|jpg")
    relpaths = np.array([f.relative_to(folder).as_posix() for f, _ in files])
    return relpaths, np.array([k for _, k in files], dtype=np.int64), classes


@cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ILSVRC-2012 class wnids, sorted (class k of every torchvision/timm ImageNet checkpoint)."""
    return tuple((Path(__file__).parent / "imagenet_wnids.txt").read_text().split())


def open_imagenet(root: str, split: str, options: dict[str, str]) -> DataSource:
    """ILSVRC-2012 layout (`val/<wnid>/*.JPEG`): class k is the k-th of the 1000 wnids in sorted order
    (torchvision's ImageFolder order), also when only some class folders are present; resize 256, crop 224."""
    return open_imagefolder(root, split, options, "imagenet", IMAGENET_TRANSFORM, imagenet_wnids())
