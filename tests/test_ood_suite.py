"""The `ood` suite end to end: CLI runs on built-in data and a torchvision model, cached fitting, the
near/far summary, the built-in OOD sets, and one-line errors for bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from robustbench_local.ood.builtin_sets import OOD_SETS
from robustbench_local.ood.cache import FIT_DIR, fitted
from robustbench_local.ood.detectors import DETECTORS, build
from robustbench_local.ood.entries import FEATURES, HEAD
from robustbench_local.ood.suite import SUITE, parse_ood_data
from sklearn.metrics import roc_auc_score

from robustbench_local import load_data
from robustbench_local.cli import cli
from robustbench_local.errors import SpecError
from robustbench_local.results import load_run


def rbl(*args: str):
    return CliRunner().invoke(cli, ["--quiet", *args])


SMALL = ["--data", "builtin:digits", "--suite", "ood", "--limit", "40", "--ood-limit", "30",
         "--ood-fit-limit", "120"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ood-run")
    result = rbl("evaluate", "builtin:digits-cnn", *SMALL, "--out", str(out),
                 "--ood-data", "builtin:ood-noise-uniform,builtin:ood-textures,builtin:ood-stitched",
                 "--detectors", "msp,energy,knn,react,odin,vim")
    assert result.exit_code == 0, result.output
    return out, result.output


def test_digits_run_conditions_and_metrics(digits_run):
    out, output = digits_run
    run = load_run(out)
    m = run.metrics[run.metrics.suite == "ood"]
    assert {"noise-uniform:energy", "textures:knn", "stitched:odin"} <= set(m.condition)
    assert {"far:energy", "near:energy"} <= set(m.condition)
    assert "auroc_mean" in output and "far:vim" in output
    # Each per-set AUROC equals scikit-learn on the stored records; ID samples are the limited test split.
    records = run.records[run.records.suite == "ood"]
    for condition in ("noise-uniform:energy", "stitched:knn", "textures:odin"):
        r = records[records.condition == condition]
        assert (~r.is_ood).sum() == 40 and r.is_ood.sum() == 30
        got = m[(m.condition == condition) & (m.metric == "auroc")].value.item()
        assert got == pytest.approx(roc_auc_score(r.is_ood, r.score), abs=1e-12)
        assert set(r.detector) == {condition.split(":")[1]}
    # near/far rows are the unweighted mean over the sets of that kind (OpenOOD's nearood/farood).
    per_set = m[m.metric == "fpr_at_95tpr_id"].set_index("condition").value
    far = m[(m.condition == "far:msp") & (m.metric == "fpr_at_95tpr_id_mean")].value.item()
    assert far == pytest.approx((per_set["noise-uniform:msp"] + per_set["textures:msp"]) / 2)
    near = m[(m.condition == "near:msp") & (m.metric == "fpr_at_95tpr_id_mean")].value.item()
    assert near == pytest.approx(per_set["stitched:msp"])
    assert len(list((out / FIT_DIR).glob("*.npz"))) == 3  # knn, react, vim: fitted once for three sets


def test_resume_recomputes_nothing(digits_run):
    out, _ = digits_run
    before = {p: p.stat().st_mtime_ns for p in (out / "tasks").glob("*.npz")}
    result = rbl("evaluate", "builtin:digits-cnn", *SMALL, "--out", str(out),
                 "--ood-data", "builtin:ood-noise-uniform,builtin:ood-textures,builtin:ood-stitched",
                 "--detectors", "msp,energy,knn,react,odin,vim")
    assert result.exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "tasks").glob("*.npz")} == before


def test_fitted_state_is_read_back_from_the_run_dir(tmp_path, digits_model, capsys):
    train = load_data("builtin:digits", "train", 100)
    first = fitted(build("mahalanobis"), digits_model, train, 64, tmp_path, "train")
    path, = (tmp_path / FIT_DIR).glob("mahalanobis-*.npz")
    with np.load(path, allow_pickle=False) as z:
        assert np.array_equal(z["precision_"], first.precision_)
        z_means = z["means_"].copy()
    mtime = path.stat().st_mtime_ns
    second = fitted(build("mahalanobis"), digits_model, train, 64, tmp_path, "train")
    assert path.stat().st_mtime_ns == mtime and np.array_equal(second.means_, z_means)  # read, not refitted
    # An edited file is not used: it no longer matches its recorded digest, so the state is fitted again.
    np.savez(path, means_=z_means + 1, precision_=first.precision_, meta=np.array("{}"))
    third = fitted(build("mahalanobis"), digits_model, train, 64, tmp_path, "train")
    assert np.array_equal(third.means_, z_means)
    assert f"{FIT_DIR}/{path.name} does not match its recorded digest" in capsys.readouterr().err


def test_torchvision_model_all_detectors(tmp_path):
    result = rbl("evaluate", "torchvision:resnet18?num_classes=10", "--data", "builtin:digits", "--suite", "ood",
                 "--limit", "12", "--ood-limit", "10", "--ood-fit-limit", "60", "--batch-size", "32",
                 "--ood-data", "builtin:ood-noise-gaussian", "--detectors", "all", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    m = load_run(tmp_path).metrics
    aurocs = m[(m.suite == "ood") & (m.metric == "auroc")]
    assert set(aurocs.condition) == {f"noise-gaussian:{d}" for d in DETECTORS}
    assert aurocs.value.between(0, 1).all()


def test_model_without_features_runs_the_detectors_it_can_serve(tmp_path, digits_model):
    """A TorchScript program exposes logits and input gradients but no layers: under `--detectors all` the feature
    and head detectors are skipped with a notice naming the fix, and the others are scored."""
    program = tmp_path / "digits.ts"
    torch.jit.save(torch.jit.trace(digits_model.net, torch.rand(2, 3, 32, 32)), str(program))
    result = CliRunner().invoke(cli, ["evaluate", f"torchscript:{program}?norm=none", *SMALL, "--ood-data",
                                      "builtin:ood-noise-uniform", "--detectors", "all", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    m = load_run(tmp_path / "run").metrics
    scored = {c.split(":")[1] for c in m[(m.suite == "ood") & (m.metric == "auroc")].condition}
    needs_layers = {e.name for e in DETECTORS.entries() if {FEATURES, HEAD} & set(e.meta["consumes"])}
    assert needs_layers and scored == set(DETECTORS) - needs_layers
    assert "needs penultimate features, which this model does not expose; load it with" in result.output


def test_builtin_sets_are_deterministic_and_digit_shaped():
    for name in OOD_SETS:
        a, b = load_data(f"builtin:{name}"), load_data(f"builtin:{name}", limit=7)
        assert a.images.shape == (360, 32, 32, 3) and a.images.dtype == np.uint8
        assert np.array_equal(a.subset(np.isin(a.ids, b.ids).nonzero()[0]).images, b.images)
    digits = load_data("builtin:digits", "test")
    stitched = load_data("builtin:ood-stitched", limit=20).images
    for img in stitched:  # left half of one digit, right half of a digit of another class
        left = [k for k, d in enumerate(digits.images) if np.array_equal(d[:, :16], img[:, :16])]
        right = [k for k, d in enumerate(digits.images) if np.array_equal(d[:, 16:], img[:, 16:])]
        assert left and right
        assert not set(digits.labels[left]) & set(digits.labels[right]) or len(left) > 1 or len(right) > 1


def test_parse_ood_data_kinds():
    assert parse_ood_data("builtin")[0] == ("near", "builtin:ood-stitched")
    assert parse_ood_data("near=imagefolder:/x,npz:y.npz") == (("near", "imagefolder:/x"), ("far", "npz:y.npz"))
    with pytest.raises(SpecError):
        parse_ood_data("nosuch:thing")


def test_condition_names_are_unique():
    names = [c.name for c in SUITE.conditions({"ood_data": parse_ood_data("imagefolder:/a/x,imagefolder:/b/x"),
                                               "detectors": ("msp",)})]
    assert names == ["imagefolder-x-1:msp", "imagefolder-x-2:msp"]


def test_summary_from_a_frame():
    frame = pd.DataFrame({
        "condition": ["a:msp", "b:msp", "c:msp"], "metric": ["auroc"] * 3, "value": [0.5, 0.7, 0.9],
        "n": [10, 10, 10],
        "params": ['{"kind": "far", "detector": "msp", "ood_data": "a"}',
                   '{"kind": "far", "detector": "msp", "ood_data": "b"}',
                   '{"kind": "near", "detector": "msp", "ood_data": "c"}']})
    rows = {r["condition"]: r for r in SUITE.summary(frame)}
    assert rows["far:msp"]["value"] == pytest.approx(0.6) and rows["near:msp"]["value"] == pytest.approx(0.9)
    assert rows["far:msp"]["metric"] == "auroc_mean" and rows["far:msp"]["n"] == 20
    assert np.isnan(rows["far:msp"]["ci_low"])  # no replicates in this frame: no interval
    frame["paired"] = [[0.4, 0.6], [0.6, 1.0], [0.8, 1.0]]
    rows = {r["condition"]: r for r in SUITE.summary(frame)}
    assert (rows["far:msp"]["ci_low"], rows["far:msp"]["ci_high"]) == pytest.approx(
        tuple(np.percentile([0.5, 0.8], [2.5, 97.5])))


def test_list_detectors():
    result = rbl("list", "detectors")
    assert result.exit_code == 0
    for name in DETECTORS:
        assert name in result.output


def write_images(root, size, n=3):
    folder = root / "things"
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("args,match", [
    (["--detectors", "energy,nope"], "unknown detector(s) nope"),
    (["--ood-data", "builtin:ood-nothing"], "unknown built-in data set 'ood-nothing'"),
    (["--ood-data", ""], "--ood-data: empty list"),
    (["--ood-limit", "0"], "--ood-limit: expected an integer >= 1, got '0'"),
    (["--ood-limit", "x"], "--ood-limit: expected an integer >= 1, got 'x'"),
])
def test_bad_options_one_line_errors(tmp_path, args, match):
    result = rbl("evaluate", "builtin:digits-cnn", *SMALL, "--out", str(tmp_path), *args)
    assert result.exit_code == 2
    assert match in result.output and result.output.count("\n") == 1


def test_other_image_size_refused_then_resized(tmp_path):
    folder = write_images(tmp_path / "big", 48)
    args = [*SMALL, "--ood-data", f"imagefolder:{folder}", "--detectors", "msp"]
    result = rbl("evaluate", "builtin:digits-cnn", *args, "--out", str(tmp_path / "r1"))
    assert result.exit_code == 2 and "48x48 images but the ID data has 32x32" in result.output
    assert "?resize=32&crop=32" in result.output
    ok = rbl("evaluate", "builtin:digits-cnn?input_size=32", *args, "--out", str(tmp_path / "r2"))
    assert ok.exit_code == 0, ok.output
    ok = rbl("evaluate", "builtin:digits-cnn", *SMALL, "--ood-data", f"imagefolder:{folder}?resize=32&crop=32",
             "--detectors", "msp", "--out", str(tmp_path / "r3"))
    assert ok.exit_code == 0, ok.output
    assert "imagefolder-big:msp" in set(load_run(tmp_path / "r3").metrics.condition)


def test_empty_ood_set_and_missing_fit_split(tmp_path):
    (tmp_path / "empty" / "things").mkdir(parents=True)
    result = rbl("evaluate", "builtin:digits-cnn", *SMALL, "--ood-data", f"imagefolder:{tmp_path / 'empty'}",
                 "--detectors", "msp", "--out", str(tmp_path / "r1"))
    assert result.exit_code == 2 and "no images" in result.output and result.output.count("\n") == 1
    images = load_data("builtin:digits", "test", 50)
    np.savez(tmp_path / "id.npz", x=images.images, y=images.labels)
    result = rbl("evaluate", "builtin:digits-cnn", "--data", f"npz:{tmp_path / 'id.npz'}", "--suite", "ood",
                 "--ood-data", "builtin:ood-noise-uniform", "--ood-limit", "20", "--detectors", "react",
                 "--calibration-data", "none", "--out", str(tmp_path / "r2"))
    assert result.exit_code == 2 and "fitted on the ID val split" in result.output
    assert result.output.count("\n") == 1
