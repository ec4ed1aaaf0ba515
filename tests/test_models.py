"""Every model spec form loads into one Classifier; checkpoints load safely; bad models fail in one line."""
from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from foundation_helpers import assert_one_line_error, run_rbl
from safetensors.torch import save_file
from torch import nn

from robustbench_local import Classifier, load_model
from robustbench_local.errors import CheckpointRefused, ModelError, SpecError
from robustbench_local.models import to_tensor
from robustbench_local.models.exported import FixedBatch

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
RESNET10 = "torchvision:resnet18?num_classes=10"


def pixels(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def scrambled_resnet18(seed: int = 1) -> nn.Module:
    """A resnet18 (10 classes) whose weights and BN statistics are all non-default, in eval mode."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(num_classes=10)
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5) if "var" in name else buf.uniform_(-0.2, 0.2)
    return net.eval()


def assert_eval_mode(model: Classifier) -> None:
    assert isinstance(model, Classifier)
    assert not any(m.training for m in model.modules())


@pytest.fixture(scope="module")
def resnet_source():
    return scrambled_resnet18()


# ---------------------------------------------------------------- built-in / torchvision / timm
def test_builtin_digits_cnn_is_wrapped_with_its_normalisation(digits_model, digits_test):
    assert_eval_mode(digits_model)
    assert digits_model.num_classes == 10 and digits_model.input_size is None
    x = to_tensor(digits_test.images[:5])
    with torch.no_grad():
        expected = digits_model.net((x - 0.5) / 0.5)  # the zoo entry's mean/std, applied by hand
        assert torch.allclose(digits_model(x), expected, atol=1e-6)
        feats = digits_model.features(x)
        assert feats.shape == (5, 128)
        assert torch.allclose(digits_model.net.head(feats), expected, atol=1e-5)


@pytest.mark.numerics
def test_predict_is_batched_uint8_nhwc_and_independent_of_batch_size(digits_model, digits_test):
    images = digits_test.images[:7]
    small = digits_model.predict(images, batch_size=3)
    whole = digits_model.predict(images)
    assert small.dtype == np.float32 and small.shape == (7, 10)
    np.testing.assert_allclose(small, whole, atol=1e-5)
    with torch.no_grad():
        direct = digits_model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    np.testing.assert_allclose(whole, direct, atol=1e-5)
    assert digits_model.predict(images[:0]).shape == (0, 10)


def test_predict_runs_in_eval_mode_and_restores_the_callers_mode(digits_test):
    model = load_model("builtin:digits-cnn")
    expected = model.predict(digits_test.images[:6])
    model.train()  # e.g. left so by a training loop: BatchNorm would use batch statistics
    np.testing.assert_allclose(model.predict(digits_test.images[:6], batch_size=4), expected, atol=1e-5)
    assert all(m.training for m in model.modules())


def test_torchvision_random_init_normalises_inside_and_exposes_head_input():
    model = load_model(RESNET10)
    assert_eval_mode(model)
    assert model.num_classes == 10
    x = pixels(3)
    with torch.no_grad():
        logits = model(x)
        assert torch.allclose(logits, model.net((x - IMAGENET_MEAN) / IMAGENET_STD), atol=1e-5)
        feats = model.features(x)
        assert feats.shape == (3, 512)
        assert torch.allclose(model.net.fc(feats), logits, atol=1e-5)


def test_features_from_a_named_layer(resnet_source, tmp_path):
    path = tmp_path / "resnet.safetensors"
    save_file({k: v.contiguous() for k, v in resnet_source.state_dict().items()}, str(path))
    model = load_model(f"{RESNET10}&weights={path}&features=layer3")
    x = pixels(2)
    with torch.no_grad():
        net = resnet_source
        h = net.maxpool(net.relu(net.bn1(net.conv1((x - IMAGENET_MEAN) / IMAGENET_STD))))
        expected = net.layer3(net.layer2(net.layer1(h))).mean(dim=(-2, -1))  # spatial maps are average-pooled
        assert torch.allclose(model.features(x), expected, atol=1e-5)
    with pytest.raises(ModelError, match="no layer named"):
        load_model(f"{RESNET10}&features=layer9").features(x)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_torchvision_from_local_weights_matches_source_model(tmp_path, resnet_source, suffix):
    path = tmp_path / f"resnet{suffix}"
    state = {k: v.contiguous() for k, v in resnet_source.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    x = pixels(4)
    with torch.no_grad():
        expected = resnet_source((x - IMAGENET_MEAN) / IMAGENET_STD)
        for model in (load_model(f"{RESNET10}&weights={path}"), load_model(str(path), arch=RESNET10)):
            assert_eval_mode(model)
            assert torch.allclose(model(x), expected, atol=1e-5)
            assert model.features(x).shape == (4, 512)


def test_pt_checkpoint_layouts_nested_and_dataparallel(tmp_path, digits_model, digits_test):
    state = digits_model.net.state_dict()
    path = tmp_path / "nested.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model = load_model(str(path), arch="builtin:digits-cnn")
    np.testing.assert_allclose(model.predict(digits_test.images[:8]), digits_model.predict(digits_test.images[:8]),
                               atol=1e-5)


def test_timm_vit_random_init_resizes_32px_to_224():
    timm = pytest.importorskip("timm")
    model = load_model("timm:vit_tiny_patch16_224?num_classes=10")
    assert_eval_mode(model)
    assert model.num_classes == 10 and model.input_size == (224, 224)
    seen: list[tuple] = []
    model.net.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    x = pixels(2)
    cfg = timm.data.resolve_data_config({}, model=model.net)
    mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model(x)
        big = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)  # upsampling: no antialias
        assert torch.allclose(logits, model.net((big - mean) / std), atol=1e-4)
        feats = model.features(x)
    assert seen[0] == (2, 3, 224, 224)
    assert feats.shape == (2, 192)
    assert torch.allclose(model.net.head(feats), logits, atol=1e-4)


# ---------------------------------------------------------------- TorchScript and torch.export
def test_torchscript_file(tmp_path, resnet_source):
    x = pixels(3)
    path = tmp_path / "net.ts"
    torch.jit.trace(resnet_source, x).save(str(path))
    model = load_model(f"torchscript:{path}?input_size=32&norm=none")
    assert_eval_mode(model)
    assert model.num_classes == 10  # probed from the file
    with torch.no_grad():
        assert torch.allclose(model(x), resnet_source(x), atol=1e-5)
    with pytest.raises(ModelError, match="penultimate features"):
        model.features(x)


@pytest.fixture(scope="module")
def exported_programs(tmp_path_factory, resnet_source):
    root = tmp_path_factory.mktemp("export")
    example = (pixels(4),)
    dynamic = torch.export.export(resnet_source, example,
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=512)}})
    torch.export.save(dynamic, root / "dynamic.pt2")
    torch.export.save(torch.export.export(resnet_source, example), root / "static.pt2")
    return root


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_torch_export_program_any_batch_size(exported_programs, resnet_source, kind):
    model = load_model(f"export:{exported_programs / kind}.pt2?norm=none")
    assert_eval_mode(model)
    assert model.num_classes == 10 and model.input_size == (32, 32)
    assert isinstance(model.net, FixedBatch) == (kind == "static")
    x = pixels(7, seed=3)  # 7 = 4 + 3: the static program's last chunk is padded
    with torch.no_grad():
        assert torch.allclose(model(x), resnet_source(x), atol=1e-5)
    uint8 = (x.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    with torch.no_grad():
        expected = resnet_source(torch.from_numpy(uint8).permute(0, 3, 1, 2).float() / 255).numpy()
    np.testing.assert_allclose(model.predict(uint8, batch_size=5), expected, atol=1e-5)


def test_static_export_refuses_other_batch_sizes_unwrapped(exported_programs):
    program = torch.export.load(str(exported_programs / "static.pt2")).module()
    with pytest.raises((AssertionError, RuntimeError), match="4"):  # torch's guard: x.size()[0] == 4
        program(pixels(3))


# ---------------------------------------------------------------- bare weights + --arch, python: factories
def test_safetensors_state_dict_with_arch(tmp_path, digits_model, digits_test):
    path = tmp_path / "digits.safetensors"
    save_file({k: v.contiguous() for k, v in digits_model.net.state_dict().items()}, str(path))
    model = load_model(str(path), arch="builtin:digits-cnn")
    assert_eval_mode(model)
    np.testing.assert_allclose(model.predict(digits_test.images[:16]), digits_model.predict(digits_test.images[:16]),
                               atol=1e-5)
    with pytest.raises(SpecError, match="--arch"):
        load_model(str(path))


def write_module(tmp_path, monkeypatch, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_python_factory_with_options(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "rbl_factory_ok", """
        from torch import nn

        def make(width=2, num_classes=4):
            return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, width), nn.ReLU(), nn.Linear(width, num_classes))
    """)
    model = load_model("python:rbl_factory_ok:make?width=6&input_size=8&norm=none")
    assert_eval_mode(model)
    assert model.num_classes == 4 and model.input_size == (8, 8)
    x = pixels(3, size=8)
    with torch.no_grad():
        logits = model(x)
        assert torch.allclose(logits, model.net(x), atol=1e-6)
        feats = model.features(x)
    assert feats.shape == (3, 6)
    assert torch.allclose(model.net[-1](feats), logits, atol=1e-6)
    with torch.no_grad():  # 32 px input is resized to the declared 8 px
        assert model(pixels(2, size=32)).shape == (2, 4)


def test_python_factory_option_values_and_failures_are_one_line(tmp_path, monkeypatch, digits_test):
    write_module(tmp_path, monkeypatch, "rbl_factory_opts", """
        from torch import nn

        seen = {}

        def make(width=2, scale=1.0, act="relu"):
            seen.update(width=width, scale=scale, act=act)
            return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, width), nn.Linear(width, 3))

        def boom():
            raise RuntimeError("factory exploded")

        not_a_factory = 3
    """)
    import rbl_factory_opts

    load_model("python:rbl_factory_opts:make?width=5&scale=.5&act=gelu&input_size=8&norm=none")
    assert rbl_factory_opts.seen == {"width": 5, "scale": 0.5, "act": "gelu"}
    load_model("python:rbl_factory_opts:make?scale=2.&input_size=8&norm=none")
    assert rbl_factory_opts.seen["scale"] == 2.0
    for spec, error, needle in [
        ("python:rbl_factory_opts:make?widht=3&input_size=8&norm=none", SpecError, "did you mean ?width=?"),
        ("python:rbl_factory_opts:boom", ModelError, "factory exploded"),
        ("python:rbl_factory_opts:not_a_factory", SpecError, "callable"),
        ("python:rbl_factory_opts", SpecError, "callable"),
        ("python:rbl_no_such_module:make", SpecError, "cannot import"),
        ("python:rbl_factory_opts:make?norm=none", ModelError, "?input_size="),  # the 224 px probe fails an 8 px MLP
    ]:
        with pytest.raises(error, match=re.escape(needle)) as info:
            load_model(spec)
        assert "\n" not in str(info.value)
    small = load_model("python:rbl_factory_opts:make?num_classes=3&norm=none")  # no probe; 32 px data won't fit
    with pytest.raises(ModelError, match=r"\(2, 3, 32, 32\)"):
        small.predict(digits_test.images[:2])


def test_python_factory_may_return_a_classifier(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "rbl_factory_clf", """
        from torch import nn
        from robustbench_local import Classifier

        def make():
            return Classifier(nn.Sequential(nn.Flatten(), nn.LazyLinear(3)), 3, (0.0,) * 3, (1.0,) * 3, name="custom")
    """)
    model = load_model("python:rbl_factory_clf:make")
    assert model.name == "custom" and model.num_classes == 3


# ---------------------------------------------------------------- safe loading
class Payload:
    """Unpickling this creates the directory `marker`: stands in for any code a pickle can run."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.fixture()
def malicious_checkpoint(tmp_path, digits_model):
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "bad.pt"
    torch.save({"state_dict": digits_model.net.state_dict(), "extra": Payload(str(marker))}, path)
    assert not marker.exists()
    return path, marker


def test_malicious_pickle_is_refused_and_never_runs(malicious_checkpoint):
    path, marker = malicious_checkpoint
    with pytest.raises(CheckpointRefused, match="--trust-checkpoint") as info:
        load_model(str(path), arch="builtin:digits-cnn")
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointRefused):
        load_model(f"builtin:digits-cnn?weights={path}")
    assert not marker.exists()


def test_malicious_pickle_loads_only_when_trusted(malicious_checkpoint, digits_model, digits_test):
    path, marker = malicious_checkpoint
    model = load_model(str(path), arch="builtin:digits-cnn", trust_checkpoint=True)
    assert marker.exists()  # trusting a checkpoint means letting it run its code
    np.testing.assert_allclose(model.predict(digits_test.images[:4]), digits_model.predict(digits_test.images[:4]),
                               atol=1e-5)


def test_cli_refuses_malicious_checkpoint(malicious_checkpoint, tmp_path):
    path, marker = malicious_checkpoint
    outcome = run_rbl("evaluate", str(path), "--arch", "builtin:digits-cnn", "--data", "builtin:digits",
                      "--out", str(tmp_path / "run"))
    assert_one_line_error(outcome, "refusing", "mkdir", "--trust-checkpoint")  # names the code it would run
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


def test_cli_trust_checkpoint_flag_loads_it(malicious_checkpoint, tmp_path):
    path, marker = malicious_checkpoint
    outcome = run_rbl("evaluate", str(path), "--arch", "builtin:digits-cnn", "--trust-checkpoint",
                      "--data", "builtin:digits", "--limit", "20", "--out", str(tmp_path / "run"))
    assert outcome.exit_code == 0, outcome.stderr
    assert marker.exists() and (tmp_path / "run" / "metrics.csv").is_file()


def test_whole_pickled_module_is_refused_then_trusted(tmp_path, digits_model, digits_test):
    path = tmp_path / "whole.pt"
    torch.save(digits_model.net, path)
    with pytest.raises(CheckpointRefused, match="DigitsCNN"):
        load_model(str(path), arch="builtin:digits-cnn")
    trusted = load_model(str(path), arch="builtin:digits-cnn", trust_checkpoint=True)
    np.testing.assert_allclose(trusted.predict(digits_test.images[:4]), digits_model.predict(digits_test.images[:4]),
                               atol=1e-5)


@pytest.mark.parametrize("content", [b"", b"hello world", b"\x80\x02]q\x00."], ids=["empty", "text", "list"])
def test_files_that_are_not_state_dicts_are_model_errors(tmp_path, content, misfit_weights):
    path = tmp_path / "odd.pt"
    path.write_bytes(content)
    for trust in (False, True):
        with pytest.raises(ModelError) as info:
            load_model(str(path), arch="builtin:digits-cnn", trust_checkpoint=trust)
        assert not isinstance(info.value, CheckpointRefused) and "\n" not in str(info.value)
    renamed = tmp_path / "safetensors_in_disguise.pt"
    renamed.write_bytes(Path(misfit_weights).read_bytes())
    with pytest.raises(ModelError, match="cannot read"):
        load_model(str(renamed), arch="builtin:digits-cnn")
    pickled = tmp_path / "pickle.safetensors"
    torch.save({}, pickled)
    with pytest.raises(ModelError, match="safetensors"):
        load_model(str(pickled), arch="builtin:digits-cnn")


# ---------------------------------------------------------------- bad model input: one line, exit 2
@pytest.fixture()
def nan_factory(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "rbl_factory_nan", """
        import torch
        from torch import nn

        class NaNNet(nn.Module):
            def forward(self, x):
                return torch.full((x.shape[0], 10), float("nan"))

        def make():
            return NaNNet()
    """)
    return "python:rbl_factory_nan:make?input_size=32&norm=none"


@pytest.fixture()
def misfit_weights(tmp_path, digits_model):
    path = tmp_path / "digits10.safetensors"
    save_file({k: v.contiguous() for k, v in digits_model.net.state_dict().items()}, str(path))
    return str(path)


def test_library_errors_are_typed(tmp_path, nan_factory, misfit_weights, digits_test):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(f"torchscript:{tmp_path / 'missing.ts'}")
    with pytest.raises(SpecError, match="unknown model spec"):
        load_model("onnx:model.onnx")
    with pytest.raises(SpecError, match="digits-cnn"):
        load_model("builtin:no-such-net")
    with pytest.raises(ModelError, match="do not fit"):
        load_model(misfit_weights, arch="torchvision:resnet18?num_classes=10")
    with pytest.raises(ModelError, match="non-finite"):
        load_model(nan_factory).predict(digits_test.images[:3])


@pytest.mark.parametrize("scheme", ["torchscript", "export"])
@pytest.mark.parametrize("content", [b"", b"plain text"], ids=["empty", "text"])
def test_unreadable_program_files_are_one_line_model_errors(tmp_path, scheme, content):
    path = tmp_path / ("model.pt2" if scheme == "export" else "model.ts")
    path.write_bytes(content)
    with pytest.raises(ModelError, match="cannot load") as info:
        load_model(f"{scheme}:{path}")
    assert "\n" not in str(info.value)


def evaluate_args(model: str, out, *extra: str) -> list[str]:
    return ["evaluate", model, "--data", "builtin:digits", "--limit", "8", "--out", str(out), *extra]


@pytest.mark.parametrize("case", ["missing file", "missing weights", "unknown scheme", "unknown builtin",
                                  "wrong class count", "non-finite logits", "misfit weights",
                                  "misfit num_classes", "weights without --arch", "not torchscript",
                                  "not an export program", "not a checkpoint"])
def test_cli_bad_model_is_one_line_exit_2(case, tmp_path, nan_factory, misfit_weights):
    (tmp_path / "empty.pt").write_bytes(b"")
    args, needles = {
        "not a checkpoint": (evaluate_args(str(tmp_path / "empty.pt"), tmp_path / "r", "--arch", "builtin:digits-cnn"),
                             ["cannot read"]),
        "not torchscript": (evaluate_args(f"torchscript:{misfit_weights}", tmp_path / "r"), ["torch.jit.save"]),
        "not an export program": (evaluate_args(f"export:{misfit_weights}", tmp_path / "r"), ["torch.export.save"]),
        "missing file": (evaluate_args(f"torchscript:{tmp_path / 'nope.ts'}", tmp_path / "r"), ["does not exist"]),
        "missing weights": (evaluate_args(str(tmp_path / "nope.safetensors"), tmp_path / "r", "--arch", RESNET10),
                            ["does not exist"]),
        "unknown scheme": (evaluate_args("onnx:model.onnx", tmp_path / "r"), ["unknown model spec"]),
        "unknown builtin": (evaluate_args("builtin:no-such-net", tmp_path / "r"), ["no-such-net"]),
        "wrong class count": (evaluate_args("torchvision:resnet18", tmp_path / "r"), ["1000", "10"]),
        "non-finite logits": (evaluate_args(nan_factory, tmp_path / "r"), ["non-finite"]),
        "misfit weights": (evaluate_args(misfit_weights, tmp_path / "r", "--arch", RESNET10), ["do not fit"]),
        "misfit num_classes": (evaluate_args(misfit_weights, tmp_path / "r", "--arch", "builtin:digits-cnn?num_classes=3"),
                               ["do not fit"]),
        "weights without --arch": (evaluate_args(misfit_weights, tmp_path / "r"), ["--arch"]),
    }[case]
    assert_one_line_error(run_rbl(*args), *needles)


# ---------------------------------------------------------------- network outputs: one check, in Classifier.forward
BROKEN_NETS = """
    import torch
    from torch import nn

    class Pair(nn.Module):  # (logits, features), as many research models return
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 32 * 32, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)), x.flatten(1)

    class One(Pair):  # the same single row whatever the batch
        def forward(self, x):
            return self.fc(x.flatten(1))[:1]

    class Raises(Pair):
        def forward(self, x):
            raise ValueError("checkpoint layout mismatch")

    class PairWithGrad(nn.Module):  # the digits CNN's logits in no-grad inference, a tuple where gradients flow
        def __init__(self):
            super().__init__()
            from robustbench_local import load_model

            self.inner = load_model("builtin:digits-cnn")

        def forward(self, x):
            z = self.inner(x)
            return (z, x) if torch.is_grad_enabled() else z

    def make(kind):
        torch.manual_seed(0)
        return {"pair": Pair, "one": One, "raises": Raises, "grad": PairWithGrad}[kind]()
"""
BROKEN = {  # kind -> (what the error says for a batch of 4, what it says when the class-count probe meets it)
    "pair": ("a tuple of 2 (a float32 tensor of shape (4, 10), a float32 tensor of shape (4, 3072))",
             "a tuple of 2 (a float32 tensor of shape (1, 10)"),
    "one": ("a float32 tensor of shape (1, 10) for a batch of 4, expected logits of shape (4, 10)", None),
    "raises": ("raised ValueError: checkpoint layout mismatch on a batch of shape (4, 3, 32, 32)",
               "raised ValueError: checkpoint layout mismatch on a batch of shape (1, 3, 32, 32)"),
}


@pytest.fixture()
def broken_nets(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "rbl_broken_nets", BROKEN_NETS)
    return "python:rbl_broken_nets:make?norm=none&input_size=32&kind="


@pytest.mark.parametrize("kind", list(BROKEN))
def test_bad_network_outputs_fail_in_one_line_on_every_path(broken_nets, kind, digits_test):
    from robustbench_local.corruptions.fast import corrupt_tensor
    from robustbench_local.corruptions.fast.stream import corrupted_logits, to_device
    from robustbench_local.ood.representations import extract

    from robustbench_local.data.stream import batched

    model = load_model(f"{broken_nets}{kind}&num_classes=10")  # no class-count probe at load time
    images = digits_test.images[:4]
    paths = {"forward": lambda: model(pixels(4)), "predict": lambda: model.predict(images),
             "ood": lambda: extract(model, batched(images, 4)),
             "corruptions": lambda: corrupted_logits(model, to_device(images, model.device), corrupt_tensor, "fog", 1,
                                                     np.arange(4), "cifar-10-c")}
    said, probed = BROKEN[kind]
    for path, call in paths.items():
        with pytest.raises(ModelError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"{broken_nets}{kind}&num_classes=10 ") and said in message, (path, message)
        assert "\n" not in message
    if probed:  # the probe that counts the classes at load time goes through the same check
        with pytest.raises(ModelError, match=re.escape(probed)):
            load_model(f"{broken_nets}{kind}")


@pytest.mark.parametrize("kind, suite, needle", [
    ("pair", "clean", "a tuple of 2"), ("one", "clean", "shape (1, 10) for a batch of"),
    ("raises", "clean", "ValueError: checkpoint layout mismatch"),
    ("grad", "attacks", "a tuple of 2")])
def test_cli_bad_network_outputs_are_one_line_exit_2(broken_nets, tmp_path, kind, suite, needle):
    spec = f"{broken_nets}{kind}&num_classes=10"
    outcome = run_rbl(*evaluate_args(spec, tmp_path / "r", "--suite", suite, "--batch-size", "8",
                                     "--attack", "fgsm", "--eps", "0.1") if suite == "attacks" else
                      evaluate_args(spec, tmp_path / "r", "--batch-size", "8"))
    assert_one_line_error(outcome, "rbl_broken_nets", needle)


# ---------------------------------------------------------------- normalisation: said by the weights or by the spec
@pytest.fixture(scope="module")
def digits_program(tmp_path_factory, digits_model):
    """The built-in digits CNN (trained on (x - 0.5) / 0.5) saved as TorchScript: the file does not say so."""
    path = tmp_path_factory.mktemp("program") / "digits.ts"
    torch.jit.trace(digits_model.net, pixels(2)).save(str(path))
    return path


def test_a_program_must_say_its_normalisation(digits_program, digits_model, digits_test):
    for spec in (f"torchscript:{digits_program}", f"torchscript:{digits_program}?input_size=32"):
        with pytest.raises(SpecError, match=re.escape("?norm=imagenet|cifar10|none or ?mean=a,b,c&std=a,b,c")) as info:
            load_model(spec)
        assert "does not say how its input is normalised" in str(info.value) and "\n" not in str(info.value)
    expected = digits_model.predict(digits_test.images)
    said = load_model(f"torchscript:{digits_program}?mean=0.5&std=0.5")
    np.testing.assert_allclose(said.predict(digits_test.images), expected, atol=1e-4)
    raw = load_model(f"torchscript:{digits_program}?norm=none").predict(digits_test.images)
    accuracy = {name: float((logits.argmax(1) == digits_test.labels).mean()) for name, logits in
                (("said", expected), ("raw", raw))}
    assert accuracy["raw"] < accuracy["said"] - 0.1  # what a silent default cost: the reason it is asked for


@pytest.mark.parametrize("options, needle", [
    ("?mean=0.5", "use either ?norm=NAME or both ?mean=a,b,c&std=a,b,c"),
    ("?std=0.5", "use either ?norm=NAME or both"),
    ("?norm=none&mean=0.5&std=0.5", "use either ?norm=NAME or both"),
    ("?norm=imagnet", "unknown ?norm=imagnet; use ?norm=imagenet|cifar10|none"),
])
def test_normalisation_options_are_one_choice(digits_program, options, needle):
    with pytest.raises(SpecError, match=re.escape(needle)):
        load_model(f"torchscript:{digits_program}{options}")


def test_every_bare_model_form_asks_for_its_normalisation(exported_programs, tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "rbl_factory_norm", """
        from torch import nn

        def make():
            return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    """)
    for spec in (f"export:{exported_programs / 'dynamic.pt2'}", "python:rbl_factory_norm:make?input_size=8"):
        with pytest.raises(SpecError, match="does not say how its input is normalised"):
            load_model(spec)
    assert load_model("python:rbl_factory_norm:make?input_size=8&norm=cifar10").std.flatten().tolist() == \
        pytest.approx([0.2471, 0.2435, 0.2616])
    with pytest.raises(TypeError, match="mean"):  # the library wrapper has no default either
        Classifier(nn.Linear(3, 3), 3)
    assert_one_line_error(run_rbl(*evaluate_args(f"export:{exported_programs / 'dynamic.pt2'}", tmp_path / "r")),
                          "?norm=imagenet|cifar10|none")


def test_weights_that_know_their_normalisation_keep_it(digits_model):
    assert digits_model.mean.flatten().tolist() == [0.5] * 3  # built-in zoo entry
    assert load_model(RESNET10).std.flatten().tolist() == pytest.approx([0.229, 0.224, 0.225])  # torchvision
    assert load_model(f"{RESNET10}&norm=none").std.flatten().tolist() == [1.0] * 3


# ---------------------------------------------------------------- python: options and the current directory
def test_python_factory_options_are_checked_against_its_keywords(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "rbl_factory_kw", """
        from torch import nn
        from robustbench_local import Classifier

        def make(width=2):
            return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, width), nn.Linear(width, 3))

        def open_ended(**kwargs):
            return make(int(kwargs.get("width", 2)))

        def wrapped(width=2):
            return Classifier(make(width), 3, (0.5,) * 3, (0.5,) * 3, (8, 8), name="wrapped")
    """)
    for spec, needle in [("python:rbl_factory_kw:make?widht=3&norm=none", "did you mean ?width=?"),
                         ("python:rbl_factory_kw:make?input_sise=8&norm=none", "did you mean ?input_size=?"),
                         ("python:rbl_factory_kw:wrapped?width=4&norm=imagenet", "returns a Classifier"),
                         ("python:rbl_factory_kw:wrapped?input_size=16", "drop ?input_size=")]:
        with pytest.raises(SpecError, match=re.escape(needle)):
            load_model(spec)
    assert load_model("python:rbl_factory_kw:open_ended?width=5&input_size=8&norm=none").net[1].out_features == 5
    assert load_model("python:rbl_factory_kw:wrapped?width=4").name == "wrapped"


def test_python_module_in_the_current_directory(tmp_path, monkeypatch):
    import sys

    here, elsewhere = tmp_path / "project", tmp_path / "site"
    here.mkdir()
    elsewhere.mkdir()
    (here / "rbl_cwd_model.py").write_text(textwrap.dedent("""
        from torch import nn

        def make():
            return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    """))
    (elsewhere / "rbl_path_model.py").write_text((here / "rbl_cwd_model.py").read_text())
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(here))] + [str(elsewhere)])
    before = list(sys.path)
    assert load_model("python:rbl_path_model:make?input_size=8&norm=none").num_classes == 10
    assert sys.path == before  # found on the path: the path is left as it was
    assert load_model("python:rbl_cwd_model:make?input_size=8&norm=none").num_classes == 10
    assert sys.path == [str(here), *before]  # found here, as `python -m` would: kept, so worker processes find it
    from robustbench_local import evaluate
    from robustbench_local.runner.executors import PoolExecutor

    model = load_model("python:rbl_cwd_model:make?input_size=8&norm=none")
    run = evaluate(model, "builtin:digits", suites=["clean"], out=tmp_path / "r", limit=8, calibration_data=None,
                   executor=PoolExecutor(1))  # a spawned worker unpickles the model by importing rbl_cwd_model
    assert len(run.records) == 8
