"""cifar10c:DIR and imagenetc:DIR readers on tiny files in exactly the released layouts, and the suite on them."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from robustbench_local.corruptions.api import corrupt_images
from robustbench_local.corruptions.mce import ALEXNET_ERR
from robustbench_local.corruptions.readers import precomputed_index
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
    data = load_data(f"cifar10c:{root}")
    assert len(data) == 2 * 5 * N and data.num_classes == int(clean.labels.max()) + 1
    raw = np.load(root / "contrast.npy")
    idx = precomputed_index(data, "contrast", 3)
    np.testing.assert_array_equal(data.images[idx], raw[2 * N:3 * N])
    np.testing.assert_array_equal(data.labels[idx], clean.labels)
    assert data.ids[idx][0] == "contrast/3/00000"
    some = load_data(f"cifar10c:{root}?corruptions=contrast&severities=2,4")
    assert sorted({i.rsplit("/", 1)[0] for i in some.ids}) == ["contrast/2", "contrast/4"]
    with pytest.raises(DataError, match="no data for fog"):
        load_data(f"cifar10c:{root}?corruptions=fog")
    with pytest.raises(DataError, match="only a test split"):
        load_data(f"cifar10c:{root}", "val")


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


def test_imagenetc_reader(tmp_path, digits_test):
    rng = np.random.default_rng(0)
    layout = {("fog", 1): ["n02", "n01"], ("fog", 2): ["n03"], ("snow", 5): ["n01"]}
    written = {}
    for (c, s), wnids in layout.items():
        for w in wnids:
            folder = tmp_path / c / str(s) / w
            folder.mkdir(parents=True)
            img = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
            Image.fromarray(img).save(folder / "ILSVRC2012_val_00000001.JPEG", quality=85)
            written[f"{c}/{s}/{w}/ILSVRC2012_val_00000001.JPEG"] = w
    data = load_data(f"imagenetc:{tmp_path}")
    assert data.class_names == ("n01", "n02", "n03") and data.num_classes == 3
    assert sorted(data.ids.tolist()) == sorted(written)
    for i, sample_id in enumerate(data.ids.tolist()):
        assert data.class_names[data.labels[i]] == written[sample_id]
        decoded = np.asarray(Image.open(tmp_path / sample_id).convert("RGB"))
        np.testing.assert_array_equal(data.images[i], decoded)
    assert len(precomputed_index(data, "fog", 1)) == 2
    only = load_data(f"imagenetc:{tmp_path}?corruptions=snow&severities=5")
    assert only.ids.tolist() == ["snow/5/n01/ILSVRC2012_val_00000001.JPEG"]
    with pytest.raises(DataError, match="is missing"):
        load_data(f"imagenetc:{tmp_path}?corruptions=snow&severities=1")


def test_suite_on_imagenetc(tmp_path):
    import torch

    from robustbench_local.models import Classifier

    rng = np.random.default_rng(1)
    for c, s in (("fog", 1), ("fog", 2)):
        for w in ("n01", "n02"):
            folder = tmp_path / c / str(s) / w
            folder.mkdir(parents=True)
            for k in range(2):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"v{k}.JPEG")
    torch.manual_seed(0)
    model = Classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2)), 2, (0.0,) * 3, (1.0,) * 3,
                       name="tiny")
    run = evaluate(model, f"imagenetc:{tmp_path}", suites=["corruptions"], calibration_data=None,
                   corruptions="fog", severities="1,2")
    m = run.metrics.set_index(["condition", "metric"]).value
    data = load_data(f"imagenetc:{tmp_path}?corruptions=fog&severities=2")
    expected = (model.predict(data.images).argmax(1) == data.labels).mean()
    assert m["fog/2", "acc"] == pytest.approx(expected)
    assert m["weather", "mean_corruption_acc"] == pytest.approx((m["fog/1", "acc"] + m["fog/2", "acc"]) / 2)
