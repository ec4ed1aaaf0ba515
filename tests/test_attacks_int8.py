"""Attacks on int8 models: the fake-quantised surrogate computes the int8 function, BPDA and transfer examples are
judged by the int8 model's own logits, the composite `int8-robust` is the per-point worst case of its three
attacks, its records do not depend on the batch size, and the masking flags fire on an int8 model attacked by its
own (zero) gradient alone but not on the float original. Small subsets of the digits, few steps."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from foundation_helpers import run_rbl
from robustbench_local.attacks.checks import BPDA_SHARE, condition_flags
from robustbench_local.attacks.engine import PointState, run_sequence
from robustbench_local.attacks.noise import PointNoise
from robustbench_local.attacks.registry import build_attack, parse_sequence
from robustbench_local.attacks.transfer import StraightThrough

from robustbench_local import Classifier, evaluate, load_data, load_model
from robustbench_local.errors import ModelError
from robustbench_local.models.classifier import to_tensor
from robustbench_local.models.compress import calibration_batches, compress, save_compressed

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EPS = 8 / 255
QUICK = "steps=5&queries=60"  # settings of int8-robust's members small enough for a test


@pytest.fixture(scope="module")
def int8_models(digits_model):
    """The built-in CNN quantised both ways (static calibrated on 128 val images), on the CPU."""
    float_model = digits_model.cpu()
    calibration = calibration_batches(load_data("builtin:digits", "val"), 128)
    return {"int8-static": compress(float_model, "int8-static", calibration=calibration),
            "int8-dynamic": compress(float_model, "int8-dynamic")}


@pytest.fixture(scope="module")
def points(digits_test):
    subset = digits_test.limit(24)
    return subset, to_tensor(subset.images), torch.from_numpy(subset.labels.astype(np.int64))


def _noise(ids, position=0, name="attack"):
    return PointNoise((0, "test", position, name, 0), ids)


@pytest.mark.parametrize("method", ["int8-static", "int8-dynamic"])
def test_int8_is_a_property_of_the_network_and_its_gradient_is_zero(int8_models, digits_model, points, method):
    model, (_, x, y) = int8_models[method], points
    assert model.int8 and not digits_model.int8 and not model.proxies.surrogate.get().int8
    xg = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xg), y), xg)
    assert torch.count_nonzero(grad) == 0  # the int8 function is piecewise constant: d/dx = 0, not an error
    xg = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(torch.nn.functional.cross_entropy(model.proxies.surrogate.get()(xg), y), xg)
    assert (grad.flatten(1).abs().amax(dim=1) > 0).all()


@pytest.mark.parametrize("method", ["int8-static", "int8-dynamic"])
def test_surrogate_forward_is_the_int8_models_function_on_clean_data(int8_models, digits_test, method):
    """Predictions agree on the whole test split; logits within one step of the output quantiser (static; fbgemm
    requantises each integer accumulator with its own rounding, so a value on a rounding tie may land one level
    away) or within float rounding of the int8 products (dynamic: the output stays float)."""
    model = int8_models[method]
    surrogate = model.proxies.surrogate.get()
    exact, approx = model.predict(digits_test.images), surrogate.predict(digits_test.images)
    assert (exact.argmax(1) == approx.argmax(1)).mean() >= 0.99
    if method == "int8-static":
        output = next(n for n in surrogate.net.graph.nodes if n.op == "output").args[0]
        step = surrogate.net.get_submodule(output.target).scale.item()  # the output quantiser's level spacing
        assert np.abs(exact - approx).max() <= step * (1 + 1e-4)
    else:
        assert np.abs(exact - approx).max() <= 0.05 * np.abs(exact).max() / 127


def test_straight_through_has_the_int8_values_and_the_surrogates_gradient(int8_models, points):
    model, x = int8_models["int8-static"], points[1]
    surrogate = model.proxies.surrogate.get()
    xg = x.clone().requires_grad_(True)
    out = StraightThrough(model, surrogate)(xg)
    assert torch.equal(out.detach(), model(x))
    grad, = torch.autograd.grad(out.sum(), xg)
    xs = x.clone().requires_grad_(True)
    expected, = torch.autograd.grad(surrogate(xs).sum(), xs)
    assert torch.equal(grad, expected)


@pytest.mark.parametrize("name", ["transfer-apgd-ce", "bpda-apgd-ce"])
def test_examples_are_judged_by_the_int8_models_own_logits(int8_models, points, name):
    model, (subset, x, y) = int8_models["int8-static"], points
    member, = parse_sequence(f"{name}?steps=5")
    attack = build_attack(member, model, "Linf", EPS, model.num_classes)
    with torch.no_grad():
        clean = model(x)
    outcome = attack(x, y, clean, _noise(subset.ids))
    with torch.no_grad():
        assert torch.equal(outcome.logits, model(outcome.x_adv))
        source = model.proxies.source.get()(outcome.x_adv)
    assert (outcome.x_adv - x).abs().max() <= EPS + 1e-6
    assert not torch.equal(outcome.logits, source)  # not the float original's logits (transfer ran on those)
    assert (outcome.queries > 0).all()


def test_int8_robust_is_the_per_point_worst_case_of_its_three_attacks(int8_models, points):
    """Oracle: each member run alone on every clean-correct point with the stream the engine gives it at its
    position; a point is robust under the sequence exactly when none of the three broke it."""
    model, (subset, x, y) = int8_models["int8-static"], points
    members = parse_sequence(f"int8-robust?{QUICK}")
    clean = model.predict(subset.images)
    state = run_sequence(model, subset.read, subset.labels, subset.ids, members, "Linf", EPS,
                         PointState.from_clean(clean, subset.labels), (0, "worst"), 8)
    correct = clean.argmax(1) == subset.labels
    rows = np.flatnonzero(correct)
    broken_by = {}
    for position, member in enumerate(members):
        attack = build_attack(member, model, "Linf", EPS, model.num_classes)
        outcome = attack(x[rows], y[rows], torch.from_numpy(clean[rows]),
                         PointNoise((0, "worst", position, member.name, 0), subset.ids[rows]))
        broken_by[member.name] = np.zeros(len(subset), bool)
        broken_by[member.name][rows] = (outcome.logits.argmax(1) != y[rows]).numpy()
    any_broken = np.logical_or.reduce(list(broken_by.values()))
    assert np.array_equal(state.active, correct & ~any_broken)
    robust = (correct & ~any_broken).mean()
    assert all(robust <= (correct & ~b).mean() for b in broken_by.values())
    assert set(state.broken_by[state.broken]) <= set(broken_by)


def test_int8_robust_records_do_not_depend_on_the_batch_size(int8_models, points):
    model, (subset, _, _) = int8_models["int8-dynamic"], points
    members = parse_sequence(f"int8-robust?{QUICK}")
    clean = model.predict(subset.images)
    states = [run_sequence(model, subset.read, subset.labels, subset.ids, members, "Linf", EPS,
                           PointState.from_clean(clean, subset.labels), (0, "batch"), size) for size in (5, 24)]
    for name in ("logits", "broken_by", "linf", "queries"):
        assert np.array_equal(getattr(states[0], name), getattr(states[1], name)), name


def _flags(run):
    m = run.metrics[(run.metrics.suite == "attacks") & run.metrics.metric.str.startswith("flag_")]
    return {(c.split(":")[0], k): v for c, k, v in zip(m.condition, m.metric, m.value, strict=True)}


def test_masking_flags_fire_on_int8_attacked_by_its_gradient_alone_not_on_the_float_model(
        int8_models, digits_model, points, tmp_path, capsys):
    subset = points[0].limit(16)
    attacks = f"apgd-ce?steps=5,int8-robust?{QUICK}"
    runs = {name: evaluate(model, subset, suites=["attacks"], out=tmp_path / name, calibration_data=None,
                           attack=attacks, eps="8/255", quiet=name == "float")
            for name, model in (("int8", int8_models["int8-static"]), ("float", digits_model.cpu()))}
    warning = next(line for line in capsys.readouterr().err.splitlines() if "sanity flag(s) fired" in line)
    assert "apgd-ce?steps=5:Linf:8/255" in warning and "--attack int8-robust" in warning
    int8, flt = _flags(runs["int8"]), _flags(runs["float"])
    assert int8[("apgd-ce?steps=5", "flag_int8_gradient_only")] == 1
    assert int8[("apgd-ce?steps=5", "flag_zero_gradients")] == 1
    assert flt[("apgd-ce?steps=5", "flag_int8_gradient_only")] == 0
    assert flt[("apgd-ce?steps=5", "flag_zero_gradients")] == 0
    robust = f"int8-robust?{QUICK}"
    assert int8[(robust, "flag_int8_gradient_only")] == 0 and int8[(robust, "flag_zero_gradients")] == 0
    assert (robust, "flag_bpda_weaker") in int8 and (robust, "flag_blackbox_beats_gradient") not in int8


def _checks(int8: bool = False, zero_share: float = 0.0) -> dict:
    return {"randomized": False, "probability_output": False, "zero_grad_share": zero_share, "int8": int8}


@pytest.mark.parametrize("later,fires", [(0, 0), (2, 0), (3, 1)])
def test_bpda_weaker_fires_when_transfer_or_square_after_bpda_break_more_than_the_share(later, fires):
    """100 points; BPDA broke 40, transfer/Square broke `later` after it: the flag fires above BPDA_SHARE (2%)."""
    kinds = [("bpda-apgd-ce", "bpda"), ("transfer-apgd-ce", "transfer"), ("square", "black-box")]
    broken_by = np.array(["bpda-apgd-ce"] * 40 + ["square"] * (later - later // 2) + ["transfer-apgd-ce"] *
                         (later // 2) + [""] * (60 - later))
    flags = condition_flags(_checks(int8=True, zero_share=1.0), broken_by, kinds, 0.5, 0.5, 0.9)
    assert flags["bpda_weaker"] == fires == int(later / 100 > BPDA_SHARE)
    assert flags["int8_gradient_only"] == 0 and flags["zero_gradients"] == 0  # no attack used the int8 gradient
    assert "blackbox_beats_gradient" not in flags


def test_gradient_only_flags_follow_what_the_sequence_uses():
    only_gradient = [("apgd-ce", "gradient"), ("pgd", "gradient")]
    broken = np.array([""] * 10)
    assert condition_flags(_checks(True, 1.0), broken, only_gradient, 0.9, 0.9, 0.9)["int8_gradient_only"] == 1
    assert condition_flags(_checks(False, 0.0), broken, only_gradient, 0.9, 0.9, 0.9)["int8_gradient_only"] == 0
    with_square = [*only_gradient, ("square", "black-box")]
    flags = condition_flags(_checks(True, 1.0), broken, with_square, 0.9, 0.9, 0.9)
    assert flags["int8_gradient_only"] == 0 and flags["zero_gradients"] == 1
    assert "bpda_weaker" not in flags


def test_int8_directory_carries_its_source_and_surrogate(int8_models, digits_model, points, tmp_path):
    model, (_, x, _) = int8_models["int8-static"], points
    save_compressed(model, tmp_path, {"method": "int8-static", "source": "builtin:digits-cnn",
                                      "arch": "builtin:digits-cnn", "source_fingerprint": digits_model.fingerprint})
    loaded = load_model(str(tmp_path), device="cpu")
    assert loaded.int8 and loaded.proxies.source.loaded is None  # nothing loaded until an attack asks
    with torch.no_grad():
        assert torch.equal(loaded.proxies.surrogate.get()(x), model.proxies.surrogate.get()(x))
    assert loaded.proxies.source.get().fingerprint == digits_model.fingerprint
    copy = pickle.loads(pickle.dumps(loaded))  # how a worker process gets it: the program reloaded from its file
    assert copy.proxies.source.loaded is None and copy.fingerprint == loaded.fingerprint
    with torch.no_grad():
        assert torch.equal(copy(x), loaded(x))
        assert torch.equal(copy.proxies.surrogate.get()(x), loaded.proxies.surrogate.get()(x))
    card = json.loads((tmp_path / "card.json").read_text())
    (tmp_path / "card.json").write_text(json.dumps({**card, "source_fingerprint": "0" * 64}))
    stale = load_model(str(tmp_path), device="cpu")
    member, = parse_sequence("transfer-apgd-ce")
    with pytest.raises(ModelError, match="is not the model that was compressed"):
        build_attack(member, stale, "Linf", EPS, 10)
    (tmp_path / "card.json").write_text(json.dumps({k: v for k, v in card.items() if k != "surrogate"}))
    member, = parse_sequence("bpda-apgd-ce")
    with pytest.raises(ModelError, match="carries no fake-quantised surrogate"):
        build_attack(member, load_model(str(tmp_path), device="cpu"), "Linf", EPS, 10)


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "int8"
    outcome = run_rbl("compress", "builtin:digits-cnn", "--method", "int8-static", "--data", "builtin:digits",
                      "--calibration-size", "64", "--out", str(out))
    assert outcome.exit_code == 0, outcome.stderr
    return out


def test_attacks_suite_on_an_int8_directory_from_the_command_line(int8_dir, tmp_path):
    run = tmp_path / "run"
    outcome = run_rbl("evaluate", str(int8_dir), "--data", "builtin:digits", "--suite", "attacks", "--attack",
                      "apgd-ce,int8-robust?queries=60", "--steps", "5", "--eps", "8/255", "--limit", "60",
                      "--out", str(run))
    assert outcome.exit_code == 0, outcome.stderr
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    value = {(r[3], r[4]): float(r[5]) for r in rows[1:] if r[2] == "attacks" and r[5]}
    robust = "int8-robust?queries=60 steps=5:Linf:8/255"
    assert value[(robust, "robust_acc")] <= value[("apgd-ce steps=5:Linf:8/255", "robust_acc")]
    assert value[("apgd-ce steps=5:Linf:8/255", "flag_int8_gradient_only")] == 1
    assert value[(robust, "flag_int8_gradient_only")] == 0 and value[(robust, "flag_bpda_weaker")] in (0, 1)


def test_ood_suite_on_an_int8_directory_skips_gradient_and_feature_detectors(int8_dir, tmp_path):
    run = tmp_path / "run"
    outcome = run_rbl("evaluate", str(int8_dir), "--data", "builtin:digits", "--suite", "ood", "--detectors",
                      "msp,energy,odin,knn", "--ood-data", "builtin:ood-noise-uniform", "--limit", "40",
                      "--out", str(run))
    assert outcome.exit_code == 0, outcome.stderr  # (the skipped ones get a notice; --quiet hides it here)
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    scored = {r[3].split(":")[1] for r in rows[1:] if r[2] == "ood" and r[4] == "auroc"}
    assert scored == {"msp", "energy"}


class _NoGrad(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.fc(x.flatten(1))


def test_a_float_forward_that_leaves_autograd_is_still_refused(points):
    """Only int8 networks get their (zero) gradient; another network that drops autograd is a one-line error."""
    model = Classifier(_NoGrad(), 10, (0.0,) * 3, (1.0,) * 3, name="nograd")
    assert not model.int8
    with pytest.raises(ModelError, match="passes no gradient back to its input .*--attack square"):
        model(points[1].clone().requires_grad_(True))
