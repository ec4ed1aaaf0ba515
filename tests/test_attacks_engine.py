"""The attack implementations against independent oracles: MALT's targets on a linear model (where the linearised
distance is exact), APGD against the reference implementation (pyautoattack) from the same start, records that do not
depend on the batch size, and counted model passes against a hook on the network."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from robustbench_local.attacks.apgd import APGD, malt_targets
from robustbench_local.attacks.engine import PointState, run_sequence
from robustbench_local.attacks.registry import parse_sequence
from torch import nn

from robustbench_local import Classifier, evaluate, load_model
from robustbench_local.models.classifier import to_tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def robust_model():
    return load_model("builtin:digits-cnn-at")


def linear_model() -> Classifier:
    """z = W x + b on 3-pixel images (one pixel per channel), 5 classes; at x = 0 the logits are b."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 5))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[0.0, 0.0, 0.0],    # y = 0
                                          [0.5, 0.0, 0.0],    # gap 0.5: L1 0.5 -> 1.0,   L2 0.5 -> 1.0
                                          [4.0, 0.0, 0.0],    # gap 1.0: L1 4   -> 0.25,  L2 4   -> 0.25
                                          [3.0, 3.0, 3.0],    # gap 2.0: L1 9   -> 0.222, L2 5.196 -> 0.385
                                          [0.0, 0.0, 6.0]]))  # gap 2.5: L1 6   -> 0.417, L2 6   -> 0.417
        net[1].bias.copy_(torch.tensor([3.0, 2.5, 2.0, 1.0, 0.5]))
    return Classifier(net, 5, (0.0,) * 3, (1.0,) * 3, name="linear")


@pytest.mark.parametrize("norm,candidates,count,expected", [
    ("Linf", 100, 4, [3, 2, 4, 1]),  # by (z_y - z_t) / ||w_y - w_t||_1; logit rank would be 1, 2, 3, 4
    ("L2", 100, 4, [2, 3, 4, 1]),    # by (z_y - z_t) / ||w_y - w_t||_2
    ("Linf", 2, 2, [2, 1]),          # only the two largest logits (classes 1, 2) are candidates
    ("Linf", 100, 2, [3, 2]),
])
def test_malt_targets_order_classes_by_the_linearised_distance(norm, candidates, count, expected):
    model = linear_model()
    x, y = torch.zeros(1, 3, 1, 1), torch.tensor([0])
    targets, queries = malt_targets(model, x, y, norm, candidates, count)
    assert targets.tolist() == [expected]
    assert queries.tolist() == [1 + min(candidates, 4)]  # one forward, one backward per candidate


def test_malt_distance_is_the_exact_distance_to_the_boundary_of_a_linear_model():
    """The Linf step of size d (the estimate for the first target, 2/9) along sign(w_t - w_y) reaches the y/t
    boundary exactly: a hair less keeps y, a hair more flips to t."""
    model = linear_model()
    x, y = torch.zeros(1, 3, 1, 1), torch.tensor([0])
    (target,), _ = malt_targets(model, x, y, "Linf", 100, 1)
    w = model.net[1].weight.detach()
    direction = torch.sign(w[int(target)] - w[0]).view(1, 3, 1, 1)
    for scale, flips in ((1 - 1e-4, False), (1 + 1e-4, True)):
        logits = model(x + scale * 2 / 9 * direction)
        assert bool(logits[0, int(target)] > logits[0, 0]) is flips


@pytest.mark.parametrize("norm,eps,loss", [("Linf", 0.15, "ce"), ("Linf", 0.15, "dlr-targeted"), ("L2", 1.5, "ce"),
                                           ("L2", 1.5, "dlr"), ("L2", 1.5, "dlr-targeted")])
def test_apgd_follows_the_reference_implementation_from_the_same_start(robust_model, digits_test, norm, eps, loss):
    """pyautoattack's APGD single run and ours, started from the same noise: the same points are fooled and the
    unbroken points end at the same best iterate (ours drops fooled points early, which changes nothing else)."""
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    data = digits_test.limit(32)
    x, y = to_tensor(data.images).contiguous(), torch.from_numpy(data.labels.astype(np.int64))
    with torch.no_grad():
        logits = robust_model(x)
    keep = logits.argmax(1) == y
    x, y, logits = x[keep], y[keep], logits[keep]
    target = logits.argsort(dim=1)[:, -2] if loss == "dlr-targeted" else None
    if target is None:
        reference = APGDAttack(robust_model, n_iter=20, norm=norm, eps=eps, loss=loss, seed=0, device="cpu")
    else:
        reference = APGDAttack_targeted(robust_model, n_iter=20, norm=norm, eps=eps, seed=0, device="cpu")
        reference.y_target = target
    reference.init_hyperparam(x)
    torch.manual_seed(0)
    x_best, robust, _, _ = reference.attack_single_run(x, y)
    torch.manual_seed(0)
    direction = 2 * torch.rand(x.shape) - 1 if norm == "Linf" else torch.randn(x.shape)
    ours = APGD(robust_model, norm, eps, 20, loss).run(x, y, direction, target)
    assert ((ours.logits.argmax(1) == y) == robust).all()
    assert 0 < int(robust.sum()) < len(y), "pick an eps where some points break and some do not"
    torch.testing.assert_close(ours.x_adv[robust], x_best[robust], rtol=0, atol=1e-6)
    # unbroken points received every pass: 21 forward and 21 backward
    assert (ours.queries[robust] == 42).all() and (ours.queries[~robust] < 42).all()


BATCH_ATTACKS = ("pgd?steps=5,apgd-ce?steps=5,apgd-dlr?steps=5,apgd-t?steps=3&targets=2,aa-fast?steps=3&targets=2,"
                 "square?queries=40,fab-t?steps=3&targets=2,fgsm?targeted=random")


@pytest.mark.numerics
@pytest.mark.parametrize("norm,eps", [("Linf", "0.15"), ("L2", "1.5")])
def test_records_do_not_depend_on_the_batch_size(robust_model, digits_test, tmp_path, norm, eps):
    attacks = BATCH_ATTACKS if norm == "Linf" else BATCH_ATTACKS.replace(",fgsm?targeted=random", ",cw?steps=5")
    runs = [evaluate(robust_model, digits_test.limit(72), suites=["attacks"], out=tmp_path / str(b), batch_size=b,
                     calibration_data=None, attack=attacks, norm=norm, eps=eps).records for b in (32, 256)]
    small, large = (r.sort_values(["condition", "sample_id"]).reset_index(drop=True) for r in runs)
    assert small.attack_success.any() and not small[small.clean_correct].attack_success.all()
    assert small.equals(large)


def test_queries_count_every_model_pass(robust_model, digits_test):
    """Per-point counts add up to the rows a hook on the network saw (forward and backward), and an unbroken point
    received each attack's full budget."""
    data = digits_test.limit(40)
    seen = {"rows": 0}

    def forward(module, inputs, output):
        seen["rows"] += len(inputs[0])

    def backward(module, grad_input, grad_output):
        seen["rows"] += len(grad_output[0])

    state = PointState.from_clean(robust_model.predict(data.images), data.labels)
    hooks = [robust_model.net.register_forward_hook(forward), robust_model.net.register_full_backward_hook(backward)]
    try:
        members = parse_sequence("fgsm+pgd?steps=4+apgd-ce?steps=6+apgd-t?steps=3&targets=2+aa-fast?steps=3&targets=2"
                                 "+fab-t?steps=3&targets=2+square?queries=25")
        run_sequence(robust_model, data.read, data.labels, data.ids, members, "Linf", 0.1, state,
                     (0, "queries"), 16)
    finally:
        for hook in hooks:
            hook.remove()
    assert int(state.queries.sum()) == seen["rows"]
    assert (state.queries[~state.clean_correct] == 0).all()
    # fgsm 1+1+1 (check), pgd 4*2+1, apgd-ce 7*2, apgd-t 2 targets * 4*2, malt 1+9 and 2 targets * 4*2,
    # fab-t: its passes per target, square 1+25
    unbroken = state.active
    assert unbroken.any()
    fab = state.queries[unbroken] - (3 + 9 + 14 + 16 + 10 + 16 + 26)
    assert (fab > 0).all() and (fab == fab[0]).all()
