"""`rbl evaluate --suite attacks` and `rbl list attacks` end to end."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from robustbench_local import load_run
from robustbench_local.cli import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_pgd_sweep_on_the_builtin_model(tmp_path):
    out = tmp_path / "run"
    result = _invoke("evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "attacks", "--attack",
                     "pgd", "--norm", "Linf", "--eps", "2/255,8/255", "--limit", "50", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "pgd:Linf:8/255" in result.output and "robust_acc" in result.output
    metrics = pd.read_csv(out / "metrics.csv")
    robust = metrics[metrics.metric == "robust_acc"].set_index("condition").value
    clean = metrics[metrics.metric == "clean_acc"].set_index("condition").value
    assert clean["pgd:Linf:2/255"] >= robust["pgd:Linf:2/255"] >= robust["pgd:Linf:8/255"]
    assert {"ece_15_equal_width_ts", "nll_ts", "flag_randomized"} <= set(metrics.metric)
    again = _invoke("evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "attacks", "--attack",
                    "pgd", "--norm", "Linf", "--eps", "2/255,8/255", "--limit", "50", "--out", str(out))
    assert again.exit_code == 0 and pd.read_csv(out / "metrics.csv").equals(metrics)  # resumed, not recomputed


@pytest.mark.parametrize("model", ["torchvision:resnet18?num_classes=10", "builtin:digits-cnn"])
def test_cli_every_attack_runs(tmp_path, model):
    torch.manual_seed(0)  # random-init torchvision weights are drawn in this process: fix the clean-correct points
    attacks = "fgsm,pgd?steps=2,apgd-ce?steps=2,apgd-dlr?steps=2,apgd-t?steps=2&targets=2,fab-t?steps=2&targets=2," \
              "square?queries=5,autoattack?steps=2&queries=5,autoattack-rand?steps=2,aa-fast?steps=2"
    result = _invoke("evaluate", model, "--data", "builtin:digits", "--suite",
                     "attacks", "--attack", attacks, "--eps", "4/255", "--limit", "20", "--calibration-data", "none",
                     "--out", str(tmp_path / "tv"))
    assert result.exit_code == 0, result.output
    l2 = _invoke("evaluate", model, "--data", "builtin:digits", "--suite",
                 "attacks", "--attack", "pgd?steps=2,cw?steps=2", "--norm", "L2", "--eps", "0.5", "--limit", "4",
                 "--calibration-data", "none", "--out", str(tmp_path / "tv2"))
    assert l2.exit_code == 0, l2.output
    metrics = pd.read_csv(tmp_path / "tv" / "metrics.csv")
    assert len(set(metrics[metrics.metric == "robust_acc"].condition)) == 10
    records = load_run(tmp_path / "tv").records
    assert records.clean_correct.sum() > 0 and (records.queries[records.clean_correct] > 0).all()


def test_cli_lists_attacks_and_rejects_bad_input(tmp_path):
    listing = _invoke("list", "attacks")
    assert listing.exit_code == 0 and "autoattack" in listing.output and "apgd-t" in listing.output
    assert "aa-fast" in listing.output and "MALT" in listing.output
    for bad in (["--attack", "nope"], ["--attack", "cw"], ["--eps", "-1"], ["--norm", "L7"]):
        result = CliRunner().invoke(cli, ["evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite",
                                          "attacks", "--limit", "2", "--out", str(tmp_path / "bad"), *bad])
        assert result.exit_code == 2, (bad, result.output)
        assert result.output.strip().startswith("error:"), result.output
