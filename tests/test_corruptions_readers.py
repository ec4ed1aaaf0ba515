"""cifar10c:DIR and imagenetc:DIR readers on tiny files in exactly the released layouts, and the suite on them."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from robustbench_local.corruptions.api import corrupt_images
from robustbench_local.corruptions.mce import ALEXNET_ERR
from robustbench_local.corruptions.summary import SUMMARY_KEY

from robustbench_local import evaluate, load_data
from robustbench_local.errors import DataError
from robustbench_local.metrics import resample_weights

N = 6  # images per severity


@pytest.fixture(scope="module")
def cifar10c_dir(tmp_path_factory, digits_test):
    root = tmp_path_factory.mktemp("cifar10c")
    clean = digits_test.subset(np.arange(N))
    for name in ("gaussian_noise", "contrast"):
        rows = [corrupt_images(clean.images, name, s, ids=clean.ids, params="cifar-10-c") for s in range(1, 6)]
        np.save(root / f"{name}.npy", np.concatenate(rows))  # (5N, 32, 32, 3): severity s in rows (s-1)N..sN
    np.save(root / "labels.npy", np.tile(clean.labels, 5).astype(np.uint8))
    return root, clean


def test_cifar10c_reader(cifar10c_dir):
    root, clean = cifar10c_dir
    data = load_data(f"cifar10c:{root}")  # the source images, one variant per corruption and severity
    assert len(data) == N and data.num_classes == int(clean.labels.max()) + 1
    assert data.ids.tolist() == [f"test-{i:05d}" for i in range(N)]  # the ids of cifar10:'s test split
    assert data.variants == tuple(f"{c}/{s}" for c in ("gaussian_noise", "contrast") for s in range(1, 6))
    raw = np.load(root / "contrast.npy")
    view = data.with_variant("contrast/3")
    np.testing.assert_array_equal(view.images, raw[2 * N:3 * N])
    np.testing.assert_array_equal(view.labels, clean.labels)
    np.testing.assert_array_equal(data.limit(3).with_variant("contrast/3").images,
                                  raw[2 * N:3 * N][np.isin(data.ids, data.limit(3).ids)])
    some = load_data(f"cifar10c:{root}?corruptions=contrast&severities=2,4")
    assert some.variants == ("contrast/2", "contrast/4")
    with pytest.raises(DataError, match="no data for fog"):
        load_data(f"cifar10c:{root}?corruptions=fog")
    with pytest.raises(DataError, match="only a test split"):
        load_data(f"cifar10c:{root}", "val")
    with pytest.raises(DataError, match="only corrupted images"):
        _ = data.images


def test_suite_on_a_precomputed_set(cifar10c_dir, digits_model):
    root, clean = cifar10c_dir
    run = evaluate(digits_model, f"cifar10c:{root}?num_classes=10", suites=["corruptions"], calibration_data=None,
                   corruptions="gaussian_noise,contrast", severities="1-5")
    m = run.metrics.set_index(["condition", "metric"]).value
    raw = np.load(root / "gaussian_noise.npy")
    correct = []
    for s in range(1, 6):
        correct.append(digits_model.predict(raw[(s - 1) * N:s * N]).argmax(1) == clean.labels)
        assert m[f"gaussian_noise/{s}", "acc"] == pytest.approx(correct[-1].mean())
    # the conditions pair by source image (ids without their 'corruption/severity/' prefix): a paired interval
    weights = np.concatenate(list(resample_weights(N, 1000, 0, SUMMARY_KEY)))
    ce = [sum(1 - (w @ a) / N for a in correct) / sum(ALEXNET_ERR["gaussian_noise"]) for w in weights]
    ci = run.metrics.set_index(["condition", "metric"]).loc[("gaussian_noise", "ce_alexnet"), ["ci_low", "ci_high"]]
    assert tuple(ci) == pytest.approx(tuple(np.percentile(ce, [2.5, 97.5])), abs=1e-12)
    assert ("clean", "acc") not in m.index  # a precomputed set has no clean images
    assert ("gaussian_noise", "ce_alexnet") in m.index and ("gaussian_noise", "relative_ce_alexnet") not in m.index
    with pytest.raises(DataError, match="holds no fog"):
        evaluate(digits_model, f"cifar10c:{root}?num_classes=10", suites=["corruptions"], calibration_data=None,
                 corruptions="fog", severities="1")


WNIDS = ("n01440764", "n01443537", "n01484850")  # ImageNet classes 0, 1, 2


def write_imagenetc(root, variants, files_per_class: int = 1, size: tuple[int, int] = (36, 40), seed: int = 0):
    """`root/<corruption>/<severity>/<wnid>/ILSVRC2012_val_*.JPEG`, the same file names in every variant."""
    rng = np.random.default_rng(seed)
    for c, s in variants:
        for k, w in enumerate(WNIDS[:2]):
            folder = root / c / str(s) / w
            folder.mkdir(parents=True)
            for i in range(files_per_class):
                img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                Image.fromarray(img).save(folder / f"ILSVRC2012_val_{k * files_per_class + i + 1:08d}.JPEG", quality=85)


def test_imagenetc_reader(tmp_path):
    write_imagenetc(tmp_path, [("fog", 1), ("fog", 2), ("snow", 5)])
    data = load_data(f"imagenetc:{tmp_path}")
    assert data.num_classes == 1000 and data.class_names[:3] == WNIDS  # imagenet:'s class index
    assert data.ids.tolist() == [f"{WNIDS[0]}/ILSVRC2012_val_00000001.JPEG", f"{WNIDS[1]}/ILSVRC2012_val_00000002.JPEG"]
    assert data.labels.tolist() == [0, 1]
    assert data.variants == ("snow/5", "fog/1", "fog/2")  # in the corruptions' canonical order
    for variant in data.variants:
        view = data.with_variant(variant)
        for i, sample_id in enumerate(view.ids.tolist()):
            decoded = np.asarray(Image.open(tmp_path / variant / sample_id).convert("RGB"))
            np.testing.assert_array_equal(view.images[i], decoded)
    only = load_data(f"imagenetc:{tmp_path}?corruptions=snow&severities=5")
    assert only.variants == ("snow/5",) and only.ids.tolist() == data.ids.tolist()
    with pytest.raises(DataError, match="is missing"):
        load_data(f"imagenetc:{tmp_path}?corruptions=snow&severities=1")
    (tmp_path / "fog" / "2" / WNIDS[1] / "ILSVRC2012_val_00000002.JPEG").unlink()  # a variant lacks an image
    with pytest.raises(DataError, match="missing image .*fog/2/n01443537/ILSVRC2012_val_00000002.JPEG"):
        _ = load_data(f"imagenetc:{tmp_path}").fingerprint


def test_suite_on_imagenetc(tmp_path):
    import torch

    from robustbench_local.models import Classifier

    write_imagenetc(tmp_path, [("fog", 1), ("fog", 2)], files_per_class=2, size=(32, 32), seed=1)
    torch.manual_seed(0)
    model = Classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 1000)), 1000, (0.0,) * 3,
                       (1.0,) * 3, name="tiny")
    run = evaluate(model, f"imagenetc:{tmp_path}", suites=["corruptions"], calibration_data=None,
                   corruptions="fog", severities="1,2")
    m = run.metrics.set_index(["condition", "metric"]).value
    data = load_data(f"imagenetc:{tmp_path}?corruptions=fog&severities=2").with_variant("fog/2")
    expected = (model.predict(data.images).argmax(1) == data.labels).mean()
    assert m["fog/2", "acc"] == pytest.approx(expected)
    assert m["weather", "mean_corruption_acc"] == pytest.approx((m["fog/1", "acc"] + m["fog/2", "acc"]) / 2)
