"""Extract once, score many: one pass over a data set gives the logits and penultimate features that feed
every non-gradient detector, plus the linear head (W, b) that ReAct, ViM, DICE and ASH re-apply."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from robustbench_local.errors import ModelError
from robustbench_local.models import Classifier
from robustbench_local.models.classifier import check_logits, to_tensor


@dataclass(frozen=True)
class Head:
    """The classifier's last linear layer: logits = features @ weight.T + bias (float64)."""

    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weight.T + self.bias


@dataclass(frozen=True)
class Representations:
    """What one forward pass over a data set yields; `features`/`head` are None when the model hides them."""

    logits: np.ndarray
    features: np.ndarray | None = None
    labels: np.ndarray | None = None
    head: Head | None = None

    def __len__(self) -> int:
        return len(self.logits)

    def need_features(self, detector: str) -> np.ndarray:
        if self.features is None:
            raise ModelError(f"detector {detector!r} needs penultimate features, which this model does not expose; "
                             "load it with a torchvision/timm/builtin spec or ?features=LAYER, or pick a logit "
                             "detector (msp, maxlogit, energy)")
        return self.features

    def need_head(self, detector: str) -> Head:
        if self.head is None:
            raise ModelError(f"detector {detector!r} re-applies the classifier head, but the model's logits are "
                             "not the output of a final nn.Linear on its features; pick another detector")
        return self.head


def last_linear(model: Classifier) -> nn.Linear | None:
    """The last nn.Linear module of the wrapped network (the classifier head candidate)."""
    linears = [m for m in model.net.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


@dataclass
class _Probe:
    """The input and output of the head candidate during the last forward pass (see `probing`)."""

    inputs: torch.Tensor | None = None
    output: torch.Tensor | None = None


@contextmanager
def probing(module: nn.Module | None) -> Iterator[_Probe]:
    """Record `module`'s input and output while the block runs (nothing when `module` is None)."""
    probe = _Probe()

    def hook(_module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        probe.inputs, probe.output = inputs[0], output

    handle = module.register_forward_hook(hook) if module is not None else None
    try:
        yield probe
    finally:
        if handle is not None:
            handle.remove()


def _feature_mode(model: Classifier, x: torch.Tensor, probe: _Probe, logits: torch.Tensor) -> str:
    """'hook' when the head's output is the logits and its input equals `model.features(x)`; 'separate' when
    features come from their own call; 'none' when the model exposes none (decided once, on the first batch)."""
    try:
        features = model.features(x)
    except ModelError:
        return "none"
    same_head = probe.output is not None and probe.output.shape == logits.shape and torch.equal(probe.output, logits)
    if same_head and torch.allclose(features, probe.inputs.flatten(1), atol=1e-6):
        return "hook"
    return "separate"


@torch.no_grad()
def extract(model: Classifier, batches: Iterable[np.ndarray], labels: np.ndarray | None = None) -> Representations:
    """Logits and (when available) penultimate features of a stream of uint8 NHWC batches, in one forward pass
    per batch; only the N x D features and N x K logits are kept.

    When the head's input is the model's feature layer (the usual case: builtin, torchvision, timm), features
    are read by a hook during the logit pass; otherwise `model.features` runs alongside.
    """
    linear = last_linear(model)
    logits_out, feats_out, mode = [], [], None
    for images in batches:
        x = to_tensor(images, model.device)
        with probing(linear) as probe:
            logits = model(x)
        mode = mode or _feature_mode(model, x, probe, logits)
        logits_out.append(logits.float().cpu())
        if mode == "hook":
            feats_out.append(probe.inputs.flatten(1).float().cpu())
        elif mode == "separate":
            feats_out.append(model.features(x).float().cpu())
    logits_np = torch.cat(logits_out).numpy() if logits_out else np.zeros((0, model.num_classes), np.float32)
    check_logits(logits_np, model.name)
    features = torch.cat(feats_out).numpy() if feats_out else None
    head = None
    if mode == "hook":
        bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
        head = Head(linear.weight.detach().double().cpu().numpy(), bias.detach().double().cpu().numpy())
    return Representations(logits_np, features, labels, head)
