"""The metric contract: every reported metric is declared once, the gate reads direction from the declarations and
pairs every metric (summaries included) by resampling both runs' sample ids identically, records match their schema."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from robustbench_local.corruptions.mce import ALEXNET_ERR
from robustbench_local.corruptions.names import COMMON
from robustbench_local.reports.glossary import GLOSSARY
from sklearn.metrics import roc_auc_score

import robustbench_local as rbl
from robustbench_local import registry
from robustbench_local.errors import SpecError
from robustbench_local.gate import Rule, judge
from robustbench_local.metrics.contract import declared, metric_spec
from robustbench_local.records import Records, RecordSchemaError, classification_records
from robustbench_local.runner.store import RunStore
from robustbench_local.seeding import numpy_rng
from robustbench_local.suites import BaseSuite, Condition, TaskContext, suite_entry

N, B, GATE_SEED = 40, 1000, 5
OPTIONS = {"attack": "fgsm", "eps": "0,0.1", "corruptions": "common", "severities": "1-5",
           "ood_data": "builtin", "detectors": "msp,energy", "ood_limit": N}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A trained and an untrained model through every suite, on the same 40 digits."""
    root = tmp_path_factory.mktemp("contract")
    suites = ["clean", "attacks", "corruptions", "ood"]
    return {name: rbl.evaluate(model, "builtin:digits", suites, out=root / name, limit=N, seed=1, **OPTIONS)
            for name, model in (("trained", "builtin:digits-cnn"), ("untrained", "builtin:digits-cnn?weights=none"))}


def test_every_metric_of_an_all_suite_run_is_declared(runs):
    names = set(runs["trained"].metrics.metric)
    assert {"robust_acc", "mce_alexnet", "auroc_mean", "temperature", "flag_eps_not_decreasing"} <= names
    assert names <= set(declared()), sorted(names - set(declared()))
    assert {name for name, _ in GLOSSARY} >= names  # the glossary is the declarations


def test_declarations_give_direction_and_range():
    assert metric_spec("robust_acc").higher_is_better and not metric_spec("mce_alexnet").higher_is_better
    assert not metric_spec("mce").higher_is_better and not metric_spec("fpr_at_95tpr_id_mean").higher_is_better
    assert (metric_spec("brier_sum_ts").low, metric_spec("brier_sum_ts").high) == (0.0, 2.0)


@pytest.mark.parametrize("rule,fragments", [
    ({"metric": "robust_ac", "max_drop": 0.01}, ["unknown metric 'robust_ac'", "robust_acc"]),
    ({"metric": "zzz", "min": 0.5}, ["unknown metric 'zzz'", "known:", "auroc"]),
    ({"metric": "nll", "max_drop": 0.01}, ["`max_drop` does not fit nll (lower is better)", "`max_rise`"]),
    ({"metric": "auroc_mean", "max_rise": 0.01}, ["`max_rise` does not fit auroc_mean", "`max_drop`"]),
])
def test_rules_on_undeclared_metrics_or_against_their_direction_are_one_line_errors(rule, fragments):
    with pytest.raises(SpecError) as err:
        Rule(**rule)
    assert "\n" not in str(err.value) and all(f in str(err.value) for f in fragments), str(err.value)


def sorted_task(run, suite: str, condition: str) -> pd.DataFrame:
    return run.task(suite, condition).table.sort_values("sample_id", kind="stable").reset_index(drop=True)


def task_key(run, suite: str, condition: str) -> str:
    store = RunStore(run.root)
    return next(k for k in store.task_keys() if (store.load_meta(k)["suite"], store.load_meta(k)["condition"])
                == (suite, condition))


def draws(n: int, *seed_parts: Any) -> np.ndarray:
    """(B, n) indices: the documented resamples, drawn literally (B blocks of n draws of Generator.integers)."""
    return numpy_rng("bootstrap", *seed_parts).integers(0, n, size=(B, n))


def test_ood_change_is_paired_by_id_and_ood_ids_like_a_literal_resampling(runs):
    """auroc of one OOD set: ID test ids and OOD ids are each resampled by their own draws, the same for both runs."""
    base, cand = runs["trained"], runs["untrained"]
    condition = "textures:msp"
    (verdict,) = judge(base, cand, [Rule("auroc", suite="ood", condition=condition, max_drop=0.0)], seed=GATE_SEED)
    tables = {name: sorted_task(run, "ood", condition) for name, run in (("b", base), ("c", cand))}
    assert tables["b"].sample_id.equals(tables["c"].sample_id)
    is_ood = tables["b"].is_ood.to_numpy()
    id_rows, ood_rows = np.flatnonzero(~is_ood), np.flatnonzero(is_ood)
    id_draws = draws(len(id_rows), GATE_SEED, "ood-id", "id")
    ood_draws = draws(len(ood_rows), GATE_SEED, task_key(cand, "ood", condition), "ood")
    changes = []
    for i, o in zip(id_draws, ood_draws, strict=True):
        rows = np.r_[id_rows[i], ood_rows[o]]
        auroc = {k: roc_auc_score(t.is_ood.to_numpy()[rows], t.score.to_numpy()[rows]) for k, t in tables.items()}
        changes.append(auroc["b"] - auroc["c"])
    assert (verdict.low, verdict.high) == pytest.approx(np.percentile(changes, [5, 95]), abs=2e-6)
    assert verdict.method == "paired bootstrap"
    assert verdict.change == pytest.approx(roc_auc_score(is_ood, tables["b"].score)
                                           - roc_auc_score(is_ood, tables["c"].score))


def test_mce_change_is_paired_like_a_literal_resampling_of_both_runs(runs):
    """mCE: one resample of the sample ids weighs every corruption condition of both runs."""
    base, cand = runs["trained"], runs["untrained"]
    (verdict,) = judge(base, cand, [Rule("mce_alexnet", suite="corruptions", max_rise=0.0)], seed=GATE_SEED)
    idx = draws(N, GATE_SEED, "corruptions-summary")

    def mce(run) -> tuple[float, np.ndarray]:
        ce_point, ce_draws = [], []
        for c in COMMON:
            wrong = np.stack([1 - sorted_task(run, "corruptions", f"{c}/{s}").correct.to_numpy(float)
                              for s in range(1, 6)])  # (5, N), columns in sample-id order
            ce_point.append(wrong.mean(axis=1).sum() / sum(ALEXNET_ERR[c]))
            ce_draws.append(np.stack([wrong[:, row].mean(axis=1) for row in idx]).sum(axis=1) / sum(ALEXNET_ERR[c]))
        return float(np.mean(ce_point)), np.mean(ce_draws, axis=0)

    (b, b_draws), (c, c_draws) = mce(base), mce(cand)
    assert verdict.change == pytest.approx(c - b, abs=1e-12)  # a rise: candidate minus baseline
    assert (verdict.low, verdict.high) == pytest.approx(np.percentile(c_draws - b_draws, [5, 95]), abs=1e-9)
    assert verdict.method == "paired bootstrap"


def test_every_resampled_row_pairs_and_checks_need_floors(runs):
    base, cand = runs["trained"], runs["untrained"]
    rules = [Rule("auroc_mean", suite="ood", condition="far:energy", max_drop=0.0),
             Rule("attack_success_rate", suite="attacks", max_rise=0.5),
             Rule("mean_corruption_acc", suite="corruptions", condition="common", max_drop=0.0),
             Rule("max_perturbation_linf", suite="attacks", max_rise=1.0)]
    verdicts = judge(base, cand, rules, seed=GATE_SEED)
    assert verdicts and all(v.method == "paired bootstrap" and v.low <= v.high for v in verdicts)
    with pytest.raises(SpecError, match="no bootstrap replicates.*`min:` or `max:`"):
        judge(base, cand, [Rule("flag_randomized", suite="attacks", max_rise=0.0)])


class BadRecordsSuite(BaseSuite):
    """Declares a float `margin` column but records text in it."""

    name = "badrecords"
    description = "records that break their schema (test only)"
    record_schema = {**BaseSuite.record_schema, "margin": "f"}

    def conditions(self, options: dict[str, Any]) -> list[Condition]:
        return [Condition("only")]

    def run(self, condition: Condition, ctx: TaskContext) -> Records:
        n = len(ctx.data)
        return classification_records(ctx.clean_logits(), ctx.data.labels, ctx.data.ids, margin=np.full(n, "wide"))


SUITE = BadRecordsSuite()


def test_a_shard_that_breaks_its_suite_schema_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.SUITES.added, "badrecords",
                        suite_entry("badrecords", f"{__name__}:SUITE", "records that break their schema (test only)"))
    with pytest.raises(RecordSchemaError, match=r"margin \(\w+, declared 'f'\).*record_schema"):
        rbl.evaluate("builtin:digits-cnn", "builtin:digits", ["badrecords"], out=tmp_path / "run", limit=10)
    assert not list((tmp_path / "run").glob("shards/*/*.npz")) and not list((tmp_path / "run").glob("tasks/*.npz"))
