"""Model specs -> Classifier: one entry point, `load_model`, over a registry of spec schemes."""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import torch

from ..device import pick_device
from ..errors import SpecError
from ..model_catalog import BUILTIN_MODELS, OPTIONS, PRUNE_METHODS
from ..seeding import seeded_torch
from ..specs import Spec, parse_spec
from .checkpoint import apply_state_dict, read_state_dict
from .classifier import Classifier, check_logits, frozen_mode, to_tensor, to_uint8
from .compress import (
    CARD,
    PerImage,
    SavedProgram,
    compress_from_options,
    load_surrogate,
    read_card,
    torchscript_spec,
)
from .exported import load_export
from .loaders import load_builtin, load_python, load_timm, load_torchscript, load_torchvision
from .proxies import directory_proxies
from .pruning import rebuild_channel_pruned

LOADERS = {
    "builtin": load_builtin,
    "torchvision": load_torchvision,
    "timm": load_timm,
    "torchscript": load_torchscript,
    "export": load_export,
    "python": load_python,
}
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def load_model(spec: str, arch: str | None = None, trust_checkpoint: bool = False,
               device: str | None = None, seed: int = 0) -> Classifier:
    """Load any model spec (see DESIGN §3) as an eval-mode Classifier on the chosen device.

    A bare weights path (`.safetensors`, `.pt`) needs `arch`, itself a spec such as
    `torchvision:resnet18?num_classes=10`; the file's weights replace the architecture's.
    Weights the spec does not load are initialised as after `torch.manual_seed(seed)`, so a run can be repeated
    (and `rbl train --seed S` starts from the model `rbl evaluate --seed S` evaluates).
    """
    with seeded_torch(seed):
        model = _construct(spec, arch, trust_checkpoint)
    return model.to(_model_device(model, device)).eval()


def _model_device(model: Classifier, requested: str | None) -> torch.device:
    """The chosen device; the CPU for int8 models unless another one is asked for, which is refused."""
    if not model.int8:
        return pick_device(requested)
    target = pick_device(requested) if requested or os.environ.get("RBL_DEVICE") else torch.device("cpu")
    if target.type != "cpu":
        raise SpecError(f"{model.name} is int8-quantised and runs on the CPU only; set RBL_DEVICE=cpu or "
                        "leave it unset (device='cpu' in the Python API)")
    return target


def _load_compressed(directory: Path, trust_checkpoint: bool) -> Classifier:
    """A directory written by `rbl compress`: pruned weights into the source architecture, or the int8 program with
    its float original and fake-quantised surrogate as proxies (loaded when an attack asks for them)."""
    card = read_card(directory)
    name = f"{directory} ({card['method']} of {card['source']})"
    weights = str(directory / card["file"])
    if card["method"] in PRUNE_METHODS:
        if card["method"] == "prune":
            model = _construct(weights, card["arch"], trust_checkpoint)
        else:  # the source architecture made as small as the card says, then the weights
            model = _construct(card["arch"], None, trust_checkpoint)
            rebuild_channel_pruned(model, card.get("channels", {}))
            apply_state_dict(model.net, read_state_dict(weights, trust_checkpoint), weights)
        model.name = name
        return model
    spec = torchscript_spec(directory, card)
    loaded = load_torchscript(spec, trust_checkpoint)
    net = SavedProgram(loaded.net, spec.target)
    net = PerImage(net) if card["method"] == "int8-dynamic" else net
    surrogate = partial(load_surrogate, directory, card) if card.get("surrogate") else None
    return Classifier(net, loaded.num_classes, tuple(card["mean"]), tuple(card["std"]), loaded.input_size, None,
                      name, directory_proxies(directory, card, trust_checkpoint, surrogate))


def _construct(spec: str, arch: str | None, trust_checkpoint: bool) -> Classifier:
    if spec.split(":", 1)[0] not in LOADERS and (Path(spec) / CARD).is_file():
        return _load_compressed(Path(spec), trust_checkpoint)
    if spec.split(":", 1)[0] not in LOADERS and Path(spec).is_dir():
        raise SpecError(f"model {spec} is a directory; pass a weights file inside it with --arch (e.g. "
                        f"{Path(spec) / 'best.safetensors'} --arch ARCH) or a model spec (see `rbl list models`)")
    if spec.split(":", 1)[0] not in LOADERS and spec.endswith(WEIGHT_SUFFIXES):
        if arch is None:
            raise SpecError(f"{spec} is a weights file; say which architecture it belongs to with "
                            "--arch (e.g. --arch torchvision:resnet18?num_classes=10)")
        parsed = parse_spec(arch, "model", OPTIONS)
        if "weights" in parsed.options:
            raise SpecError(f"--arch {arch} names weights too; the weights come from {spec}: drop ?weights=")
        parsed = Spec(parsed.scheme, parsed.target, {**parsed.options, "weights": "none"})
        model = LOADERS[parsed.scheme](parsed, trust_checkpoint)
        apply_state_dict(model.net, read_state_dict(spec, trust_checkpoint), spec)
        model.name = f"{Path(spec).name} ({arch})"
    else:
        parsed = parse_spec(spec, "model", OPTIONS)
        model = LOADERS[parsed.scheme](parsed, trust_checkpoint)
    return compress_from_options(model, parsed.options)


__all__ = [
    "BUILTIN_MODELS",
    "LOADERS",
    "OPTIONS",
    "Classifier",
    "check_logits",
    "frozen_mode",
    "load_model",
    "to_tensor",
    "to_uint8",
]
