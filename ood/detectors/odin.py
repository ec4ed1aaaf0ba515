"""ODIN: temperature-scaled MSP after one signed input-gradient step (needs the model and the images).

The step is taken in [0, 1] pixel space: x' = x − ε·sign(∇_x CE(f(x)/T, ŷ)), with sign(0) = +1 as OpenOOD.
Normalisation lives inside the Classifier, so this equals OpenOOD and the original ODIN code, which step
ε·sign/std in normalised space (= ε in pixel space). pytorch-ood without `norm_std` steps ε in normalised
space instead (= ε·std in pixels), which is a different, smaller perturbation. x' is not clamped to [0, 1],
as in both references.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_local.models import Classifier
from robustbench_local.models.classifier import frozen_mode, to_tensor

from .. import defaults
from ..representations import Representations
from .base import Detector


@dataclass
class ODIN(Detector):
    """Negative max softmax at temperature T of the input moved ε against the gradient of its own label."""

    temperature: float = defaults.ODIN_TEMPERATURE
    eps: float = defaults.ODIN_EPS
    name = "odin"

    def score(self, reps: Representations) -> np.ndarray:
        raise TypeError("odin needs the model and the images: call score_inputs(model, batches)")

    def perturb(self, model: Classifier, x: torch.Tensor) -> torch.Tensor:
        """The ODIN input x − ε·sign(∇x), computed per sample (the loss is a sum, so batches do not mix)."""
        x = x.detach().requires_grad_(True)
        logits = model(x) / self.temperature
        loss = F.cross_entropy(logits, logits.argmax(dim=1), reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
        direction = torch.where(grad >= 0, 1.0, -1.0)
        return (x - self.eps * direction).detach()

    def score_inputs(self, model: Classifier, batches: Iterable[np.ndarray]) -> np.ndarray:
        """ODIN scores (higher = more OOD) of a stream of uint8 NHWC batches."""
        out = []
        with frozen_mode(model):
            for images in batches:
                x = self.perturb(model, to_tensor(images, model.device))
                with torch.no_grad():
                    probs = F.softmax(model(x).double() / self.temperature, dim=1)
                out.append(-probs.max(dim=1).values.cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)
