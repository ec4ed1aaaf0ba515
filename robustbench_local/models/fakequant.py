"""Fake-quantised float surrogates of int8 networks: the int8 network's arithmetic in float, differentiable.

An int8 network is piecewise constant in its input, so its input gradient is zero almost everywhere. The surrogate
computes the same function in float (weights equal to the int8 weights, activations rounded to the same grid with
`torch.fake_quantize_*`) and takes the straight-through estimator's gradient: rounding passes the gradient through
unchanged, clipping outside the quantised range stops it (Bengio et al. 2013; BPDA, Athalye et al. 2018, uses it
for the backward pass while the int8 network gives the forward one).

Static int8 (FX): the calibrated `prepare_fx` graph with every observer replaced by a fixed fake-quantiser of its
scale and zero point, and every conv/linear weight rounded with the qconfig's weight observer (what `convert_fx`
stores). Dynamic int8: the float network with each Linear fake-quantising its input per image with the range the
x86 kernel chooses (reduce_range: levels 0..127), then multiplying by the dequantised int8 weights.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

DYNAMIC_LEVELS = 127  # x86 dynamic int8 quantises a Linear's input with reduce_range=True: levels 0..127
ZERO_SCALE = 0.1  # the kernel's scale for an all-zero input (fbgemm ChooseQuantizationParams)


class StaticFakeQuant(nn.Module):
    """Rounds to the grid of one calibrated activation quantiser (per tensor, fixed scale and zero point)."""

    def __init__(self, scale: torch.Tensor, zero_point: torch.Tensor, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().float().reshape(1))
        self.register_buffer("zero_point", zero_point.detach().int().reshape(1))
        info = torch.iinfo(dtype)  # the stored tensor's range: values beyond the observed one still fit in it
        self.qmin, self.qmax = info.min, info.max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.qmin, self.qmax)


class DynamicFakeQuantLinear(nn.Module):
    """A dynamic int8 Linear in float: the input rounded per image to the kernel's 0..127 grid over its own range
    (zero included), times the dequantised int8 weights."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().float())
        self.register_buffer("bias", None if bias is None else bias.detach().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().flatten(1)
        low, high = flat.amin(dim=1).clamp(max=0), flat.amax(dim=1).clamp(min=0)
        scale = (high - low) / DYNAMIC_LEVELS
        scale = torch.where(scale > 0, scale, torch.full_like(scale, ZERO_SCALE))
        from_min, from_max = -low / scale, DYNAMIC_LEVELS - high / scale  # the zero point with the smaller error
        zero = torch.where(low.abs() / scale < DYNAMIC_LEVELS + high.abs() / scale, from_min, from_max)
        zero = zero.round().clamp(0, DYNAMIC_LEVELS).int()
        rounded = torch.fake_quantize_per_channel_affine(x, scale, zero, 0, 0, 255)
        return nn.functional.linear(rounded, self.weight, self.bias)


def static_surrogate(prepared: nn.Module, weight_observer: type | None) -> nn.Module:
    """The fake-quantised copy of a calibrated `prepare_fx` graph (`weight_observer`: the qconfig's weight factory)."""
    from torch.ao.quantization.observer import ObserverBase

    surrogate = copy.deepcopy(prepared)
    for name, module in list(surrogate.named_modules(remove_duplicate=False)):  # shared observers under each name
        if isinstance(module, ObserverBase):
            scale, zero_point = module.calculate_qparams()
            surrogate.set_submodule(name, StaticFakeQuant(scale, zero_point, module.dtype))
        elif isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear) and weight_observer is not None:
            observer = weight_observer()
            observer(module.weight)
            scale, zero_point = observer.calculate_qparams()
            with torch.no_grad():
                rounded = (torch.fake_quantize_per_channel_affine(module.weight, scale.float(), zero_point.int(),
                                                                  observer.ch_axis, observer.quant_min,
                                                                  observer.quant_max)
                           if observer.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine) else
                           torch.fake_quantize_per_tensor_affine(module.weight, float(scale), int(zero_point),
                                                                 observer.quant_min, observer.quant_max))
                module.weight.copy_(rounded)
    return surrogate.eval()


def dynamic_surrogate(net: nn.Module, quantised: nn.Module) -> nn.Module:
    """The float `net` with each Linear that `quantize_dynamic` made int8 (in `quantised`, same layout) replaced by
    its fake-quantised twin."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    surrogate = copy.deepcopy(net).eval()
    for name, module in quantised.named_modules():
        if isinstance(module, DynamicLinear):
            twin = DynamicFakeQuantLinear(module.weight().dequantize(), module.bias())
            if not name:  # the network is one Linear
                return twin
            surrogate.set_submodule(name, twin)
    return surrogate
