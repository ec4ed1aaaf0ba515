"""One loader per model spec scheme, each returning a Classifier."""
from __future__ import annotations

import importlib
import inspect
import math
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from ..errors import ModelError, SpecError
from ..model_catalog import BUILTIN_MODELS, COMPRESSION
from ..parsing import parse_int
from ..registry import load_target
from ..specs import Spec, check_options
from .checkpoint import apply_state_dict, error_reason, existing_file, read_state_dict
from .classifier import Classifier
from .features import HeadInputFeatures, MethodFeatures, timm_features

NORMALISATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
NORM_CHOICES = f"?norm={'|'.join(NORMALISATIONS)} or ?mean=a,b,c&std=a,b,c"
COMMON_OPTIONS = {"weights", "norm", "mean", "std", "input_size", "num_classes", "features", *COMPRESSION}
Normalisation = tuple[tuple[float, ...], tuple[float, ...]]


def _floats(text: str, key: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SpecError(f"?{key}= takes comma-separated numbers, got {text!r}") from None
    if len(values) not in (1, 3):
        raise SpecError(f"?{key}= takes 1 or 3 numbers, got {len(values)}")
    if not all(math.isfinite(v) and (v > 0 or key == "mean") for v in values):
        raise SpecError(f"?{key}= takes finite numbers{' > 0' if key == 'std' else ''}, got {text!r}")
    return values * 3 if len(values) == 1 else values


def normalisation(spec: Spec, default: Normalisation | None) -> Normalisation:
    """(mean, std) from ?norm=NAME or ?mean=..&std=.., else `default`: the one the weights are known to expect.

    With no default (a bare program or user code, whose training the harness cannot know) the spec must say it.
    """
    given = [k for k in ("norm", "mean", "std") if k in spec.options]
    if not given:
        if default is None:
            raise SpecError(f"{spec} does not say how its input is normalised; add {NORM_CHOICES} (?norm=none for "
                            "a model that takes raw [0, 1] pixels)")
        return default
    if given not in (["norm"], ["mean", "std"]):
        raise SpecError(f"{spec} gives {', '.join(f'?{k}=' for k in given)}; use either ?norm=NAME or both "
                        "?mean=a,b,c&std=a,b,c")
    if given == ["mean", "std"]:
        return _floats(spec.options["mean"], "mean"), _floats(spec.options["std"], "std")
    name = spec.options["norm"]
    if name not in NORMALISATIONS:
        raise SpecError(f"unknown ?norm={name}; use {NORM_CHOICES}")
    return NORMALISATIONS[name]


def _int(spec: Spec, key: str, default: int | None) -> int | None:
    value = spec.options.get(key)
    return default if value is None else parse_int(value, 1, f"?{key}=")


def _input_size(spec: Spec, default: tuple[int, int] | None) -> tuple[int, int] | None:
    size = _int(spec, "input_size", None)
    return (size, size) if size else default


def _maybe_weights(net: nn.Module, spec: Spec, trust: bool, default: Path | None = None) -> None:
    source = spec.options.get("weights", str(default) if default else "none")
    if source != "none":
        apply_state_dict(net, read_state_dict(source, trust), source)


def load_builtin(spec: Spec, trust: bool) -> Classifier:
    if spec.target not in BUILTIN_MODELS:
        raise SpecError(f"unknown built-in model {spec.target!r}; known: {', '.join(BUILTIN_MODELS)} "
                        "(see `rbl list models`)")
    entry = BUILTIN_MODELS[spec.target]
    num_classes = _int(spec, "num_classes", 10)
    net = load_target(entry.factory)(num_classes=num_classes)
    _maybe_weights(net, spec, trust, default=entry.weights)
    mean, std = normalisation(spec, (entry.mean, entry.std))
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
    mean, std = normalisation(spec, NORMALISATIONS["imagenet"])
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
    mean, std = normalisation(spec, (tuple(cfg.get("mean", NORMALISATIONS["imagenet"][0])),
                                     tuple(cfg.get("std", NORMALISATIONS["imagenet"][1]))))
    return Classifier(net, net.num_classes, mean, std, _input_size(spec, size), timm_features, str(spec))


def load_torchscript(spec: Spec, trust: bool) -> Classifier:
    existing_file(spec.target, "TorchScript file", "pass the file written by torch.jit.save")
    try:
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice would break the one-line errors
            warnings.simplefilter("ignore", FutureWarning)
            net = torch.jit.load(spec.target, map_location="cpu")
    except RuntimeError as exc:
        raise ModelError(f"cannot load {spec.target} as TorchScript ({error_reason(exc)}); "
                         "save it with torch.jit.save (or use export:PATH.pt2 for torch.export programs)") from None
    mean, std = normalisation(spec, None)
    return Classifier(net, _int(spec, "num_classes", None), mean, std, _input_size(spec, None), None, str(spec))


def _option_value(text: str) -> int | float | str:
    """A factory keyword from the spec's query: an int, else a float, else the text itself."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def _import_from_cwd(module_name: str) -> ModuleType:
    """Import `module_name` with the current directory first on the import path, as `python -m` has it.

    The directory stays on the path only when the module came from there: worker processes import it again to
    unpickle the model's classes.
    """
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.remove(cwd)
    top = sys.modules[module_name.partition(".")[0]].__spec__
    places = (top.submodule_search_locations or [top.origin or ""]) if top is not None else []
    if any(Path(p).parent == Path(cwd) for p in places) and cwd not in sys.path:
        sys.path.insert(0, cwd)
    return module


def _factory_keywords(factory: object) -> set[str] | None:
    """The keyword parameters of `factory`, or None when it takes **kwargs or its signature is unknown."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def load_python(spec: Spec, trust: bool) -> Classifier:
    module_name, _, attr = spec.target.partition(":")
    try:
        factory = getattr(_import_from_cwd(module_name), attr) if attr else None
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"cannot import {spec.target} ({exc}); use python:package.module:factory with the "
                        "package in the current directory or on PYTHONPATH") from None
    except Exception as exc:  # the module's own code may raise anything; --debug shows its traceback
        raise ModelError(f"importing {module_name} raised {error_reason(exc)}; fix the module") from exc
    if not callable(factory):
        raise SpecError(f"python:{spec.target} does not name a callable; use python:package.module:factory")
    keywords = _factory_keywords(factory)
    if keywords is not None:
        check_options(spec.options, COMMON_OPTIONS | keywords, f"python:{spec.target}")
    kwargs = {k: _option_value(v) for k, v in spec.options.items() if k not in COMMON_OPTIONS}
    try:
        net = factory(**kwargs)
    except Exception as exc:  # user code may raise anything; --debug shows its traceback
        raise ModelError(f"python:{spec.target} raised {error_reason(exc)} when called with {kwargs}; "
                         "fix the factory or the spec's ?key=value options") from exc
    if isinstance(net, Classifier):
        ignored = sorted(k for k, v in spec.options.items()
                         if k in COMMON_OPTIONS and k not in COMPRESSION and (k, v) != ("weights", "none"))
        if ignored:  # (--arch adds ?weights=none: the file's weights then go into the Classifier's network)
            raise SpecError(f"python:{spec.target} returns a Classifier, which sets its own weights, normalisation, "
                            f"size and classes; drop {', '.join(f'?{k}=' for k in ignored)}")
        return net
    if not isinstance(net, nn.Module):
        raise ModelError(f"{spec.target} returned {type(net).__name__}, not a torch.nn.Module")
    _maybe_weights(net, spec, trust)
    mean, std = normalisation(spec, None)
    return Classifier(net, _int(spec, "num_classes", None), mean, std, _input_size(spec, None),
                      HeadInputFeatures(spec.options.get("features")), str(spec))
