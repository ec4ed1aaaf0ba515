"""robustbench-local: robustness evaluation for PyTorch image classifiers. The API is loaded on first access, so
`import robustbench_local` (and the `rbl` CLI's start) imports no torch."""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
_API = {"evaluate": "api", "DataSource": "data", "load_data": "data", "Classifier": "models", "load_model": "models",
        "RunResult": "results", "load_run": "results"}
__all__ = ["Classifier", "DataSource", "RunResult", "evaluate", "load_data", "load_model", "load_run"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
