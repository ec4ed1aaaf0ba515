"""EvalSpec: what to evaluate, from CLI flags or a YAML file."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..metrics.conformal import ALPHAS
from ..parsing import check_levels
from ..typedfields import check_fields
from ..yamlfile import read_yaml


@dataclass
class EvalSpec:
    """Model × data × suites × options × seed. `calibration_data` 'auto' means the data spec's val split.

    Every field is checked against its type when the spec is made (from flags, a YAML file or Python), so a
    setting of the wrong kind (`trust_checkpoint: "no"`, `batch_size: 0`) fails in one line naming it.
    """

    model: str = field(metadata={"example": "builtin:digits-cnn"})
    data: str = field(metadata={"example": "builtin:digits"})
    suites: list[str] = field(default_factory=lambda: ["clean"], metadata={"minimum": 1, "example": "[clean, attacks]"})
    seed: int = 0
    limit: int | None = field(default=None, metadata={"minimum": 1, "example": 200})
    batch_size: int = field(default=256, metadata={"minimum": 1, "example": 64})
    options: dict[str, Any] = field(default_factory=dict, metadata={"example": "{eps: 8/255, attack: pgd}"})
    arch: str | None = field(default=None, metadata={"example": "torchvision:resnet18?num_classes=10"})
    trust_checkpoint: bool = False
    calibration_data: str | None = "auto"
    data_workers: int | None = None  # decode threads (None: the CPUs available); never changes a number
    conformal_alpha: list[float] = field(default_factory=lambda: list(ALPHAS),  # conformal sets' miscoverage levels
                                         metadata={"minimum": 1, "example": "[0.1, 0.05]"})

    def __post_init__(self) -> None:
        check_fields(self)
        check_levels(self.conformal_alpha, "conformal_alpha")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> EvalSpec:
        """Read a YAML mapping with EvalSpec's field names; non-None `overrides` win over the file.

        Every error names the file and the setting: the file's suite options are read and planned now.
        """
        from ..suites import get_suite
        from .execute import plan, resolve_options

        raw = read_yaml(path, "config file", "check the --config path")
        if not isinstance(raw, dict):
            raise SpecError(f"config file {path} must be a mapping of settings (model:, data:, suites:, ...)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(raw) - known))
        if unknown:
            raise SpecError(f"unknown key(s) {', '.join(unknown)} in {path}; known: {', '.join(sorted(known))}")
        if isinstance(raw.get("suites"), str):
            raw["suites"] = [s.strip() for s in raw["suites"].split(",") if s.strip()]
        file_options = {} if raw.get("options") is None else raw["options"]
        merged = {**raw, **{k: v for k, v in overrides.items() if v is not None and k != "options"}}
        if isinstance(file_options, dict):  # anything else is named by the field check below
            merged["options"] = {**file_options, **(overrides.get("options") or {})}
        for key in ("model", "data"):
            if key not in merged:
                raise SpecError(f"no {key} given: set `{key}:` in {path} or pass it on the command line")
        try:
            spec = cls(**merged)
            resolve_options([get_suite(name) for name in spec.suites], file_options,
                            where=lambda opt: f"options: {opt.name}:")
            plan(spec)  # settings that must agree with each other (an eps and its norm)
        except SpecError as exc:
            raise SpecError(f"config file {path}: {exc}") from None
        return spec
