"""Model spec schemes with the ?options each reads, and the built-in model zoo (architectures with weights shipped
inside the package), as plain data: listing them imports no torch."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
NORM = ("norm", "mean", "std")
COMPRESSION = ("prune_channels", "prune", "quantize")  # applied by load_model to the loaded network (models/compress.py)
PRUNE_METHODS = ("prune", "prune-channels")  # float networks whose weights are saved as safetensors
COMPRESSION_METHODS = ("int8-dynamic", "int8-static", *PRUNE_METHODS)  # of `rbl compress`
OPTIONS = {  # scheme -> the ?options its loader reads; python: checks them against its factory's keywords
    "builtin": (*NORM, "weights", "input_size", "num_classes", *COMPRESSION),
    "torchvision": (*NORM, "weights", "input_size", "num_classes", "features", *COMPRESSION),
    "timm": (*NORM, "weights", "input_size", "num_classes", *COMPRESSION),
    "torchscript": (*NORM, "input_size", "num_classes"),
    "export": (*NORM, "num_classes"),
    "python": None,
}


@dataclass(frozen=True)
class BuiltinModel:
    """An architecture ("module:class", imported when the model is built), its normalisation and the weights file
    that the `rbl train` command regenerates."""

    name: str
    factory: str
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


DIGITS_CNN = "robustbench_local.models.digits_cnn:DigitsCNN"
BUILTIN_MODELS = {m.name: m for m in (
    BuiltinModel("digits-cnn", DIGITS_CNN, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "builtin:digits",
                 "small CNN trained with plain supervised learning on built-in digits"),
    BuiltinModel("digits-cnn-at", DIGITS_CNN, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "builtin:digits",
                 "the same CNN trained with PGD-AT (L∞, eps 0.1) on built-in digits"),
)}
