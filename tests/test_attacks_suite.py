"""The attacks suite: exactness at eps=0, monotone sweeps, attack ordering, agreement with the original AutoAttack,
the adversarial-example contract, model hygiene and sanity flags. Heavy attacks run on small subsets; checks that
do not need the built-in CNN use a small MLP trained in a few seconds."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from robustbench_local.attacks import builders
from robustbench_local.attacks.base import Outcome
from robustbench_local.attacks.engine import PointState, run_sequence
from robustbench_local.attacks.registry import parse_sequence
from robustbench_local.attacks.threat import AttackContractError
from torch import nn

from robustbench_local import Classifier, evaluate
from robustbench_local.gate import Rule, judge
from robustbench_local.models.classifier import frozen_mode

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def subset(digits_test):
    return digits_test.limit(24)


@pytest.fixture(scope="module")
def mlp():
    """3072-32-10 ReLU MLP trained for 60 full-batch Adam steps on the digits train split (fixed seed)."""
    from robustbench_local import load_data
    from robustbench_local.models.classifier import to_tensor

    train = load_data("builtin:digits", "train")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 32), nn.ReLU(), nn.Linear(32, 10))
    model = Classifier(net, 10, (0.0,) * 3, (1.0,) * 3, name="mlp")
    x, y = to_tensor(train.images), torch.from_numpy(train.labels.astype(np.int64))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _run(model, data, tmp_path, **options):
    return evaluate(model, data, suites=["attacks"], out=tmp_path, calibration_data=None, **options)


def _values(run, metric):
    m = run.metrics[(run.metrics.suite == "attacks") & (run.metrics.metric == metric)]
    return dict(zip(m.condition, m.value))


@pytest.mark.numerics
def test_eps_zero_is_exactly_clean_accuracy_and_sweep_is_monotone(digits_model, subset, tmp_path):
    run = _run(digits_model, subset, tmp_path, attack="pgd?steps=5", eps="0,1/255,4/255,8/255")
    robust = _values(run, "robust_acc")
    oracle = float((digits_model.predict(subset.images).argmax(1) == subset.labels).mean())
    assert robust["pgd?steps=5:Linf:0"] == oracle
    curve = [robust[f"pgd?steps=5:Linf:{e}"] for e in ("0", "1/255", "4/255", "8/255")]
    assert curve == sorted(curve, reverse=True) and curve[-1] < curve[0]
    rec = run.records.set_index(["condition", "sample_id"])
    small = rec.loc["pgd?steps=5:Linf:1/255"]
    large = rec.loc["pgd?steps=5:Linf:8/255"]
    broken = small.index[small.attack_success]
    # a break found at 1/255 is kept unchanged at 8/255 (it lies in the larger ball)
    assert (large.loc[broken, "broken_by"] == small.loc[broken, "broken_by"]).all()
    assert np.allclose(large.loc[broken, "perturbation_linf"], small.loc[broken, "perturbation_linf"])
    assert (run.records.perturbation_linf <= 8 / 255 + 1e-6).all()
    flags = run.metrics[run.metrics.metric.str.startswith("flag_")]
    assert (flags.value == 0).all(), flags


def test_stronger_attacks_give_lower_robust_accuracy(digits_model, subset, tmp_path):
    """FGSM >= PGD-10 >= PGD-50 >= AutoAttack on the built-in model (empirical, not a theorem)."""
    run = _run(digits_model, subset, tmp_path, attack="fgsm,pgd,pgd?steps=50,autoattack", eps="0.1")
    robust = _values(run, "robust_acc")
    order = [robust[f"{a}:Linf:0.1"] for a in ("fgsm", "pgd", "pgd?steps=50", "autoattack")]
    assert order == sorted(order, reverse=True), order
    assert order[0] > order[-1]
    rec = run.records
    assert (rec.perturbation_linf <= 0.1 + 1e-6).all()
    aa = rec[rec.condition == "autoattack:Linf:0.1"]
    assert set(aa.broken_by) <= {"", "clean", "apgd-ce", "apgd-t", "fab-t", "square"}
    # attack_success_rate = broken / clean-correct
    rate = _values(run, "attack_success_rate")["autoattack:Linf:0.1"]
    assert rate == pytest.approx(aa.attack_success.sum() / aa.clean_correct.sum())


def test_autoattack_agrees_with_the_original(mlp, subset):
    """Same points, Linf 0.06: the composite over torchattacks vs pyautoattack's standard AutoAttack."""
    from pyautoattack import AutoAttack

    from robustbench_local.models.classifier import to_tensor

    eps = 0.06
    state = PointState.from_clean(mlp.predict(subset.images), subset.labels)
    run_sequence(mlp, subset.read, subset.labels, subset.ids, parse_sequence("autoattack"), "Linf", eps, state,
                 (0, "aa"), 256)
    ours = float((state.clean_correct & ~state.broken).mean())
    x, y = to_tensor(subset.images).contiguous(), torch.from_numpy(subset.labels.astype(np.int64))
    _, y_adv = AutoAttack(mlp, eps=eps, norm="Linf", seed=0, version="standard").run_standard_evaluation(
        x, y, batch_size=256)
    original = float((y_adv == y).float().mean())
    assert 0 < original < 1, "pick an eps where the comparison is informative"
    assert abs(ours - original) <= 0.005, (ours, original)


@pytest.mark.numerics
def test_seeded_runs_are_reproducible(mlp, subset, tmp_path):
    a = _run(mlp, subset, tmp_path / "a", attack="pgd?steps=3", eps="0.05").records
    b = _run(mlp, subset, tmp_path / "b", attack="pgd?steps=3", eps="0.05").records
    assert a.equals(b)


@pytest.mark.parametrize("norm,eps", [("Linf", 0.05), ("L2", 1.0)])
def test_contract_violations_stop_the_run(digits_model, subset, monkeypatch, norm, eps):
    class Escape:
        def __init__(self, model, norm, eps, cfg, k):
            self.model, self.eps = model, eps

        def __call__(self, x, y, clean_logits, noise):
            x_adv = (x + 1.5 * self.eps).clamp(0, 1) if norm == "Linf" else x * 0 + 0.5
            return Outcome(x_adv, self.model(x_adv), torch.ones(len(x), dtype=torch.int64))

    monkeypatch.setattr(builders, "pgd", Escape)  # the registered target, resolved when the attack is built
    state = PointState.from_clean(digits_model.predict(subset.images), subset.labels)
    with pytest.raises(AttackContractError, match="pgd"):
        run_sequence(digits_model, subset.read, subset.labels, subset.ids, parse_sequence("pgd"), norm, eps, state,
                      (0, "t"), 64)


def test_model_mode_and_batchnorm_buffers_unchanged(digits_model, subset):
    model = copy.deepcopy(digits_model)
    with frozen_mode(model):
        clean = model.predict(subset.images)
    model.train()
    model.net.body[1].eval()  # a mixed-mode model must come back mixed
    modes = {name: m.training for name, m in model.named_modules()}
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    state = PointState.from_clean(clean, subset.labels)
    members = parse_sequence("pgd?steps=2+apgd-ce?steps=2+fab-t?steps=2&targets=2+cw?steps=2")
    run_sequence(model, subset.read, subset.labels, subset.ids, members, "L2", 0.5, state, (0, "t"), 16)
    assert {name: m.training for name, m in model.named_modules()} == modes
    for k, v in model.state_dict().items():
        assert torch.equal(v, buffers[k]), k
    assert (state.l2 <= 0.5 + 1e-6).all()


class _Noise(nn.Module):
    def forward(self, z):
        return z + torch.randn_like(z)


def _wrap(model: Classifier, head: nn.Module, name: str) -> Classifier:
    return Classifier(nn.Sequential(model.net, head), model.num_classes, tuple(model.mean.flatten().tolist()),
                      tuple(model.std.flatten().tolist()), name=name)


@pytest.mark.parametrize("head,flag", [(_Noise(), "flag_randomized"),
                                       (nn.Softmax(dim=1), "flag_probability_output")])
def test_sanity_flags_fire(digits_model, subset, tmp_path, head, flag):
    run = _run(_wrap(digits_model, head, flag), subset.limit(16), tmp_path, attack="fgsm", eps="0.03")
    assert _values(run, flag) == {"fgsm:Linf:0.03": 1.0}


def test_blackbox_and_sweep_flags(mlp, subset, tmp_path):
    run = _run(mlp, subset, tmp_path, attack="fgsm+square?queries=200", eps="0,1/255")
    flags = run.metrics[run.metrics.metric.str.startswith("flag_")]
    assert set(flags.metric) >= {"flag_blackbox_beats_gradient", "flag_eps_not_decreasing"}
    rec = run.records[run.records.condition == "fgsm+square?queries=200:Linf:1/255"]
    by_square = (rec.broken_by == "square").mean()
    assert (_values(run, "flag_blackbox_beats_gradient")["fgsm+square?queries=200:Linf:1/255"]
            == float(by_square > 0.002))


def test_ratio_metrics_count_their_denominator():
    """`n` of a ratio is the number of points its denominator counts: attack_success_rate = broken / clean-correct
    counts the clean-correct points, zero_grad_share the points the gradient check looked at."""
    from robustbench_local.attacks.suite import SUITE

    from robustbench_local.records import classification_records

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 20)
    clean = np.arange(20) < 12  # 12 clean-correct points, 5 of them broken
    broken = np.arange(20) < 5
    logits = np.eye(10)[np.where(broken | ~clean, (labels + 1) % 10, labels)] * 5
    records = classification_records(
        logits, labels, np.array([f"s{i}" for i in range(20)]), clean_correct=clean, attack_success=broken,
        broken_by=np.where(broken, "pgd", np.where(clean, "", "clean")), perturbation_linf=np.full(20, 0.01),
        perturbation_l2=np.full(20, 0.1), queries=np.zeros(20, int))
    records.info = {"checks": {"randomized": False, "max_logit_change": 0.0, "probability_output": False,
                               "zero_grad_share": 0.0, "zero_grad_points": 12}, "kinds": [["pgd", "gradient"]]}
    rows = {r["metric"]: r for r in SUITE.metrics(records, None, (0, "ratios"))}
    assert rows["attack_success_rate"]["value"] == pytest.approx(5 / 12) and rows["attack_success_rate"]["n"] == 12
    assert rows["robust_acc"]["value"] == pytest.approx(7 / 20) and rows["robust_acc"]["n"] == 20
    assert rows["clean_acc"]["n"] == 20 and rows["acc"]["n"] == 20
    assert rows["zero_grad_share"]["n"] == 12


def test_gradient_check_reports_how_many_points_it_checked(digits_model, subset):
    from robustbench_local.attacks.checks import CHECK_POINTS, model_checks

    correct = digits_model.predict(subset.images).argmax(1) == subset.labels
    checks = model_checks(digits_model, subset.read, subset.labels, correct)
    assert checks["zero_grad_points"] == min(CHECK_POINTS, int(correct.sum()))
    none = model_checks(digits_model, subset.read, subset.labels, np.zeros(len(subset), bool))
    assert none["zero_grad_points"] == 0 and np.isnan(none["zero_grad_share"])


def test_eps_zero_rows_are_the_clean_suites_number_and_gate_rules_on_them_work(digits_model, subset, tmp_path):
    """At ε = 0 the attack suite's records are the shard's clean logits (no second model pass): acc, robust_acc and
    clean_acc there are the clean suite's acc, bit for bit, and a gate rule on the ε = 0 row judges that number."""
    run = evaluate(digits_model, subset, suites=["clean", "attacks"], out=tmp_path, calibration_data=None,
                   attack="pgd?steps=2", eps="0,4/255")
    assert run.task("attacks", "pgd?steps=2:Linf:0").logits.tobytes() == run.task("clean", "clean").logits.tobytes()
    m = run.metrics.set_index(["suite", "condition", "metric"]).value
    clean = m["clean", "clean", "acc"]
    for metric in ("acc", "robust_acc", "clean_acc"):
        assert m["attacks", "pgd?steps=2:Linf:0", metric] == clean
    assert m["attacks", "pgd?steps=2:Linf:4/255", "clean_acc"] == clean
    rules = [Rule(metric="robust_acc", suite="attacks", condition="pgd?steps=2:Linf:0", min=0.5),
             Rule(metric="robust_acc", suite="attacks", condition="pgd?steps=2:Linf:0", max_drop=0.01)]
    verdicts = judge(run, run, rules)
    assert [v.passed for v in verdicts] == [True, True] and {v.candidate for v in verdicts} == {clean}
