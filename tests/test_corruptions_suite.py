"""The corruptions suite end to end, mCE on a hand-made case, the CLI, and one-line errors for bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from robustbench_local.corruptions.api import corrupt_images
from robustbench_local.corruptions.mce import ALEXNET_CLEAN_ERR, ALEXNET_ERR, mce_alexnet, relative_mce_alexnet
from robustbench_local.corruptions.names import COMMON, parse_corruptions, parse_severities
from robustbench_local.corruptions.summary import summary_rows

from robustbench_local import evaluate, load_data
from robustbench_local.cli import cli
from robustbench_local.errors import DataError, SpecError


def test_mce_on_a_hand_made_case():
    # every common corruption at half of AlexNet's error -> CE = 0.5 each, mCE = 0.5
    errors = {c: [e / 2 for e in ALEXNET_ERR[c]] for c in COMMON}
    assert mce_alexnet(errors) == pytest.approx(0.5)
    # one corruption at AlexNet's error, the rest at zero: mCE = 1/15
    errors = {c: [0.0] * 5 for c in COMMON}
    errors["fog"] = list(ALEXNET_ERR["fog"])
    assert mce_alexnet(errors) == pytest.approx(1 / 15)
    # relative: E = E_clean + 0.25 (E_alex - E_alex_clean) for every corruption -> rCE = 0.25
    clean = 0.1
    errors = {c: [clean + 0.25 * (e - ALEXNET_CLEAN_ERR) for e in ALEXNET_ERR[c]] for c in COMMON}
    assert relative_mce_alexnet(errors, clean) == pytest.approx(0.25)
    # by hand for fog alone: sum(E - 0.1) / sum(E_alex - 0.4348), E = 0.3 at every severity
    fog = (5 * 0.2) / (0.67474 + 0.76050 + 0.84378 + 0.87260 + 0.94500 - 5 * 0.4348)
    errors = {c: [clean] * 5 for c in COMMON}
    errors["fog"] = [0.3] * 5
    assert relative_mce_alexnet(errors, clean) == pytest.approx(fog / 15)


def test_summary_rows_from_a_hand_made_metrics_table():
    rows = [{"condition": "clean", "metric": "acc", "value": 0.9, "n": 10, "params": json.dumps({"severity": 0})}]
    for c in COMMON:
        for s in range(1, 6):
            rows.append({"condition": f"{c}/{s}", "metric": "acc", "value": 1 - ALEXNET_ERR[c][s - 1] / 2, "n": 10,
                         "params": json.dumps({"corruption": c, "severity": s})})
    rows.append({"condition": "saturate/1", "metric": "acc", "value": 0.2, "n": 10,
                 "params": json.dumps({"corruption": "saturate", "severity": 1})})
    out = pd.DataFrame(summary_rows(pd.DataFrame(rows))).set_index(["condition", "metric"]).value
    assert out["common", "mce_alexnet"] == pytest.approx(0.5)
    expected_acc = np.mean([1 - e / 2 for c in COMMON for e in ALEXNET_ERR[c]])
    assert out["common", "mean_corruption_acc"] == pytest.approx(expected_acc)
    assert out["common", "mean_corruption_error"] == pytest.approx(1 - expected_acc)
    assert out["validation", "mean_corruption_acc"] == pytest.approx(0.2)  # reported apart, not in "common"
    noise = np.mean([1 - e / 2 for c in ("gaussian_noise", "shot_noise", "impulse_noise") for e in ALEXNET_ERR[c]])
    assert out["noise", "mean_corruption_acc"] == pytest.approx(noise)
    rce = np.mean([sum(e / 2 - 0.1 for e in ALEXNET_ERR[c]) / sum(e - ALEXNET_CLEAN_ERR for e in ALEXNET_ERR[c])
                   for c in COMMON])
    assert out["common", "relative_mce_alexnet"] == pytest.approx(rce)


@pytest.mark.numerics
def test_suite_records_match_an_independent_loop(digits_model, digits_test, tmp_path):
    data = digits_test.limit(40)
    run = evaluate(digits_model, data, suites=["corruptions"], out=tmp_path / "run",
                   calibration_data=load_data("builtin:digits", "val"),
                   corruptions="contrast,gaussian_noise", severities="2,5", corruption_workers="0", backend="reference")
    m = run.metrics.set_index(["condition", "metric"]).value
    accs = {}
    for c in ("contrast", "gaussian_noise"):
        for s in (2, 5):
            images = corrupt_images(data.images, c, s, seed=0, ids=data.ids, params="cifar-10-c", backend="reference")
            accs[c, s] = float((digits_model.predict(images).argmax(1) == data.labels).mean())
            assert m[f"{c}/{s}", "acc"] == pytest.approx(accs[c, s])
            assert (f"{c}/{s}", "ece_15_equal_width_ts") in m.index
    assert m["clean", "acc"] == pytest.approx(float((digits_model.predict(data.images).argmax(1) == data.labels).mean()))
    assert m["common", "mean_corruption_acc"] == pytest.approx(np.mean(list(accs.values())))
    assert m["severity=5", "mean_corruption_acc"] == pytest.approx((accs["contrast", 5] + accs["gaussian_noise", 5]) / 2)
    assert ("common", "mce_alexnet") not in m.index  # needs all 15 x 5


def test_option_parsers():
    assert parse_corruptions("common") == COMMON
    assert parse_corruptions("fog,noise") == ("gaussian_noise", "shot_noise", "impulse_noise", "fog")
    assert parse_severities("1-3,5") == (1, 2, 3, 5)
    for bad in ("0", "6", "1-6", "x"):
        with pytest.raises(SpecError):
            parse_severities(bad)
    with pytest.raises(SpecError, match="unknown corruption"):
        parse_corruptions("fogg")


@pytest.mark.parametrize("images, error, text", [
    (np.zeros((1, 32, 32, 3), np.float32), DataError, "uint8"),
    (np.zeros((1, 32, 32), np.uint8), DataError, "grayscale"),
    (np.zeros((1, 32, 32, 1), np.uint8), DataError, "grayscale"),
    (np.zeros((1, 31, 40, 3), np.uint8), DataError, "at least 32"),
])
def test_bad_images_give_typed_errors(images, error, text):
    with pytest.raises(error, match=text):
        corrupt_images(images, "fog", 1)


@pytest.mark.parametrize("args, text", [
    (["--corruption", "fogg", "--severity", "1"], "unknown corruption 'fogg'"),
    (["--corruption", "fog", "--severity", "0"], "severity must be an integer from 1 to 5"),
    (["--corruption", "fog", "--severity", "6"], "severity must be an integer from 1 to 5"),
    (["--corruption", "fog", "--severity", "1", "--params", "tiny"], "unknown corruption parameter set"),
])
def test_cli_corrupt_bad_input_is_one_line(args, text, tmp_path):
    result = CliRunner().invoke(cli, ["--quiet", "corrupt", "builtin:digits", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert text in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_corrupt_writes_pngs_and_contact_sheet(tmp_path, digits_test):
    from PIL import Image

    result = CliRunner().invoke(cli, ["--quiet", "corrupt", "builtin:digits", "--corruption", "pixelate",
                                      "--severity", "5", "--limit", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "pixelate-5").glob("*.png"))
    assert len(files) == 3
    data = digits_test.limit(3)
    expected = corrupt_images(data.images, "pixelate", 5, ids=data.ids, params="cifar-10-c")
    first = np.asarray(Image.open(tmp_path / "pixelate-5" / f"{data.ids[0]}.png"))
    np.testing.assert_array_equal(first, expected[0])
    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert sheet.size == (130 + 96 * 6, 16 + 96 * 19)


def test_cli_list_corruptions():
    result = CliRunner().invoke(cli, ["list", "corruptions"])
    assert result.exit_code == 0
    assert "glass_blur" in result.output and "cifar-10-c" in result.output and "reference" in result.output


def test_clean_pass_is_computed_once_across_suites(digits_model, digits_test, tmp_path, monkeypatch):
    """The corruption suite's clean condition reuses the shard's clean logits: the clean images go through the model
    once for both suites, and both suites' clean records are the same logits, bit for bit."""
    data = digits_test.limit(20)
    passes = []
    original = type(digits_model).predict_stream

    def counting(self, batches):
        batches = list(batches)
        images = np.concatenate(batches) if batches else None
        passes.append(images is not None and images.shape == data.images.shape and np.array_equal(images, data.images))
        return original(self, batches)

    monkeypatch.setattr(type(digits_model), "predict_stream", counting)
    for order in (["clean", "corruptions"], ["corruptions", "clean"]):  # whichever suite computes them, once
        passes.clear()
        run = evaluate(digits_model, data, suites=order, out=tmp_path / order[0], calibration_data=None,
                       corruptions="contrast", severities="1,2", corruption_workers="0")
        assert sum(passes) == 1  # the clean images went through the model once, shared by both suites
        clean, corrupted = run.task("clean", "clean"), run.task("corruptions", "clean")
        assert clean.logits.tobytes() == corrupted.logits.tobytes()
        assert corrupted.table["correct"].tolist() == clean.table["correct"].tolist()
        m = run.metrics.set_index(["suite", "condition", "metric"])
        assert m.loc[("clean", "clean", "acc"), "value"] == m.loc[("corruptions", "clean", "acc"), "value"]
