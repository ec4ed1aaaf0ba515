"""Every data spec form opens as a DataSource from files written in the real formats; bad data fails in one line."""
from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import pytest
from foundation_helpers import assert_one_line_error, run_rbl
from PIL import Image

from robustbench_local import DataSource, load_data
from robustbench_local.errors import DataError, SpecError

SPLIT_SIZES = {"train": 1077, "val": 360, "test": 360}


def assert_valid(data: DataSource, n: int, size: tuple[int, int], num_classes: int) -> None:
    assert isinstance(data, DataSource)
    assert data.images.dtype == np.uint8 and data.images.shape == (n, *size, 3)
    assert data.labels.dtype == np.int64 and data.labels.shape == (n,)
    assert data.ids.shape == (n,) and len(set(data.ids.tolist())) == n
    assert data.num_classes == num_classes


# ---------------------------------------------------------------- builtin:digits
@pytest.fixture(scope="module")
def digits_splits():
    return {split: load_data("builtin:digits", split) for split in SPLIT_SIZES}


def test_digits_split_sizes_shapes_and_disjoint_ids(digits_splits):
    for split, n in SPLIT_SIZES.items():
        assert_valid(digits_splits[split], n, (32, 32), 10)
    ids = [set(d.ids.tolist()) for d in digits_splits.values()]
    assert sum(map(len, ids)) == 1797 and len(set.union(*ids)) == 1797


def test_digits_ids_are_stable_and_images_are_sklearn_digits_upscaled(digits_splits):
    from sklearn.datasets import load_digits

    again = load_data("builtin:digits", "test")
    test = digits_splits["test"]
    assert np.array_equal(again.ids, test.ids) and np.array_equal(again.images, test.images)
    assert test.fingerprint == again.fingerprint
    bunch = load_digits()
    index = np.array([int(i.split("-")[1]) for i in test.ids])
    assert np.array_equal(test.labels, bunch.target[index])
    assert (test.images == test.images[..., :1]).all()  # gray replicated into RGB
    for k in range(0, len(test), 37):  # PIL's bilinear upscaling is an independent reference
        small = Image.fromarray((bunch.images[index[k]] / 16).astype(np.float32), mode="F")
        ref = np.clip(np.round(np.asarray(small.resize((32, 32), Image.BILINEAR)) * 255), 0, 255)
        assert np.abs(ref - test.images[k, ..., 0]).max() <= 1


def test_digits_unknown_split_and_name(tmp_path):
    with pytest.raises(DataError, match="splits"):
        load_data("builtin:digits", "holdout")
    with pytest.raises(SpecError, match="digits"):
        load_data("builtin:mnist")


# ---------------------------------------------------------------- cifar10:DIR
def cifar_images(n: int, start: int) -> np.ndarray:
    """n distinct 32x32x3 images whose pixel (y, x, c) encodes its position."""
    y, x, c = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    return np.stack([((y * 7 + x * 3 + c * 85 + (start + i) * 11) % 256).astype(np.uint8) for i in range(n)])


def cifar_batch(images: np.ndarray, labels: list[int], name: str) -> dict:
    """The real layout: rows are the R plane, then G, then B, each 32x32 row-major."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    return {b"batch_label": name.encode(), b"labels": labels, b"data": rows,
            b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}


class Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` (BINSTRING opcodes), as cPickle did for the real CIFAR-10 files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else
                   pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_batch(path, batch, python2: bool = False) -> None:
    """A protocol-2 pickle of `batch`; `python2`: byte-for-byte the encoding of the real downloads."""
    if python2:
        buffer = io.BytesIO()
        Python2Pickler(buffer, protocol=2).dump(batch)
        raw = buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # numpy 1.x's path
        assert b"_codecs" not in raw
    else:
        raw = pickle.dumps(batch, protocol=2)
    path.write_bytes(raw)


@pytest.fixture(params=[False, True], ids=["python3-pickle", "python2-pickle"])
def cifar_dir(tmp_path, request):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    truth = {}
    for b in range(1, 6):
        images, labels = cifar_images(4, 4 * (b - 1)), [(4 * (b - 1) + i) % 10 for i in range(4)]
        write_batch(root / f"data_batch_{b}", cifar_batch(images, labels, f"training batch {b} of 5"),
                    request.param)
        truth.update({f"train-{4 * (b - 1) + i:05d}": (images[i], labels[i]) for i in range(4)})
    images = cifar_images(6, 100)
    write_batch(root / "test_batch", cifar_batch(images, [9, 8, 7, 6, 5, 4], "testing batch 1 of 1"), request.param)
    truth.update({f"test-{i:05d}": (images[i], 9 - i) for i in range(6)})
    return root, truth


def test_cifar10_python_batches(cifar_dir):
    root, truth = cifar_dir
    sizes = {"test": 6, "train": 18, "val": 2}  # val = every 10th training image
    loaded = {split: load_data(f"cifar10:{root}", split) for split in sizes}
    for split, n in sizes.items():
        data = loaded[split]
        assert_valid(data, n, (32, 32), 10)
        assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"
        for image, label, sid in zip(data.images, data.labels, data.ids):
            assert np.array_equal(image, truth[sid][0]) and label == truth[sid][1]
    assert loaded["val"].ids.tolist() == ["train-00000", "train-00010"]
    assert not set(loaded["val"].ids) & set(loaded["train"].ids)


class Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_cifar10_batch_with_malicious_global_is_refused(cifar_dir, tmp_path):
    root, _ = cifar_dir
    marker = tmp_path / "PAYLOAD_RAN"
    batch = cifar_batch(cifar_images(2, 0), [0, 1], "testing batch 1 of 1")
    batch[b"extra"] = Payload(str(marker))
    write_batch(root / "test_batch", batch)
    with pytest.raises(DataError, match="not a genuine CIFAR-10"):
        load_data(f"cifar10:{root}", "test")
    assert_one_line_error(run_rbl("evaluate", "builtin:digits-cnn", "--data", f"cifar10:{root}",
                                  "--out", str(tmp_path / "run")), "posix.mkdir")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"not a pickle at all", pickle.dumps([1, 2, 3], protocol=2),
                                     pickle.dumps({b"labels": [0]}, protocol=2), b""],
                         ids=["garbage", "not-a-dict", "no-data-key", "empty"])
def test_cifar10_malformed_batch_is_a_data_error(content, tmp_path):
    (tmp_path / "test_batch").write_bytes(content)
    with pytest.raises(DataError, match="test_batch"):
        load_data(f"cifar10:{tmp_path}", "test")


def test_cifar10_missing_directory_or_batch(cifar_dir, tmp_path):
    root, _ = cifar_dir
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_data(f"cifar10:{tmp_path / 'nowhere'}", "test")
    (root / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_data(f"cifar10:{root}", "train")


# ---------------------------------------------------------------- imagefolder:DIR
def write_image(path, size: tuple[int, int], color: tuple[int, int, int], fmt: str) -> None:
    """An image of `size` (w, h) with a `color` block in its left half and black elsewhere."""
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = color
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


def torchvision_resize_crop(path, resize: int, crop: int) -> np.ndarray:
    """The reference pipeline: torchvision's Resize(shorter side) + CenterCrop on the PIL image."""
    from torchvision.transforms import CenterCrop, InterpolationMode, Resize

    with Image.open(path) as img:
        return np.asarray(CenterCrop(crop)(Resize(resize, InterpolationMode.BILINEAR)(img.convert("RGB"))))


FOLDER_IMAGES = {  # class/file: (size (w, h), colour, format)
    "cat/a.png": ((64, 48), (200, 30, 30), "PNG"),
    "cat/b.jpg": ((50, 70), (210, 40, 40), "JPEG"),
    "dog/c.png": ((40, 40), (30, 200, 30), "PNG"),
    "dog/sub/d.jpeg": ((45, 61), (20, 190, 40), "JPEG"),
    "emu/e.png": ((33, 47), (30, 30, 200), "PNG"),
}


def test_imagefolder_resize_and_crop_match_torchvision(tmp_path):
    for rel, (size, color, fmt) in FOLDER_IMAGES.items():
        write_image(tmp_path / "flat" / rel, size, color, fmt)
    data = load_data(f"imagefolder:{tmp_path / 'flat'}?resize=32&crop=28")
    assert_valid(data, 5, (28, 28), 3)
    assert data.class_names == ("cat", "dog", "emu")
    assert data.ids.tolist() == ["cat/a.png", "cat/b.jpg", "dog/c.png", "dog/sub/d.jpeg", "emu/e.png"]
    assert data.labels.tolist() == [0, 0, 1, 1, 2]
    for image, rel in zip(data.images, data.ids):
        reference = torchvision_resize_crop(tmp_path / "flat" / rel, 32, 28)
        assert np.array_equal(image, reference), rel


def test_imagefolder_with_split_subfolders_and_same_size_images(tmp_path):
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        for i in range(n):
            for k, cls in enumerate(("ant", "bee")):
                write_image(tmp_path / split / cls / f"{i}.png", (16, 12), (50 + 100 * k, 0, 0), "PNG")
    spec = f"imagefolder:{tmp_path}"
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        data = load_data(spec, split)
        assert_valid(data, 2 * n, (12, 16), 2)
        assert data.class_names == ("ant", "bee")
        assert np.array_equal(data.images[:, 0, 0, 0], np.where(data.labels == 0, 50, 150))
    assert load_data(spec).ids.tolist() == ["ant/0.png", "ant/1.png", "bee/0.png", "bee/1.png"]


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(f"imagefolder:{tmp_path / 'missing'}")
    for rel, (size, color, fmt) in FOLDER_IMAGES.items():
        write_image(tmp_path / "mixed" / rel, size, color, fmt)
    with pytest.raises(DataError, match="b.jpg is 70x50 .*resize"):  # mixed sizes need ?resize=&crop=, found on read
        _ = load_data(f"imagefolder:{tmp_path / 'mixed'}").images
    with pytest.raises(DataError, match="crop"):
        _ = load_data(f"imagefolder:{tmp_path / 'mixed'}?resize=16&crop=20").images
    write_image(tmp_path / "split" / "train" / "a" / "x.png", (8, 8), (1, 2, 3), "PNG")
    with pytest.raises(DataError, match="'test' or 'val'"):
        load_data(f"imagefolder:{tmp_path / 'split'}")
    (tmp_path / "broken" / "a").mkdir(parents=True)
    (tmp_path / "broken" / "a" / "x.png").write_bytes(b"not a png")
    broken = load_data(f"imagefolder:{tmp_path / 'broken'}")  # opening reads the index only
    with pytest.raises(DataError, match="cannot read image .*x.png"):
        _ = broken.images


# ---------------------------------------------------------------- npz:FILE
def random_images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def test_npz_nhwc_with_ids_and_val_split(tmp_path):
    x, y = random_images(6, (8, 8, 3)), np.array([0, 1, 2, 3, 4, 1])
    xv, yv = random_images(3, (8, 8, 3), seed=1), np.array([2, 0, 4])
    ids = np.array([f"s{i}" for i in range(6)])
    path = tmp_path / "set.npz"
    np.savez(path, x=x, y=y, ids=ids, x_val=xv, y_val=yv, num_classes=np.array(7))
    test, val = load_data(f"npz:{path}"), load_data(f"npz:{path}", "val")
    assert_valid(test, 6, (8, 8), 7)
    assert_valid(val, 3, (8, 8), 7)
    assert np.array_equal(test.images, x) and np.array_equal(test.labels, y) and test.ids.tolist() == ids.tolist()
    assert np.array_equal(val.images, xv) and np.array_equal(val.labels, yv)
    assert not set(val.ids) & set(test.ids)


def test_npz_grayscale_nhw_default_ids_and_class_count(tmp_path):
    x = random_images(5, (10, 12))
    path = tmp_path / "gray.npz"
    np.savez(path, x=x, y=np.array([0, 2, 1, 2, 0], dtype=np.uint8))
    data = load_data(f"npz:{path}")
    assert_valid(data, 5, (10, 12), 3)  # no num_classes array: max label + 1
    assert all(np.array_equal(data.images[..., c], x) for c in range(3))
    assert load_data(f"npz:{path}").ids.tolist() == data.ids.tolist()
    with pytest.raises(DataError, match="x_val"):
        load_data(f"npz:{path}", "val")


def test_npz_pickled_object_array_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "evil.npz"
    np.savez(path, x=random_images(1, (4, 4, 3)), y=np.array([0]), ids=np.array([Payload(str(marker))], dtype=object))
    with pytest.raises(DataError, match="'ids' holds Python objects"):
        load_data(f"npz:{path}")
    assert not marker.exists()


def test_npy_instead_of_npz_is_a_data_error(tmp_path):
    np.save(tmp_path / "x.npy", random_images(2, (4, 4, 3)))
    (tmp_path / "x.npy").rename(tmp_path / "x.npz")
    with pytest.raises(DataError, match="single array"):
        load_data(f"npz:{tmp_path / 'x.npz'}")


# ---------------------------------------------------------------- --limit
@pytest.fixture()
def shuffled_npz(tmp_path):
    """The same 40 samples saved in two orders."""
    x, y = random_images(40, (4, 4, 3)), np.arange(40) % 5
    ids = np.array([f"item-{i:02d}" for i in range(40)])
    order = np.random.default_rng(3).permutation(40)
    np.savez(tmp_path / "a.npz", x=x, y=y, ids=ids)
    np.savez(tmp_path / "b.npz", x=x[order], y=y[order], ids=ids[order])
    return f"npz:{tmp_path / 'a.npz'}", f"npz:{tmp_path / 'b.npz'}", dict(zip(ids, zip(x, y)))


def test_limit_picks_the_same_ids_whatever_the_order(shuffled_npz):
    spec_a, spec_b, truth = shuffled_npz
    a, b = load_data(spec_a, limit=12), load_data(spec_b, limit=12)
    assert len(a) == 12 and set(a.ids) == set(b.ids)
    for data in (a, b):
        for image, label, sid in zip(data.images, data.labels, data.ids):
            assert np.array_equal(image, truth[sid][0]) and label == truth[sid][1]
    full_b = load_data(spec_b).ids.tolist()
    assert b.ids.tolist() == [i for i in full_b if i in set(b.ids)]  # the load order is kept


def test_limit_is_nested_and_covers_edge_cases(shuffled_npz, digits_splits):
    spec_a, _, _ = shuffled_npz
    previous: set[str] = set()
    for n in (1, 5, 13, 39):
        ids = set(load_data(spec_a, limit=n).ids)
        assert len(ids) == n and previous <= ids  # a smaller limit is a subset of a larger one
        previous = ids
    assert len(load_data(spec_a, limit=40)) == 40 and len(load_data(spec_a, limit=1000)) == 40
    with pytest.raises(DataError, match="positive"):
        load_data(spec_a, limit=0)
    test = digits_splits["test"]
    picked = test.limit(100)
    assert set(picked.ids) == set(load_data("builtin:digits", "test", limit=100).ids)
    assert len(set(picked.labels.tolist())) == 10  # a hash of the id, not the first 100 rows
    assert set(picked.ids) != set(test.ids[:100])


# ---------------------------------------------------------------- bad data: one line, exit 2
def bad_npz(tmp_path, case: str) -> str:
    path = tmp_path / f"{case.replace(' ', '_')}.npz"
    x, y = random_images(4, (32, 32, 3)), np.array([0, 1, 2, 1])
    arrays = {
        "x ndim 2": {"x": random_images(4, (32,)), "y": y},
        "4 channels": {"x": random_images(4, (32, 32, 4)), "y": y},
        "label out of range": {"x": x, "y": np.array([0, 1, 5, 2]), "num_classes": np.array(3)},
        "negative label": {"x": x, "y": np.array([0, -1, 2, 1])},
        "float images": {"x": x.astype(np.float32) / 255, "y": y},
        "float labels": {"x": x, "y": y.astype(np.float32)},
        "label count mismatch": {"x": x, "y": y[:3]},
        "duplicate ids": {"x": x, "y": y, "ids": np.array(["a", "b", "a", "c"])},
        "no y": {"x": x},
        "object labels": {"x": x, "y": np.array([0, 1, 2, 1], dtype=object)},
        "num_classes vector": {"x": x, "y": y, "num_classes": np.array([3, 4])},
        "no samples": {"x": x[:0], "y": y[:0]},
    }[case]
    np.savez(path, **arrays)
    return f"npz:{path}"


BAD_NPZ = {"x ndim 2": "(N, H, W, 3)", "4 channels": "(N, H, W, 3)", "label out of range": "label 5",
           "negative label": "negative label -1", "float images": "uint8", "float labels": "integer",
           "label count mismatch": "one label", "duplicate ids": "unique", "no y": "x/y",
           "object labels": "Python objects", "num_classes vector": "one integer", "no samples": "no samples"}


@pytest.mark.parametrize("case", list(BAD_NPZ))
def test_bad_npz_is_a_data_error(tmp_path, case):
    with pytest.raises(DataError, match=BAD_NPZ[case].replace("(", r"\(").replace(")", r"\)")):
        load_data(bad_npz(tmp_path, case))


@pytest.mark.parametrize("case", ["missing npz", "missing folder", "not an npz", "x ndim 2", "4 channels",
                                  "label out of range", "float images", "unknown scheme", "unknown builtin"])
def test_cli_bad_data_is_one_line_exit_2(tmp_path, case):
    if case == "not an npz":
        (tmp_path / "fake.npz").write_text("hello")
    data, needle = {
        "missing npz": (f"npz:{tmp_path / 'nope.npz'}", "does not exist"),
        "missing folder": (f"imagefolder:{tmp_path / 'nope'}", "does not exist"),
        "not an npz": (f"npz:{tmp_path / 'fake.npz'}", "not an .npz archive"),
        "unknown scheme": ("hdf5:data.h5", "unknown data spec"),
        "unknown builtin": ("builtin:mnist", "mnist"),
    }.get(case) or (bad_npz(tmp_path, case), BAD_NPZ[case])
    outcome = run_rbl("evaluate", "builtin:digits-cnn", "--data", data, "--out", str(tmp_path / "run"))
    assert_one_line_error(outcome, needle)
