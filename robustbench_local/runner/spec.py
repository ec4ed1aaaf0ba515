"""EvalSpec: what to evaluate, from CLI flags or a YAML file."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..yamlfile import read_yaml


@dataclass
class EvalSpec:
    """Model × data × suites × options × seed. `calibration_data` 'auto' means the data spec's val split."""

    model: str
    data: str
    suites: list[str] = field(default_factory=lambda: ["clean"])
    seed: int = 0
    limit: int | None = None
    batch_size: int = 256
    options: dict[str, Any] = field(default_factory=dict)
    arch: str | None = None
    trust_checkpoint: bool = False
    calibration_data: str | None = "auto"
    data_workers: int | None = None  # decode threads (None: the CPUs available); never changes a number

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> EvalSpec:
        """Read a YAML mapping with EvalSpec's field names; non-None `overrides` win over the file."""
        raw = read_yaml(path, "config file", "check the --config path")
        if not isinstance(raw, dict):
            raise SpecError(f"config file {path} must be a mapping of settings (model:, data:, suites:, ...)")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SpecError(f"unknown key(s) {', '.join(sorted(unknown))} in {path}; known: {', '.join(sorted(known))}")
        if isinstance(raw.get("suites"), str):
            raw["suites"] = [s.strip() for s in raw["suites"].split(",")]
        merged = {**raw, **{k: v for k, v in overrides.items() if v is not None and k != "options"}}
        merged["options"] = {**raw.get("options", {}), **(overrides.get("options") or {})}
        for key in ("model", "data"):
            if key not in merged:
                raise SpecError(f"no {key} given: set `{key}:` in {path} or pass it on the command line")
        return cls(**merged)
