"""Penultimate-feature extractors for wrapped networks (picklable, so models travel to worker processes)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ModelError


@dataclass(frozen=True)
class HeadInputFeatures:
    """Features = the input of the last nn.Linear (the classifier head), or the output of module `layer`."""

    layer: str | None = None

    def __call__(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        modules = dict(net.named_modules())
        if self.layer is not None:
            if self.layer not in modules:
                raise ModelError(f"no layer named {self.layer!r}; pick one of the module names, e.g. "
                                 f"{', '.join(list(modules)[-4:])}")
            target, take_input = modules[self.layer], False
        else:
            linears = [m for m in modules.values() if isinstance(m, nn.Linear)]
            if not linears:
                raise ModelError("the model has no nn.Linear head to read features from; name a layer with "
                                 "?features=LAYER")
            target, take_input = linears[-1], True
        captured: list[torch.Tensor] = []
        handle = target.register_forward_hook(
            lambda _m, inputs, output: captured.append(inputs[0] if take_input else output))
        try:
            net(x)
        finally:
            handle.remove()
        out = captured[-1]
        return out.mean(dim=(-2, -1)) if out.ndim == 4 else out


def timm_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's pre-logits features: forward_features then the head's pooling."""
    return net.forward_head(net.forward_features(x), pre_logits=True)


@dataclass(frozen=True)
class MethodFeatures:
    """Features from a method of the network, e.g. `penultimate`."""

    method: str

    def __call__(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return getattr(net, self.method)(x)
