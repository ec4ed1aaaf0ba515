"""The one classifier wrapper: [0,1] pixels in, logits out, normalisation inside, features on request."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import batched
from ..errors import ModelError, RBLError
from ..fingerprint import hash_arrays, hash_module
from .checkpoint import error_reason

if TYPE_CHECKING:
    from .proxies import GradientProxies

FeatureFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
PROBE_SIZE = (224, 224)  # the image size of the class-count probe when the model declares none


class Classifier(nn.Module):
    """Wraps `net` (which takes normalised input) so callers pass float (N, 3, H, W) in [0, 1].

    `mean`/`std` are the normalisation `net` was trained with (per channel; (0, 0, 0)/(1, 1, 1) for raw pixels):
    there is no default, because a wrong one costs accuracy without any error. `num_classes` None: read from the
    logits for one black image. `input_size` (H, W) resizes images of another size on the way in (None: any size);
    `feature_fn(net, normalised_x)` returns penultimate features, or None when unavailable. `proxies`: the float
    models that stand in for an int8 network's gradient (its float original and its fake-quantised surrogate).
    """

    def __init__(self, net: nn.Module, num_classes: int | None, mean: tuple[float, ...], std: tuple[float, ...],
                 input_size: tuple[int, int] | None = None, feature_fn: FeatureFn | None = None,
                 name: str = "model", proxies: GradientProxies | None = None) -> None:
        super().__init__()
        self.net = net
        self.num_classes = num_classes
        self.input_size = input_size
        self.feature_fn = feature_fn
        self.name = name
        self.proxies = proxies
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.eval()
        if num_classes is None:
            with torch.no_grad():
                self.num_classes = int(self(torch.zeros(1, 3, *(input_size or PROBE_SIZE), device=self.device)).shape[1])

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, num_classes={self.num_classes}, input_size={self.input_size}, "
                f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}")

    @property
    def int8(self) -> bool:
        """Whether the network holds int8-packed layers: quantised kernels run on the CPU only, and the network is
        piecewise constant in its input (its input gradient is zero almost everywhere)."""
        return holds_int8(self.net)

    @property
    def device(self) -> torch.device:
        """Where the parameters (or, for parameter-free modules, the buffers) live."""
        return next(iter(self.parameters()), self.mean).device

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and tuple(x.shape[-2:]) != tuple(self.input_size):
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) for pixels `x` in [0, 1]; whatever else the network returns or raises is a ModelError.

        Every caller (predict, attacks, OOD extraction, corruption streaming) reaches the network through here.
        An int8 network's input gradient is the true one, zero (autograd cannot pass quantised kernels): gradient
        attacks run on it and find nothing, and the attacks suite's masking flags say so.
        """
        wants_gradient = x.requires_grad and torch.is_grad_enabled()
        int8 = wants_gradient and self.int8
        try:
            with torch.no_grad() if int8 else nullcontext():  # (dynamic int8 would record a graph it cannot pass)
                out = self.net(self._normalise(x))
        except RBLError:
            raise
        except Exception as exc:  # user networks raise anything; --debug shows the traceback
            hint = "lower --batch-size" if isinstance(exc, torch.OutOfMemoryError) else ("check that it takes "
                   "3-channel images of this size (?input_size=N resizes them on the way in); --debug shows where")
            raise ModelError(f"{self.name} raised {error_reason(exc)} on a batch of shape {tuple(x.shape)}; "
                             f"{hint}") from exc
        if int8 and isinstance(out, torch.Tensor):
            out = out + 0.0 * x.flatten(1).sum(dim=1, keepdim=True)  # d(int8 logits)/dx = 0 almost everywhere
        elif wants_gradient and isinstance(out, torch.Tensor) and not out.requires_grad:
            raise ModelError(f"{self.name} passes no gradient back to its input (its forward leaves autograd), "
                             "so gradient attacks and input preprocessing cannot run on it; evaluate it with "
                             "--suite clean,corruptions, or with --attack square")
        expected = f"({len(x)}, {self.num_classes or 'K'})"
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            raise ModelError(f"{self.name} returned {describe(out)} for a batch of {len(x)}; its forward must return "
                             f"one float logits tensor {expected} (wrap it to return the logits alone)")
        if out.ndim != 2 or out.shape[0] != len(x) or self.num_classes not in (None, out.shape[1]):
            raise ModelError(f"{self.name} returned {describe(out)} for a batch of {len(x)}, expected logits of shape "
                             f"{expected}; check ?num_classes= and the model's head")
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, D) for pixels `x` in [0, 1]."""
        if self.feature_fn is None:
            raise ModelError(f"{self.name} cannot return penultimate features; load it from weights with "
                             "--arch (or a timm/torchvision spec) so its layers are visible")
        return self.feature_fn(self.net, self._normalise(x)).flatten(1)

    @property
    def fingerprint(self) -> str:
        """Digest of the weights and the normalisation."""
        return hash_module(self.net) + hash_arrays(self.mean.cpu().numpy(), self.std.cpu().numpy())

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Logits (N, K) as float32 numpy for uint8 NHWC images, batched, in eval mode."""
        return self.predict_stream(batched(images, batch_size))

    @torch.no_grad()
    def predict_stream(self, batches: Iterable[np.ndarray]) -> np.ndarray:
        """Logits (N, K) as float32 numpy for a stream of uint8 NHWC batches (e.g. `DataSource.batches`)."""
        with frozen_mode(self):  # eval mode even if a caller left the model training; restored after
            chunks = [self(to_tensor(images, self.device)).float().cpu() for images in batches]
        logits = torch.cat(chunks).numpy() if chunks else np.zeros((0, self.num_classes), np.float32)
        check_logits(logits, self.name)
        return logits


def holds_int8(net: nn.Module) -> bool:
    """Whether `net` (eager, FX or TorchScript) holds int8-packed conv/linear layers."""
    return any(isinstance(getattr(m, "_packed_params", None), torch.ScriptObject) for m in net.modules())


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC numpy -> float NCHW tensor in [0, 1] on `device` (the one place this conversion lives); to a CUDA
    device through pinned memory with a non-blocking copy. The tensor keeps the images' channels-last memory layout,
    which convolutions run fastest on (oneDNN on CPU: 10-30% per pass for the CNNs measured in bench_attacks)."""
    host = torch.from_numpy(np.ascontiguousarray(images))
    if torch.device(device).type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float NCHW tensor in [0, 1] -> uint8 NHWC numpy, rounding to the nearest level."""
    return x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def describe(out: object) -> str:
    """What a network returned, in a few words: 'a float32 tensor of shape (1, 10)', 'a tuple of 2 (...)'."""
    if isinstance(out, torch.Tensor):
        dtype = str(out.dtype).removeprefix("torch.")
        return f"{'an' if dtype[0] in 'aeiou' else 'a'} {dtype} tensor of shape {tuple(out.shape)}"
    if isinstance(out, tuple | list):
        return f"a {type(out).__name__} of {len(out)} ({', '.join(describe(o) for o in out[:3])}{', ...' * (len(out) > 3)})"
    if isinstance(out, dict):
        return f"a {type(out).__name__} with keys {', '.join(map(str, list(out)[:5]))}"
    return f"a {type(out).__name__}"


def check_logits(logits: np.ndarray, name: str) -> None:
    """Raise ModelError on non-finite logits (their shape is checked by `Classifier.forward`, batch by batch)."""
    if not np.isfinite(logits).all():
        bad = int((~np.isfinite(logits)).any(axis=1).sum())
        raise ModelError(f"{name} returned non-finite logits for {bad} of {len(logits)} samples; "
                         "check the checkpoint and the input normalisation")


@contextmanager
def frozen_mode(model: nn.Module, train: bool = False) -> Iterator[nn.Module]:
    """Run a block with `model` in eval (or train) mode and restore every submodule's mode afterwards."""
    modes = {m: m.training for m in model.modules()}
    model.train(train)
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode
