"""Compression: int8 keeps the built-in model's accuracy, pruning zeroes exactly the asked fraction, channel pruning
removes exactly the asked channels, compressed directories load again (safely) in `rbl evaluate`, and bad input is
one line with exit code 2."""
from __future__ import annotations

import copy
import json
import math
import sys

import pytest
import torch
from foundation_helpers import assert_one_line_error, run_rbl
from torch import nn

from robustbench_local import load_data, load_model
from robustbench_local.errors import CheckpointRefused, ModelError, SpecError
from robustbench_local.fingerprint import hash_module
from robustbench_local.models.compress import calibration_batches, compress, quantize_dynamic_int8, save_compressed
from robustbench_local.models.pruning import prunable_weights

RESNET18 = "torchvision:resnet18?num_classes=10&input_size=32"


def accuracy(model, data) -> float:
    return float((model.predict(data.images).argmax(1) == data.labels).mean())


@pytest.fixture(scope="module")
def digits():
    return load_data("builtin:digits", "test"), load_data("builtin:digits", "val")


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_int8_keeps_the_builtin_models_accuracy_within_one_point(digits, method):
    test, val = digits
    model = load_model("builtin:digits-cnn", device="cpu")
    quantised = compress(model, method, calibration=calibration_batches(val, 256))
    assert quantised.int8
    assert any(p.is_quantized for p in _quantised_tensors(quantised.net))  # int8 weights, not a float copy
    assert abs(accuracy(quantised, test) - accuracy(model, test)) <= 0.01


def _quantised_tensors(net: nn.Module):
    for value in net.state_dict().values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, torch.Tensor):
                yield item


@pytest.mark.parametrize("amount", [0.5, 0.8])
def test_pruning_zeroes_exactly_the_asked_fraction_of_conv_and_linear_weights(amount):
    model = load_model(RESNET18, device="cpu")
    before = {name: p.clone() for name, p in model.net.named_parameters()}
    pruned = compress(model, "prune", amount)
    weights = [m.weight for m in prunable_weights(pruned.net)]
    total = sum(w.numel() for w in weights)
    assert sum(int((w == 0).sum()) for w in weights) == round(amount * total)  # random init has no zeros of its own
    kept = {name: p for name, p in pruned.net.named_parameters() if not name.endswith("weight") or "bn" in name}
    assert all(torch.equal(p, before[name]) for name, p in kept.items())  # biases and norms untouched
    assert all(torch.equal(p, before[name]) for name, p in model.net.named_parameters())  # the source is kept
    assert not any(hasattr(m, "weight_orig") for m in pruned.net.modules())  # made permanent


def test_resnet18_goes_through_static_int8_and_pruning_and_loads_back_the_same(tmp_path):
    spec = "torchvision:resnet18?num_classes=10&input_size=32"
    model = load_model(spec, device="cpu")
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for method, amount in (("int8-static", None), ("prune", 0.5)):
        compressed = compress(model, method, amount, calibration=[x])
        card = save_compressed(compressed, tmp_path / method, {"method": method, "source": spec, "arch": spec})
        loaded = load_model(str(tmp_path / method), device="cpu")
        assert loaded.fingerprint == load_model(str(tmp_path / method)).fingerprint != model.fingerprint
        with torch.no_grad():
            assert torch.equal(loaded(x), compressed(x))
        assert card["size_bytes"] == (tmp_path / method / card["file"]).stat().st_size
    assert card["file"] == "model.safetensors"


def test_inline_spec_options_prune_then_quantise():
    model = load_model("builtin:digits-cnn?prune=0.5&quantize=int8", device="cpu")
    assert model.int8
    plain = load_model("builtin:digits-cnn?prune=0.5", device="cpu")
    conv = [m.weight for m in prunable_weights(plain.net) if isinstance(m, nn.Conv2d)]
    assert sum(int((w == 0).sum()) for w in conv) > 0
    assert model.fingerprint != load_model("builtin:digits-cnn?quantize=int8", device="cpu").fingerprint


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_int8_logits_do_not_depend_on_the_batch(tmp_path, method):
    """Dynamic int8 takes one activation range per batch: a dim image among bright ones got other logits."""
    model = load_model("builtin:digits-cnn", device="cpu")
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x[0] *= 0.1
    quantised = compress(model, method, calibration=[x])
    save_compressed(quantised, tmp_path, {"method": method, "source": "s", "arch": "builtin:digits-cnn"})
    for net in (quantised, load_model(str(tmp_path))):
        with torch.no_grad():
            assert torch.equal(net(x), torch.cat([net(image) for image in x.split(1)]))


def test_int8_model_refuses_an_accelerator_asked_for():
    with pytest.raises(SpecError, match="CPU only"):
        load_model("builtin:digits-cnn?quantize=int8", device="cuda")


def compress_cli(out, *args: str) -> dict:
    """`rbl compress builtin:digits-cnn ARGS --out OUT` (must succeed); its card."""
    outcome = run_rbl("compress", "builtin:digits-cnn", *args, "--out", str(out))
    assert outcome.exit_code == 0, outcome.stderr
    return json.loads((out / "card.json").read_text())


def clean_acc_of(model_dir, run) -> float:
    """Clean accuracy of `rbl evaluate MODEL_DIR --suite clean` on the digits test split, from its metrics.csv."""
    outcome = run_rbl("evaluate", str(model_dir), "--data", "builtin:digits", "--suite", "clean", "--out", str(run))
    assert outcome.exit_code == 0, outcome.stderr
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    return next(float(r[5]) for r in rows if r[2:5] == ["clean", "clean", "acc"])


def test_compress_then_evaluate_from_the_command_line(tmp_path):
    out = tmp_path / "pruned"
    card = compress_cli(out, "--method", "prune", "--amount", "0.8", "--data", "builtin:digits")
    assert card["sparsity"] == pytest.approx(0.8, abs=1 / card["prunable_weights"])
    assert card["source_fingerprint"] == load_model("builtin:digits-cnn", device="cpu").fingerprint
    assert card["parameters"] == sum(p.numel() for p in load_model("builtin:digits-cnn").net.parameters())
    assert clean_acc_of(out, tmp_path / "run") == pytest.approx(card["test_accuracy"]["compressed"])


def test_fine_tuning_after_pruning_keeps_the_pruned_weights_at_zero(tmp_path):
    out = tmp_path / "ft"
    card = compress_cli(out, "--method", "prune", "--amount", "0.8", "--data", "builtin:digits", "--finetune-epochs", "1")
    assert card["zero_weights"] == round(0.8 * card["prunable_weights"])
    assert card["settings"]["finetune"]["epochs"] == 1 and (out / "finetune" / "log.csv").is_file()
    tuned, plain = load_model(str(out)), compress(load_model("builtin:digits-cnn"), "prune", 0.8)
    for a, b in zip(prunable_weights(tuned.net), prunable_weights(plain.net), strict=True):
        assert torch.equal(a.weight == 0, b.weight == 0)  # the same weights pruned, and still zero
    assert not all(torch.equal(a.weight, b.weight) for a, b in zip(prunable_weights(tuned.net),
                                                                    prunable_weights(plain.net), strict=True))
    again = run_rbl("compress", "builtin:digits-cnn", "--method", "prune", "--amount", "0.5", "--data",
                    "builtin:digits", "--finetune-epochs", "1", "--out", str(out))
    assert_one_line_error(again, "holds an earlier fine-tuning", "another --out")


def test_int8_static_directory_evaluates_from_the_command_line(tmp_path):
    out = tmp_path / "int8"
    assert run_rbl("compress", "builtin:digits-cnn", "--method", "int8-static", "--data", "builtin:digits",
                   "--calibration-size", "64", "--out", str(out)).exit_code == 0
    card = json.loads((out / "card.json").read_text())
    assert card["file"] == "model.ts" and card["settings"]["library"] == "torch.ao.quantization.quantize_fx"
    outcome = run_rbl("evaluate", str(out), "--data", "builtin:digits", "--limit", "40", "--out", str(tmp_path / "r"))
    assert outcome.exit_code == 0, outcome.stderr


@pytest.mark.parametrize("suite", ["attacks", "ood"])
def test_gradient_suites_run_on_an_int8_model(tmp_path, suite):
    """They ended in a RuntimeError traceback from autograd, then in a refusal; now a gradient attack gets the int8
    network's true (zero) gradient and the masking flags fire, and the OOD suite skips the detectors that need
    gradients or features (tests/test_attacks_int8.py has the rest)."""
    out = tmp_path / "int8"
    assert run_rbl("compress", "builtin:digits-cnn", "--method", "int8-dynamic", "--out", str(out)).exit_code == 0
    options = {"attacks": ("--attack", "pgd", "--eps", "8/255"), "ood": ("--detectors", "msp,odin")}[suite]
    outcome = run_rbl("evaluate", str(out), "--data", "builtin:digits", "--suite", suite, "--limit", "8", *options,
                      "--out", str(tmp_path / "run"))
    assert outcome.exit_code == 0, outcome.stderr
    metrics = (tmp_path / "run" / "metrics.csv").read_text()
    expected = "flag_int8_gradient_only,1.0" if suite == "attacks" else ":msp,auroc,"
    assert expected in metrics and ":odin,auroc," not in metrics


def test_a_card_pointing_at_a_pickle_is_refused_without_trust(tmp_path):
    class Payload:
        def __reduce__(self):
            return (eval, ("1",))

    torch.save({"weight": Payload()}, tmp_path / "model.pt")
    (tmp_path / "card.json").write_text(json.dumps({"method": "prune", "file": "model.pt", "source": "x",
                                                    "arch": "builtin:digits-cnn"}))
    with pytest.raises(CheckpointRefused, match="--trust-checkpoint"):
        load_model(str(tmp_path))


@pytest.mark.parametrize("args, needles", [
    (["--method", "zip"], ["Invalid value for '--method'", "int8-dynamic"]),
    (["--method", "prune"], ["--amount", "strictly between 0 and 1"]),
    (["--method", "prune", "--amount", "0"], ["--amount", "got '0'"]),
    (["--method", "prune", "--amount", "1"], ["--amount", "got '1'"]),
    (["--method", "prune", "--amount", "1.5"], ["--amount", "got '1.5'"]),
    (["--method", "prune", "--amount", "half"], ["--amount", "got 'half'"]),
    (["--method", "int8-dynamic", "--amount", "0.5"], ["--amount applies to --method prune and prune-channels only"]),
    (["--method", "prune-channels"], ["--amount", "strictly between 0 and 1"]),
    (["--method", "prune-channels", "--amount", "0.99"], ["would leave none of the 32", "body.0", "smaller --amount"]),
    (["--method", "int8-static"], ["calibrates on a val split", "--data"]),
    (["--method", "prune", "--amount", "0.5", "--finetune-epochs", "1"], ["--finetune-epochs", "--data"]),
    (["--method", "int8-dynamic", "--data", "builtin:digits", "--finetune-epochs", "1"], ["--method prune"]),
], ids=" ".join)
def test_bad_compress_input_is_one_line_with_exit_code_2(tmp_path, args, needles):
    assert_one_line_error(run_rbl("compress", "builtin:digits-cnn", *args, "--out", str(tmp_path / "o")), *needles)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("spec, needles", [
    ("builtin:digits-cnn?prune=2", ["?prune=", "strictly between 0 and 1", "got '2'"]),
    ("builtin:digits-cnn?quantize=int4", ["?quantize= takes int8", "int8-static"]),
    ("builtin:digits-cnn?prun=0.5", ["?prune="]),
    ("builtin:digits-cnn?prune_channels=1", ["?prune_channels=", "strictly between 0 and 1", "got '1'"]),
])
def test_bad_inline_compression_options_are_one_line(tmp_path, spec, needles):
    assert_one_line_error(run_rbl("evaluate", spec, "--data", "builtin:digits", "--limit", "4",
                                  "--out", str(tmp_path / "o")), *needles)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "torchscript"])
def test_fingerprint_covers_int8_weights(traced):
    """Packed int8 weights: tuples of quantised tensors in an eager state dict, hidden from a TorchScript one."""
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = quantize_dynamic_int8(nn.Sequential(nn.Linear(4, 3)))
        nets.append(torch.jit.trace(net, torch.rand(2, 4)) if traced else net)
    assert hash_module(nets[0]) != hash_module(nets[1])
    assert hash_module(nets[0]) == hash_module(copy.deepcopy(nets[0]) if not traced else nets[0])


def _out_channels(net: nn.Module) -> dict[str, int]:
    return {name: m.weight.shape[0] for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


@pytest.mark.parametrize("spec", ["builtin:digits-cnn", RESNET18])
@pytest.mark.parametrize("amount", [0.5, 0.8])
def test_channel_pruning_keeps_the_rounded_down_fraction_of_every_layer_but_the_output(spec, amount):
    """Each layer keeps floor(C·(1 - amount)) of its C output channels (torch-pruning's rounding); the classes stay."""
    model = load_model(spec, device="cpu")
    pruned = compress(model, "prune-channels", amount)
    before, after = _out_channels(model.net), _out_channels(pruned.net)
    output = "head" if spec.startswith("builtin") else "fc"
    assert after == {name: c if name == output else math.floor(c * (1 - amount)) for name, c in before.items()}
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = pruned(x)
    assert logits.shape == (4, 10) and torch.isfinite(logits).all()
    assert sum(p.numel() for p in pruned.net.parameters()) < sum(p.numel() for p in model.net.parameters())
    assert _out_channels(model.net) == before  # the source is kept


def _digits_cnn_parameters(c1: int, c2: int, hidden: int, classes: int = 10) -> int:
    """DigitsCNN's parameter count by hand: conv 3x3 + bias and batch norm (scale, shift) per block, then the
    4x4-pooled features through the hidden linear layer to the head."""
    def block(cin: int, cout: int) -> int:
        return cin * cout * 9 + cout + 2 * cout

    return (block(3, c1) + block(c1, c1) + block(c1, c2) + block(c2, c2) + (c2 * 16 * hidden + hidden)
            + (hidden * classes + classes))


def test_channel_pruned_digits_cnn_has_the_parameters_of_the_smaller_architecture():
    model = load_model("builtin:digits-cnn", device="cpu")
    assert sum(p.numel() for p in model.net.parameters()) == _digits_cnn_parameters(32, 64, 128)
    pruned = compress(model, "prune-channels", 0.5)
    assert sum(p.numel() for p in pruned.net.parameters()) == _digits_cnn_parameters(16, 32, 64)


def test_channel_pruning_keeps_the_channels_of_largest_group_l1_norm():
    """A conv's channel group: its filters, the batch-norm scales after it and the next conv's input slices; a
    channel's importance is the mean of their L1 norms, and the largest half survive in their order."""
    model = load_model("builtin:digits-cnn", device="cpu")
    pruned = compress(model, "prune-channels", 0.5)
    body = model.net.body

    def kept(conv: int, norm: int, following: int) -> torch.Tensor:
        score = torch.stack([body[conv].weight.abs().sum((1, 2, 3)), body[norm].weight.abs(),
                             body[following].weight.abs().sum((0, 2, 3))]).mean(0)
        return score.topk(len(score) // 2).indices.sort().values

    first, second = kept(0, 1, 3), kept(3, 4, 7)
    assert torch.equal(pruned.net.body[0].weight, body[0].weight[first])
    assert torch.equal(pruned.net.body[1].running_mean, body[1].running_mean[first])
    assert torch.equal(pruned.net.body[3].weight, body[3].weight[second][:, first])


@pytest.mark.parametrize("spec", ["builtin:digits-cnn", RESNET18])
def test_channel_pruned_directory_rebuilds_the_architecture_and_loads_back_the_same(tmp_path, spec):
    model = load_model(spec, device="cpu")
    pruned = compress(model, "prune-channels", 0.5)
    card = save_compressed(pruned, tmp_path, {"method": "prune-channels", "source": spec, "arch": spec})
    assert card["channels"] == _out_channels(pruned.net) and card["file"] == "model.safetensors"
    loaded = load_model(str(tmp_path), device="cpu")
    assert _out_channels(loaded.net) == card["channels"]
    assert loaded.fingerprint == pruned.fingerprint != model.fingerprint
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(x), pruned(x))
    full = save_compressed(compress(model, "prune", 0.5), tmp_path / "unstructured",
                           {"method": "prune", "source": spec, "arch": spec})
    assert card["size_bytes"] < full["size_bytes"] / 2  # genuinely smaller on disk, not zeros


def test_a_card_whose_channel_plan_does_not_fit_its_architecture_is_refused(tmp_path):
    pruned = compress(load_model("builtin:digits-cnn", device="cpu"), "prune-channels", 0.5)
    card = save_compressed(pruned, tmp_path, {"method": "prune-channels", "source": "s", "arch": "builtin:digits-cnn"})
    card["channels"]["body.0"] = 99
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="keeps 99 channels of layer body.0, which has 32"):
        load_model(str(tmp_path))


def test_inline_channel_pruning_option_matches_the_command():
    inline = load_model("builtin:digits-cnn?prune_channels=0.5", device="cpu")
    direct = compress(load_model("builtin:digits-cnn", device="cpu"), "prune-channels", 0.5)
    assert inline.fingerprint == direct.fingerprint
    assert load_model("builtin:digits-cnn?prune_channels=0.5&quantize=int8", device="cpu").int8


def test_an_inline_channel_pruned_source_channel_prunes_again_and_loads_back(tmp_path):
    """Its architecture is the channel-pruned one: the card's arch keeps ?prune_channels= (not the weight-only
    ?prune=), the plan prunes it further; --method prune, whose card has no plan, is refused."""
    spec = "builtin:digits-cnn?prune_channels=0.5&prune=0.3"
    outcome = run_rbl("compress", spec, "--method", "prune-channels", "--amount", "0.5", "--out", str(tmp_path))
    assert outcome.exit_code == 0, outcome.stderr
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["arch"] == "builtin:digits-cnn?prune_channels=0.5" and card["channels"]["body.0"] == 8
    expected = compress(load_model(spec, device="cpu"), "prune-channels", 0.5)
    assert load_model(str(tmp_path), device="cpu").fingerprint == expected.fingerprint
    outcome = run_rbl("compress", spec, "--method", "prune", "--amount", "0.5", "--out", str(tmp_path / "p"))
    assert_one_line_error(outcome, "channel-pruned inline", "--method prune-channels")


def test_channel_pruning_without_torch_pruning_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_pruning", None)  # what an environment without it raises on import
    with pytest.raises(ModelError, match=r"pip install 'robustbench-local\[compress\]'"):
        compress(load_model("builtin:digits-cnn", device="cpu"), "prune-channels", 0.5)


def test_channel_pruning_then_fine_tuning_then_evaluate_from_the_command_line(tmp_path):
    out = tmp_path / "channels"
    card = compress_cli(out, "--method", "prune-channels", "--amount", "0.5", "--data", "builtin:digits",
                        "--finetune-epochs", "1")
    assert card["parameters"] == _digits_cnn_parameters(16, 32, 64) < card["source_parameters"]
    assert card["settings"]["finetune"]["epochs"] == 1 and card["settings"]["library"].startswith("torch-pruning")
    assert card["test_accuracy"]["compressed"] >= 0.9  # one epoch recovers what removing half the channels lost
    assert clean_acc_of(out, tmp_path / "run") == pytest.approx(card["test_accuracy"]["compressed"])
