"""Threat-model parsing, the adversarial-example contract and the attack registry (no model runs)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from robustbench_local.attacks.entries import COMPOSITES
from robustbench_local.attacks.registry import check_norm, describe, parse_sequence, restarts
from robustbench_local.attacks.threat import AttackContractError, parse_eps, parse_norm, perturbation_norms, verify_examples

from robustbench_local.errors import RBLError, SpecError
from robustbench_local.registry import ATTACKS


def test_parse_eps_accepts_fractions_and_decimals():
    assert parse_eps("8/255") == 8 / 255
    assert parse_eps(" 0.5 ") == 0.5
    assert parse_eps("0") == 0.0
    for bad in ("-1/255", "x", "1/0", "inf"):
        with pytest.raises(SpecError):
            parse_eps(bad)


def test_parse_norm():
    assert parse_norm("linf") == "Linf" and parse_norm("L2") == "L2" and parse_norm("2") == "L2"
    with pytest.raises(SpecError):
        parse_norm("L1")


def test_perturbation_norms_match_numpy():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 5, 5, generator=gen)
    x_adv = (x + 0.01 * torch.randn(4, 3, 5, 5, generator=gen)).clamp(0, 1)
    linf, l2 = perturbation_norms(x_adv, x)
    delta = (x_adv.numpy().astype(np.float64) - x.numpy()).reshape(4, -1)
    np.testing.assert_allclose(linf, np.abs(delta).max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(l2, np.sqrt((delta ** 2).sum(axis=1)), rtol=1e-6)


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_verify_rejects_examples_outside_the_ball_or_the_box(norm):
    x = torch.full((2, 3, 4, 4), 0.5)
    ids = np.array(["a", "b"])
    eps = 0.1
    inside = x.clone()
    inside[1, 0, 0, 0] += eps  # exactly on the sphere in both norms
    verify_examples(inside, x, norm, eps, "t", ids)
    outside = x.clone()
    outside[1, 0, 0, 0] += eps + 1e-4
    with pytest.raises(AttackContractError, match="sample b"):
        verify_examples(outside, x, norm, eps, "t", ids)
    box = torch.zeros_like(x)
    box[0, 0, 0, 0] = -1e-3
    with pytest.raises(AttackContractError, match=r"outside \[0, 1\]"):
        verify_examples(box, torch.zeros_like(x), norm, eps, "t", ids)
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(AttackContractError, match="non-finite"):
        verify_examples(nan, x, norm, eps, "t", ids)
    assert issubclass(AttackContractError, RBLError)


def test_autoattack_expands_to_the_original_standard_version():
    members = parse_sequence("autoattack")
    assert [m.name for m in members] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    cfg = {m.name: m.config for m in members}
    assert cfg["apgd-ce"]["steps"] == 100 and cfg["apgd-ce"]["restarts"] == 1
    assert cfg["apgd-t"]["steps"] == 100 and cfg["apgd-t"]["targets"] == 9
    assert cfg["fab-t"]["steps"] == 100 and cfg["fab-t"]["targets"] == 9
    assert cfg["square"]["queries"] == 5000
    rand = parse_sequence("autoattack-rand")
    assert [(m.name, m.config["eot_iter"]) for m in rand] == [("apgd-ce", 20), ("apgd-dlr", 20)]
    fast = parse_sequence("aa-fast")
    assert [m.name for m in fast] == ["apgd-ce", "apgd-malt"]
    assert fast[1].config == {"steps": 100, "restarts": 1, "targets": 9, "candidates": 100, "rho": 0.75, "eot_iter": 1}
    assert parse_sequence("aa-fast?targets=3&steps=20")[1].config["targets"] == 3


def test_settings_overrides_and_errors():
    (pgd,) = parse_sequence("pgd?steps=50&step_size=1/255")
    assert pgd.config["steps"] == 50 and pgd.config["step_size"] == 1 / 255
    seq = parse_sequence("fgsm+pgd", {"steps": 7, "restarts": 3})
    assert "steps" not in seq[0].config and seq[1].config["steps"] == 7
    assert restarts(seq[0]) == 1 and restarts(seq[1]) == 3  # FGSM is deterministic
    assert parse_sequence("pgd?steps=50", {"steps": 7})[0].config["steps"] == 50  # the item's own setting wins
    for bad in ("nope", "pgd?stepz=3", "pgd?steps=-1", "pgd?steps", "pgd?targeted=maybe", "autoattack?foo=1", ""):
        with pytest.raises(SpecError):
            parse_sequence(bad)
    with pytest.raises(SpecError, match="L2 only"):
        check_norm(parse_sequence("cw"), "Linf", "cw")
    assert all(set(entry.meta) >= set(ATTACKS.meta_keys) for entry in ATTACKS.entries())
    assert {name for name, _ in describe()} == {*ATTACKS, *COMPOSITES} >= {"autoattack", "autoattack-rand", "aa-fast"}


def test_dlr_attacks_refuse_too_few_classes():
    from robustbench_local.attacks.registry import build_attack
    from torch import nn

    (member,) = parse_sequence("apgd-t")
    with pytest.raises(SpecError, match="at least 4 classes"):
        build_attack(member, nn.Linear(2, 3), "Linf", 0.1, 3)


def test_sweep_flag_fires_on_rising_or_implausibly_flat_curves():
    from robustbench_local.attacks.checks import sweep_flag

    assert sweep_flag([(0, 0.9), (2 / 255, 0.8), (8 / 255, 0.85)], "Linf") == 1  # rises
    assert sweep_flag([(0, 0.98), (8 / 255, 0.98)], "Linf") == 0  # flat at small radii: a robust model
    assert sweep_flag([(0, 0.98), (0.3, 0.98)], "Linf") == 1  # no drop at all up to 0.3: gradient masking
    assert sweep_flag([(0, 0.9), (0.5, 0.2), (1.0, 0.0)], "L2") == 0
