"""The built-in model zoo: architectures with weights shipped inside the package."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .digits_cnn import DigitsCNN

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"


@dataclass(frozen=True)
class BuiltinModel:
    """An architecture, its normalisation and the weights file that the `rbl train` command regenerates."""

    name: str
    factory: type[nn.Module]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dataset: str
    description: str

    @property
    def weights(self) -> Path:
        return ZOO_DIR / f"{self.name}.safetensors"

    @property
    def card(self) -> dict:
        """The model card written next to the weights (training command, accuracy, versions)."""
        path = ZOO_DIR / f"{self.name}.json"
        return json.loads(path.read_text()) if path.is_file() else {}


BUILTIN_MODELS = {m.name: m for m in (
    BuiltinModel("digits-cnn", DigitsCNN, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "builtin:digits",
                 "small CNN trained with plain supervised learning on built-in digits"),
    BuiltinModel("digits-cnn-at", DigitsCNN, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "builtin:digits",
                 "the same CNN trained with PGD-AT (L∞, eps 0.1) on built-in digits"),
)}
