"""The streaming data layer on small files in the real formats: the index is read first, images are decoded a batch
at a time, only what --limit chose is opened, each image is decoded once per shard of a corruption sweep, workers
open the data themselves, and a stream gives the same records as the same images held in memory."""
from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
from foundation_helpers import assert_one_line_error, run_rbl
from PIL import Image

from robustbench_local import DataSource, evaluate, load_data
from robustbench_local.data import files
from robustbench_local.data.files import FileReader, Transform
from robustbench_local.data.imagefolder import imagenet_wnids
from robustbench_local.errors import DataError
from robustbench_local.runner.executors import make_executor


def write_digits_folder(root, split_sets: dict) -> None:
    """`root/<split>/<label>/<id>.png` for each split's images (lossless: the pixels of the built-in set)."""
    for split, data in split_sets.items():
        for image, label, sample_id in zip(data.images, data.labels, data.ids.tolist(), strict=True):
            path = root / split / str(label) / f"{sample_id}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits-folder")
    splits = {split: load_data("builtin:digits", split).limit(n) for split, n in (("train", 80), ("val", 40),
                                                                                   ("test", 48))}
    write_digits_folder(root, splits)
    return root, splits


@pytest.fixture
def decodes(monkeypatch):
    """Every file decoded, in order (the decode function counts its calls)."""
    seen: list[str] = []
    real = files.decode

    def counting(path, transform):
        seen.append(str(path))
        return real(path, transform)

    monkeypatch.setattr(files, "decode", counting)
    return seen


def test_opening_reads_the_index_only_and_limit_selects_before_decoding(digits_folder, decodes, tmp_path):
    root, _ = digits_folder
    data = load_data(f"imagefolder:{root}")
    assert len(data) == 48 and decodes == []  # the index: ids, labels, classes
    assert data.class_names == tuple(str(k) for k in range(10))
    subset = load_data(f"imagefolder:{root}", "test", 5)
    assert subset.ids.tolist() == data.limit(5).ids.tolist()  # the same ids as the in-memory limit
    _ = subset.images
    assert sorted(decodes) == sorted(str(root / "test" / i) for i in subset.ids)
    # files outside the chosen subset are never opened: a broken one there does not matter
    shutil.copytree(root, tmp_path / "copy")
    outside = next(i for i in data.ids if i not in set(subset.ids))
    (tmp_path / "copy" / "test" / outside).write_bytes(b"garbage")
    assert load_data(f"imagefolder:{tmp_path / 'copy'}", "test", 5).images.shape == (5, 32, 32, 3)


def test_a_stream_gives_the_records_of_the_same_images_in_memory(digits_folder, digits_model, tmp_path):
    root, splits = digits_folder
    test = splits["test"]
    memory = DataSource.from_arrays(test.images, test.labels, test.ids, 10, "memory")
    relpaths = np.array([f"{label}/{i}.png" for label, i in zip(test.labels, test.ids.tolist(), strict=True)])
    stream = DataSource(FileReader(root / "test", relpaths, Transform()), np.arange(len(test)), test.labels, test.ids,
                        10, "stream")
    options = {"eps": "0,8/255", "steps": "3", "corruptions": "contrast,gaussian_noise,glass_blur",
               "severities": "2,5", "ood_data": "builtin:ood-noise-uniform", "detectors": "msp,energy,odin",
               "ood_limit": 24}
    runs = [evaluate(digits_model, data, suites=["clean", "attacks", "corruptions", "ood"], out=tmp_path / name,
                     calibration_data=splits["val"], batch_size=16, data_workers=2, **options)
            for name, data in (("memory", memory), ("stream", stream))]
    from robustbench_local.runner.store import RunStore

    a, b = (RunStore(r.root) for r in runs)
    assert a.task_keys() == b.task_keys() and len(a.task_keys()) == 1 + 2 + 7 + 3
    for key in a.task_keys():
        (_, ra), (_, rb) = a.load_task(key), b.load_task(key)
        assert ra.table.equals(rb.table), key
        assert (ra.logits is None and rb.logits is None) or np.array_equal(ra.logits, rb.logits), key


def test_a_corruption_sweep_decodes_each_image_once_per_shard(digits_folder, digits_model, decodes, tmp_path):
    root, _ = digits_folder
    evaluate(digits_model, f"imagefolder:{root}", suites=["corruptions"], out=tmp_path / "run", batch_size=16,
             shard_size=32, calibration_data=None, corruptions="contrast,fog,gaussian_noise", severities="1,3,5")
    assert len(decodes) == 48 and len(set(decodes)) == 48  # 10 conditions (clean + 9), 2 shards, 1 decode each


def test_workers_open_the_data_themselves(digits_folder, digits_model, tmp_path):
    root, _ = digits_folder
    small, large = (load_data(f"imagefolder:{root}", split) for split in ("val", "train"))
    sent = {len(d): len(pickle.dumps(d)) for d in (small, large)}
    assert max(sent.values()) < 1024  # the spec travels, not the index or the pixels (80 images are 245 KB)
    shard = large.subset(slice(16, 48))
    again = pickle.loads(pickle.dumps(shard))
    assert again.ids.tolist() == shard.ids.tolist() and np.array_equal(again.images, shard.images)
    spec = f"imagefolder:{root}"
    kwargs = {"suites": ["clean", "corruptions"], "batch_size": 16, "shard_size": 16, "calibration_data": None,
              "corruptions": "contrast", "severities": "3"}
    inprocess = evaluate(digits_model, spec, out=tmp_path / "one", **kwargs)
    pool = evaluate(digits_model, spec, out=tmp_path / "pool", executor=make_executor("pool", 2), **kwargs)
    assert inprocess.metrics.equals(pool.metrics)


def test_changed_data_is_refused_on_resume(digits_folder, tmp_path):
    shutil.copytree(digits_folder[0], tmp_path / "data")
    args = ("evaluate", "builtin:digits-cnn", "--data", f"imagefolder:{tmp_path / 'data'}", "--out",
            str(tmp_path / "run"), "--calibration-data", "none")
    assert run_rbl(*args).exit_code == 0
    assert run_rbl(*args).exit_code == 0  # unchanged: resumes (nothing to do)
    victim = next((tmp_path / "data" / "test").rglob("*.png"))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(victim)
    assert_one_line_error(run_rbl(*args), "1 image(s)", "changed since the finished records")


def test_a_corrupt_file_mid_stream_is_one_line_and_finished_shards_are_kept(digits_folder, tmp_path):
    shutil.copytree(digits_folder[0], tmp_path / "data")
    data = load_data(f"imagefolder:{tmp_path / 'data'}")
    victim = tmp_path / "data" / "test" / data.ids[40]  # in the third shard of 16
    good, stat = victim.read_bytes(), victim.stat()
    victim.write_bytes(b"not a png")
    args = ("evaluate", "builtin:digits-cnn", "--data", f"imagefolder:{tmp_path / 'data'}", "--out",
            str(tmp_path / "run"), "--calibration-data", "none", "--batch-size", "16", "--shard-size", "16")
    assert_one_line_error(run_rbl(*args), "cannot read image", data.ids[40])
    kept = sorted(p.name for p in (tmp_path / "run" / "shards").rglob("*.npz"))
    assert kept == ["0000000-0000016.npz", "0000016-0000032.npz"]
    victim.write_bytes(good)  # restored as it was (e.g. `cp -p` from a backup): the same data, so the run resumes
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run_rbl(*args).exit_code == 0


def write_imagenet(root, splits: dict[str, int], classes: tuple[int, ...] = (0, 1, 999)) -> None:
    rng = np.random.default_rng(0)
    wnids = imagenet_wnids()
    for split, n in splits.items():
        for k in classes:
            for i in range(n):
                folder = root / split / wnids[k]
                folder.mkdir(parents=True, exist_ok=True)
                size = tuple(int(v) for v in rng.integers(240, 320, 2))
                image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                Image.fromarray(image).save(folder / f"ILSVRC2012_{split}_{k:04d}{i:02d}.JPEG", quality=90)


def test_imagenet_layout_index_order_and_preprocessing(tmp_path):
    write_imagenet(tmp_path, {"train": 2, "val": 2})
    data = load_data(f"imagenet:{tmp_path}")  # train/ and val/ only: evaluation on val/
    wnids = imagenet_wnids()
    assert data.num_classes == 1000 and data.class_names == wnids and wnids == tuple(sorted(wnids))
    assert data.labels.tolist() == [0, 0, 1, 1, 999, 999]  # class k = k-th wnid, also with classes missing
    assert data.ids[0] == f"{wnids[0]}/ILSVRC2012_val_000000.JPEG"
    assert data.images.shape == (6, 224, 224, 3)  # resize 256, centre crop 224
    from torchvision.transforms import CenterCrop, InterpolationMode, Resize

    with Image.open(tmp_path / "val" / data.ids[3]) as img:
        reference = np.asarray(CenterCrop(224)(Resize(256, InterpolationMode.BILINEAR)(img.convert("RGB"))))
    assert np.array_equal(data.read(3)[0], reference)
    assert len(load_data(f"imagenet:{tmp_path}", "train")) == 6
    with pytest.raises(DataError, match="no held-out split.*holdout"):
        load_data(f"imagenet:{tmp_path}", "val")
    held, rest = (load_data(f"imagenet:{tmp_path}?holdout=2", split) for split in ("val", "test"))
    assert len(held) == 2 and len(rest) == 4 and not set(held.ids) & set(rest.ids)
    (tmp_path / "val" / "n99999999").mkdir()
    with pytest.raises(DataError, match="n99999999"):
        load_data(f"imagenet:{tmp_path}")


def test_fitting_on_the_evaluated_images_is_refused(tmp_path, digits_folder):
    root, _ = digits_folder
    outcome = run_rbl("evaluate", "builtin:digits-cnn", "--data", f"imagefolder:{root}", "--out", str(tmp_path / "r"),
                      "--calibration-data", f"imagefolder:{root / 'test'}?holdout=1")
    assert_one_line_error(outcome, "shares", "--calibration-data")
    assert not (tmp_path / "r" / "tasks").exists()


def test_same_relative_paths_in_other_splits_are_not_a_leak(tmp_path, digits_folder, capsys):
    splits = digits_folder[1]
    for split in ("train", "test"):  # the same relative paths in both splits
        write_digits_folder(tmp_path / "same", {split: splits["test"]})
    run = evaluate("builtin:digits-cnn", f"imagefolder:{tmp_path / 'same'}", suites=["ood"], quiet=False,
                   calibration_data=None, ood_data="builtin:ood-noise-uniform", detectors="mahalanobis",
                   out=tmp_path / "run")
    assert "shares" not in capsys.readouterr().err
    assert len(run.metrics)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 128], [65535, 257 * 64]], dtype=np.uint16)
    (tmp_path / "c").mkdir()
    Image.fromarray(values).save(tmp_path / "c" / "a.png")  # a 16-bit grayscale PNG (mode I;16)
    image = load_data(f"imagefolder:{tmp_path}").images[0]
    assert image[..., 0].tolist() == [[0, 128], [255, 64]] and (image == image[..., :1]).all()


def test_ood_sets_follow_the_id_data(tmp_path, capsys):
    rng = np.random.default_rng(3)
    for k in range(2):
        for i in range(6):
            path = tmp_path / "big" / f"c{k}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    import torch

    from robustbench_local.models import Classifier

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64 * 64, 2))
    model = Classifier(net, 2, (0.0,) * 3, (1.0,) * 3, name="tiny", feature_fn=lambda n, x: n[0](x))
    run = evaluate(model, f"imagefolder:{tmp_path / 'big'}", suites=["ood"], limit=5, quiet=False,
                   calibration_data=None, ood_data="builtin", detectors="msp", out=tmp_path / "run")
    err = capsys.readouterr().err
    assert "ood-stitched is made of digits" in err
    n = run.metrics.set_index(["condition", "metric"])["n"]
    assert n["textures:msp", "auroc"] == 5 + 5  # the OOD sets are limited like the ID data (--limit)
    assert ("stitched:msp", "auroc") not in n.index
