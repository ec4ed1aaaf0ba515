"""One loader per model spec scheme, each returning a Classifier."""
from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError, SpecError
from ..specs import Spec
from .builtin import BUILTIN_MODELS
from .checkpoint import apply_state_dict, error_reason, read_state_dict
from .classifier import Classifier
from .features import HeadInputFeatures, MethodFeatures, timm_features

NORMALISATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
COMMON_OPTIONS = {"weights", "norm", "mean", "std", "input_size", "num_classes", "features"}


def _floats(text: str, key: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SpecError(f"?{key}= takes comma-separated numbers, got {text!r}") from None
    if len(values) not in (1, 3):
        raise SpecError(f"?{key}= takes 1 or 3 numbers, got {len(values)}")
    return values * 3 if len(values) == 1 else values


def normalisation(spec: Spec, default: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) from ?norm=NAME or ?mean=..&std=.., else the scheme's default."""
    if "mean" in spec.options or "std" in spec.options:
        return _floats(spec.options.get("mean", "0"), "mean"), _floats(spec.options.get("std", "1"), "std")
    name = spec.options.get("norm", default)
    if name not in NORMALISATIONS:
        raise SpecError(f"unknown ?norm={name}; use one of {', '.join(NORMALISATIONS)} or ?mean=..&std=..")
    return NORMALISATIONS[name]


def _int(spec: Spec, key: str, default: int | None) -> int | None:
    value = spec.options.get(key)
    if value is None:
        return default
    if not value.isdigit() or int(value) == 0:
        raise SpecError(f"?{key}= must be a positive integer, got {value!r}")
    return int(value)


def _input_size(spec: Spec, default: tuple[int, int] | None) -> tuple[int, int] | None:
    size = _int(spec, "input_size", None)
    return (size, size) if size else default


def _maybe_weights(net: nn.Module, spec: Spec, trust: bool, default: Path | None = None) -> None:
    source = spec.options.get("weights", str(default) if default else "none")
    if source != "none":
        apply_state_dict(net, read_state_dict(source, trust), source)


def _probe_classes(net: nn.Module, input_size: tuple[int, int]) -> int:
    net.eval()
    try:
        with torch.no_grad():
            out = net(torch.zeros(1, 3, *input_size))
    except RuntimeError as exc:
        raise ModelError(f"the model failed on one 3x{input_size[0]}x{input_size[1]} image ({error_reason(exc)}); "
                         "pass ?input_size=N for the image size it expects") from exc
    if out.ndim != 2:
        raise ModelError(f"the model returned shape {tuple(out.shape)} for one image; it must return logits (N, K)")
    return int(out.shape[1])


def load_builtin(spec: Spec, trust: bool) -> Classifier:
    if spec.target not in BUILTIN_MODELS:
        raise SpecError(f"unknown built-in model {spec.target!r}; known: {', '.join(BUILTIN_MODELS)} "
                        "(see `rbl list models`)")
    entry = BUILTIN_MODELS[spec.target]
    num_classes = _int(spec, "num_classes", 10)
    net = entry.factory(num_classes=num_classes)
    _maybe_weights(net, spec, trust, default=entry.weights)
    mean, std = normalisation(spec, "none") if {"norm", "mean", "std"} & set(spec.options) else (entry.mean, entry.std)
    return Classifier(net, num_classes, mean, std, _input_size(spec, None),
                      MethodFeatures("penultimate"), str(spec))


def load_torchvision(spec: Spec, trust: bool) -> Classifier:
    import torchvision

    num_classes = _int(spec, "num_classes", 1000)
    try:
        net = torchvision.models.get_model(spec.target, weights=None, num_classes=num_classes)
    except ValueError:
        raise SpecError(f"unknown torchvision model {spec.target!r}; see torchvision.models.list_models()") from None
    _maybe_weights(net, spec, trust)
    mean, std = normalisation(spec, "imagenet")
    return Classifier(net, num_classes, mean, std, _input_size(spec, None),
                      HeadInputFeatures(spec.options.get("features")), str(spec))


def load_timm(spec: Spec, trust: bool) -> Classifier:
    try:
        import timm
    except ImportError:
        raise ModelError("timm is not installed; install the extra: pip install 'robustbench-local[timm]'") from None
    kwargs = {"num_classes": _int(spec, "num_classes", 0)} if "num_classes" in spec.options else {}
    try:
        net = timm.create_model(spec.target, pretrained=False, **kwargs)
    except RuntimeError as exc:
        raise SpecError(f"unknown timm model {spec.target!r} ({exc}); see timm.list_models()") from None
    _maybe_weights(net, spec, trust)
    cfg = net.pretrained_cfg
    size = tuple(cfg.get("input_size", (3, 224, 224))[1:])
    mean, std = normalisation(spec, "none") if {"norm", "mean", "std"} & set(spec.options) else \
        (tuple(cfg.get("mean", NORMALISATIONS["imagenet"][0])), tuple(cfg.get("std", NORMALISATIONS["imagenet"][1])))
    return Classifier(net, net.num_classes, mean, std, _input_size(spec, size), timm_features, str(spec))


def load_torchscript(spec: Spec, trust: bool) -> Classifier:
    if not Path(spec.target).is_file():
        raise ModelError(f"TorchScript file {spec.target} does not exist; check the path")
    try:
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice would break the one-line errors
            warnings.simplefilter("ignore", FutureWarning)
            net = torch.jit.load(spec.target, map_location="cpu")
    except RuntimeError as exc:
        raise ModelError(f"cannot load {spec.target} as TorchScript ({error_reason(exc)}); "
                         "save it with torch.jit.save (or use export:PATH.pt2 for torch.export programs)") from None
    size = _input_size(spec, None)
    num_classes = _int(spec, "num_classes", None) or _probe_classes(net, size or (224, 224))
    mean, std = normalisation(spec, "none")
    return Classifier(net, num_classes, mean, std, size, None, str(spec))


def _option_value(text: str) -> int | float | str:
    """A factory keyword from the spec's query: an int, else a float, else the text itself."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def load_python(spec: Spec, trust: bool) -> Classifier:
    module_name, _, attr = spec.target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr) if attr else None
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"cannot import {spec.target} ({exc}); use python:package.module:factory with the "
                        "package on PYTHONPATH") from None
    if not callable(factory):
        raise SpecError(f"python:{spec.target} does not name a callable; use python:package.module:factory")
    kwargs = {k: _option_value(v) for k, v in spec.options.items() if k not in COMMON_OPTIONS}
    try:
        net = factory(**kwargs)
    except Exception as exc:  # user code may raise anything; --debug shows its traceback
        raise ModelError(f"python:{spec.target} raised {error_reason(exc)} when called with {kwargs}; "
                         "fix the factory or the spec's ?key=value options") from exc
    if isinstance(net, Classifier):
        return net
    if not isinstance(net, nn.Module):
        raise ModelError(f"{spec.target} returned {type(net).__name__}, not a torch.nn.Module")
    _maybe_weights(net, spec, trust)
    size = _input_size(spec, None)
    num_classes = _int(spec, "num_classes", None) or _probe_classes(net, size or (224, 224))
    mean, std = normalisation(spec, "none")
    return Classifier(net, num_classes, mean, std, size, HeadInputFeatures(spec.options.get("features")), str(spec))
