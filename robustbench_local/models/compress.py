"""Compressed models: int8 quantisation on the CPU (torch.ao), and pruning (global magnitude or structured channel
pruning, in `pruning`): `compress` dispatches to them and `save_compressed` writes the result.

int8 models keep the Classifier's [0, 1] input contract (normalisation stays in float in front of the quantised
network) and run on the CPU only. Static int8 uses FX graph mode (`torch.ao.quantization.quantize_fx`) with the x86
qconfig: this torch no longer ships the PT2E flow (it moved to torchao), and FX gives the same per-channel int8
weights and calibrated per-tensor activations on the x86 backend.

An int8 model carries its float original and a fake-quantised float surrogate (models/fakequant.py, saved beside
it as `surrogate.ts`): the attacks suite's transfer and BPDA attacks take their gradients from them.
"""
from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ModelError, SpecError
from ..model_catalog import COMPRESSION_METHODS as METHODS
from ..model_catalog import PRUNE_METHODS
from ..parsing import check_amount
from ..specs import Spec
from .checkpoint import error_reason, existing_file
from .classifier import Classifier, FeatureFn, to_tensor
from .fakequant import dynamic_surrogate, static_surrogate
from .proxies import GradientProxies, StandIn
from .pruning import channel_plan, prune_channels, prune_global

if TYPE_CHECKING:
    from ..data import DataSource

CARD = "card.json"
CARD_KEYS = {"method", "file", "source", "arch"}  # what loading a compressed directory reads
CALIBRATION_BATCH = 64
SURROGATE = "surrogate.ts"


@contextmanager
def _x86_quantisation() -> Iterator[None]:
    """The x86 quantised engine, without torch.ao's deprecation and observer notices (errors stay on one line)."""
    saved = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        torch.backends.quantized.engine = saved


class PerImage(nn.Module):
    """Runs `net` one image at a time. Dynamic int8 quantises a layer's input with one range over the whole batch,
    so an image's logits would depend on the other images in its batch (and on the batch size)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(image) for image in x.split(1)])


class SavedProgram(nn.Module):
    """A TorchScript program and the file it was loaded from. TorchScript modules do not pickle: this one pickles as
    its path, so a worker process of `--executor pool` or Ray loads the file again."""

    def __init__(self, program: nn.Module, path: str) -> None:
        super().__init__()
        self.program, self.path = program, path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)

    def __reduce__(self) -> tuple:
        return (_reload_program, (self.path,))


def _reload_program(path: str) -> SavedProgram:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return SavedProgram(torch.jit.load(path, map_location="cpu"), path)


def quantize_dynamic_int8(net: nn.Module) -> nn.Module:
    """Linear layers with int8 weights and activations quantised on the fly per batch."""
    from torch.ao.quantization import quantize_dynamic

    with _x86_quantisation():
        return quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)


def quantize_static_int8(net: nn.Module, calibration: Iterable[torch.Tensor]) -> tuple[nn.Module, nn.Module]:
    """Post-training static int8 (FX graph mode, x86 qconfig), activation ranges observed on `calibration` batches
    of normalised input; returns the int8 network and its fake-quantised float surrogate."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    batches = iter(calibration)
    first = next(batches, None)
    if first is None:
        raise ModelError("static int8 needs calibration images (none given, or the val split is empty); pass --data")
    mapping = get_default_qconfig_mapping("x86")
    with _x86_quantisation(), torch.no_grad():
        try:
            prepared = prepare_fx(net, mapping, (first,))
        except Exception as exc:  # noqa: BLE001  (symbolic tracing fails on data-dependent control flow in many ways)
            raise ModelError(f"cannot trace the model for static int8 ({error_reason(exc)}); "
                             "use --method int8-dynamic") from None
        for x in (first, *batches):
            prepared(x)
        surrogate = static_surrogate(prepared, mapping.global_qconfig.weight)
        return convert_fx(prepared), surrogate


def compress(model: Classifier, method: str, amount: float | None = None,
             calibration: Iterable[torch.Tensor] | None = None) -> Classifier:
    """A compressed copy of `model` on the CPU (`model` is left as it is); `calibration`: [0, 1] pixel batches.

    An int8 copy carries a copy of `model` (its float original) and its fake-quantised surrogate as proxies.
    """
    source = copy.deepcopy(model).cpu().eval()
    net, features, surrogate = source.net, source.feature_fn, None
    if method == "prune":
        prune_global(net, check_amount(amount, "--amount"))
    elif method == "prune-channels":
        prune_channels(source, check_amount(amount, "--amount"))
    elif method == "int8-dynamic":
        quantised = quantize_dynamic_int8(net)
        net, features, surrogate = PerImage(quantised), None, dynamic_surrogate(source.net, quantised)
    elif method == "int8-static":
        with torch.no_grad():
            normalised = (source._normalise(x) for x in (calibration or ()))
            net, surrogate = quantize_static_int8(net, normalised)
            features = None  # the graph keeps no named layers
    else:
        raise SpecError(f"unknown compression method {method!r}; use one of {', '.join(METHODS)}")
    proxies = None
    if surrogate is not None:
        original = copy.deepcopy(model).cpu().eval()
        proxies = GradientProxies(StandIn.held(original), StandIn.held(_like(source, surrogate, "surrogate")))
    return _like(source, net, None, features, proxies)


def _like(model: Classifier, net: nn.Module, role: str | None, features: FeatureFn | None = None,
          proxies: GradientProxies | None = None) -> Classifier:
    """A Classifier around `net` with `model`'s normalisation, classes and input size."""
    return Classifier(net, model.num_classes, tuple(model.mean.flatten().tolist()),
                      tuple(model.std.flatten().tolist()), model.input_size, features,
                      f"{model.name} ({role})" if role else model.name, proxies)


def compress_from_options(model: Classifier, options: dict[str, str]) -> Classifier:
    """Apply a spec's ?prune_channels=AMOUNT, then ?prune=AMOUNT, then ?quantize=int8 (dynamic), to a freshly loaded
    model."""
    if "prune_channels" in options:
        model = compress(model, "prune-channels", check_amount(options["prune_channels"], "?prune_channels="))
    if "prune" in options:
        model = compress(model, "prune", check_amount(options["prune"], "?prune="))
    if "quantize" in options:
        if options["quantize"] != "int8":
            raise SpecError(f"?quantize= takes int8 (dynamic int8 of the Linear layers), got {options['quantize']!r}; "
                            "for static int8 with calibration use `rbl compress --method int8-static`")
        model = compress(model, "int8-dynamic")
    return model


def calibration_batches(data: DataSource, limit: int) -> Iterator[torch.Tensor]:
    """[0, 1] pixel batches of the first `limit` images of a DataSource (the val split), on the CPU."""
    seen = 0
    for images in data.batches(CALIBRATION_BATCH):
        images = images[: limit - seen]
        seen += len(images)
        yield to_tensor(images)
        if seen >= limit:
            return


def save_compressed(model: Classifier, out: Path, card: dict) -> dict:
    """Write the compressed network and `card` (plus file, size and how to load it) to `out`; return the card.

    Pruned networks are float: their weights go to safetensors, loaded into the source architecture (channel-pruned
    ones after the card's per-layer channel counts, `channels`, have rebuilt it smaller). int8 networks are traced
    to TorchScript (their packed int8 weights have no safetensors form), loaded like `torchscript:`.
    """
    out.mkdir(parents=True, exist_ok=True)
    if card["method"] in PRUNE_METHODS:
        from safetensors.torch import save_file

        if card["method"] == "prune-channels":
            card = {**card, "channels": channel_plan(model.net)}
        path = out / "model.safetensors"
        save_file({k: v.contiguous() for k, v in model.net.state_dict().items()}, str(path))
    else:
        path = out / "model.ts"
        inner = model.net.net if isinstance(model.net, PerImage) else model.net  # a trace would fix the loop
        _save_traced(inner, model, path)
        if model.proxies is not None and model.proxies.surrogate is not None:
            _save_traced(model.proxies.surrogate.get().net, model, out / SURROGATE)
            card = {**card, "surrogate": SURROGATE}
    card = {**card, "file": path.name, "size_bytes": path.stat().st_size, "num_classes": model.num_classes,
            "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(),
            "input_size": model.input_size[0] if model.input_size else None}
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return card


def _save_traced(net: nn.Module, model: Classifier, path: Path) -> None:
    """Trace `net` (which takes `model`'s normalised input) to TorchScript at `path`."""
    side = model.input_size or (32, 32)
    example = model._normalise(torch.zeros(2, 3, *side))
    with _x86_quantisation(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # quantisation scales are constants
        torch.jit.save(torch.jit.trace(net, example), str(path))


def read_card(directory: Path) -> dict:
    """The card of a directory written by `rbl compress`."""
    path = existing_file(directory / CARD, "compression card", "pass the directory `rbl compress` wrote")
    try:
        card = json.loads(path.read_text())
    except ValueError:
        card = None
    if not isinstance(card, dict) or not CARD_KEYS <= card.keys() or card["method"] not in METHODS:
        raise ModelError(f"{path} is not a card written by `rbl compress` (it needs {', '.join(sorted(CARD_KEYS))} "
                         f"and a method among {', '.join(METHODS)}); compress the model again")
    return card


def torchscript_spec(directory: Path, card: dict, file: str | None = None) -> Spec:
    """The `torchscript:` spec that loads an int8 card's network (or `file`, e.g. its surrogate) with its
    normalisation, classes and size."""
    options = {"mean": ",".join(map(str, card["mean"])), "std": ",".join(map(str, card["std"])),
               "num_classes": str(card["num_classes"])}
    if card.get("input_size"):
        options["input_size"] = str(card["input_size"])
    return Spec("torchscript", str(directory / (file or card["file"])), options)


def load_surrogate(directory: Path, card: dict) -> Classifier:
    """The fake-quantised float surrogate saved beside an int8 card's network (a float TorchScript program)."""
    from .loaders import load_torchscript

    loaded = load_torchscript(torchscript_spec(directory, card, card["surrogate"]), False)
    return _like(loaded, loaded.net, "surrogate")
