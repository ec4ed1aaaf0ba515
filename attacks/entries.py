"""The built-in attacks and composites, declared as plain data (this module imports nothing heavy).

An attack entry's `meta`: `norms` it supports, `kind` ("gradient": the model's own input gradient, "bpda": a
surrogate's gradient with the model's logits, "transfer": another model's gradient, "black-box": logits only),
`random` (restarts only make sense for attacks with random starts), `minimum_norm` (its examples may land outside
the ball: counted only within eps), `min_classes` (e.g. DLR needs >= 3 logits), and `defaults`, the protocol
settings of the literature (the one place they are written; a spec's `?key=value` may override each). The target is a builder
`build(model, norm, eps, config, num_classes) -> AttackFn` (see attacks/base.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustbench_local.registry import Entry
from robustbench_local.suites import SuiteOption, suite_entry

BUILDERS = "robustbench_local.attacks.builders"


def attack(name: str, builder: str, description: str, reference: str, norms: tuple[str, ...], kind: str = "gradient",
           random: bool = True, minimum_norm: bool = False, min_classes: int = 2, **defaults: Any) -> Entry:
    """An attack entry (the keyword arguments after `min_classes` are its default settings)."""
    return Entry(name, builder, description, reference, {"norms": norms, "kind": kind, "random": random,
                                                         "minimum_norm": minimum_norm, "min_classes": min_classes,
                                                         "defaults": defaults})


APGD = {"steps": 100, "restarts": 1, "rho": 0.75, "eot_iter": 1}
ATTACKS = (
    attack("fgsm", f"{BUILDERS}:fgsm", "FGSM, one signed-gradient step of size eps", "Goodfellow et al. 2015",
           ("Linf",), random=False, targeted="none"),
    attack("pgd", f"{BUILDERS}:pgd", "PGD with random start, step 2.5*eps/steps; a point stops once fooled",
           "Madry et al. 2018", ("Linf", "L2"), steps=10, step_size="auto", restarts=1, targeted="none"),
    attack("cw", f"{BUILDERS}:cw", "Carlini-Wagner L2 (fixed c, no binary search); counts only examples within eps",
           "Carlini & Wagner 2017 (torchattacks' CW with more steps)", ("L2",), random=False, minimum_norm=True,
           steps=100, c=1.0, kappa=0.0, lr=0.01, targeted="none"),
    attack("apgd-ce", f"{BUILDERS}:apgd_ce", "APGD on cross-entropy", "Croce & Hein 2020", ("Linf", "L2"), **APGD),
    attack("apgd-dlr", f"{BUILDERS}:apgd_dlr", "APGD on the DLR loss (needs >= 3 classes)", "Croce & Hein 2020",
           ("Linf", "L2"), min_classes=3, **APGD),
    attack("apgd-t", f"{BUILDERS}:apgd_t", "APGD on targeted DLR, the top-9 (or K-1) classes as targets",
           "Croce & Hein 2020", ("Linf", "L2"), min_classes=4, steps=100, restarts=1, targets=9, rho=0.75,
           eot_iter=1),
    attack("apgd-malt", f"{BUILDERS}:apgd_malt", "APGD on targeted DLR towards MALT's targets: the classes t with the "
           "smallest (z_y - z_t) / ||grad z_y - grad z_t||_* among the top candidates, nearest first (9 targets of "
           "100 candidates, the authors' released setting)",
           "Melamed, Yehudai & Shamir 2024", ("Linf", "L2"), min_classes=4, steps=100, restarts=1, targets=9,
           candidates=100, rho=0.75, eot_iter=1),
    attack("fab-t", f"{BUILDERS}:fab_t", "targeted FAB, the top-9 (or K-1) classes as targets", "Croce & Hein 2020",
           ("Linf", "L2"), steps=100, restarts=1, targets=9, alpha_max=0.1, eta=1.05, beta=0.9),
    attack("square", f"{BUILDERS}:square", "Square attack, score-based black box, 5000 queries",
           "Andriushchenko et al. 2020", ("Linf", "L2"), kind="black-box", queries=5000, restarts=1, p_init=0.8),
    attack("bpda-apgd-ce", f"{BUILDERS}:bpda_apgd_ce", "APGD-CE through the straight-through (BPDA) surrogate: the "
           "model's own logits forward, its fake-quantised float copy's gradient backward (int8 models; plain "
           "APGD-CE on a differentiable model)", "Athalye, Carlini & Wagner 2018", ("Linf", "L2"), kind="bpda",
           **APGD),
    attack("transfer-apgd-ce", f"{BUILDERS}:transfer_apgd_ce", "APGD-CE on the float original, its examples judged "
           "by the model's own logits (int8 models; plain APGD-CE on a differentiable model)",
           "Papernot et al. 2016; Tramèr et al. 2017", ("Linf", "L2"), kind="transfer", **APGD),
)


@dataclass(frozen=True)
class Composite:
    """A named attack sequence and where it comes from."""

    members: tuple[tuple[str, dict[str, Any]], ...]
    summary: str


COMPOSITES: dict[str, Composite] = {
    "autoattack": Composite((("apgd-ce", {}), ("apgd-t", {}), ("fab-t", {}), ("square", {})),
                            "original AutoAttack, standard version (Croce & Hein 2020)"),
    "autoattack-rand": Composite((("apgd-ce", {"eot_iter": 20}), ("apgd-dlr", {"eot_iter": 20})),
                                 "original AutoAttack, rand version for stochastic models (Croce & Hein 2020)"),
    "aa-fast": Composite((("apgd-ce", {}), ("apgd-malt", {})),
                         "fast protocol: APGD-CE, then APGD-T on MALT's targets, no FAB-T or Square (Melamed, "
                         "Yehudai & Shamir 2024, 'MALT Powers Up Adversarial Attacks')"),
    "int8-robust": Composite((("bpda-apgd-ce", {}), ("transfer-apgd-ce", {}), ("square", {})),
                             "models without a useful input gradient (int8): BPDA through the fake-quantised "
                             "surrogate, transfer from the float original, then Square (Athalye et al. 2018; "
                             "Papernot et al. 2016; Andriushchenko et al. 2020); on a float model APGD-CE twice and "
                             "Square, so an original and its int8 copy get the same protocol"),
}


SUITE_MODULE = "robustbench_local.attacks.suite"
SUITE_OPTIONS = (
    SuiteOption("attack", "attack(s), comma-separated; A+B = one worst-case sequence; NAME?key=value sets a parameter "
                "(see `rbl list attacks`)", "pgd", f"{SUITE_MODULE}:parse_attacks"),
    SuiteOption("norm", "threat model norm(s): Linf, L2", "Linf", f"{SUITE_MODULE}:parse_norms"),
    SuiteOption("eps", "radii in pixel units, fractions allowed: Linf in [0, 1]; L2 (the norm of the whole "
                "perturbation) may exceed 1", "0,1/255,2/255,4/255,8/255", f"{SUITE_MODULE}:parse_eps_list"),
    SuiteOption("steps", "override the iterations of every attack that has them", "default",
                f"{SUITE_MODULE}:optional_int"),
    SuiteOption("restarts", "override the random restarts of every attack that has them", "default",
                f"{SUITE_MODULE}:optional_int"),
)
SUITE = suite_entry("attacks", f"{SUITE_MODULE}:SUITE", "robust accuracy under attacks (fgsm, pgd, cw, apgd-*, fab-t, "
                    "square, autoattack, transfer and BPDA for int8 models), per-point worst case, eps sweeps, "
                    "calibration under attack, sanity flags",
                    SUITE_OPTIONS, "Croce et al. 2021 (RobustBench)")
