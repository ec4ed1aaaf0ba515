"""Safe reading of weight files: safetensors, or torch files with weights_only=True unless trusted."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..errors import CheckpointRefused, ModelError

UNSAFE_GLOBAL = re.compile(r"(?:GLOBAL|Unsupported class) ([\w.]+)")  # how torch names the refused global
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")


def read_state_dict(path: str | Path, trust: bool = False) -> dict[str, torch.Tensor]:
    """A flat state dict from `.safetensors` or a torch file; pickled code is refused unless `trust`."""
    path = existing_file(path, "checkpoint", "pass the weights file (.safetensors or .pt) inside it")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"cannot read {path} as safetensors ({exc}); re-save it with "
                             "safetensors.torch.save_file") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        found = refused_global(exc)
        if trust or found is None:
            raise ModelError(f"cannot read checkpoint {path} ({error_reason(exc, last=True)}); is it a torch file?") from None
        raise refusal(path, f"it holds pickled Python objects that could run code on load (it refers to {found})",
                      "convert it to safetensors") from None
    except (RuntimeError, EOFError, OSError, KeyError, IndexError, ValueError) as exc:  # torch's many ways to fail
        raise ModelError(f"cannot read checkpoint {path} ({error_reason(exc, last=True)}); is it a torch file?") from None
    return unwrap_state_dict(obj, path)


def existing_file(path: str | Path, what: str, fix_for_directory: str) -> Path:
    """`path` if it is a file; else a ModelError saying that it is missing, or a directory (`fix_for_directory`)."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{what} {path} is a directory; {fix_for_directory}")
    if not path.exists():
        raise ModelError(f"{what} {path} does not exist; check the path")
    if not path.is_file():
        raise ModelError(f"{what} {path} is not a regular file; pass the file itself")
    return path


def refused_global(exc: Exception) -> str | None:
    """The global that torch's safe unpickler refused (e.g. `eval`), or None when it failed for another reason."""
    found = UNSAFE_GLOBAL.search(str(exc))
    return found.group(1) if found else None


def refusal(path: Path, why: str, fix: str) -> CheckpointRefused:
    """The error for a file whose loading could run code: `why`, then `fix` or --trust-checkpoint."""
    return CheckpointRefused(f"refusing {path}: {why}; {fix}, or pass --trust-checkpoint only if you trust its source")


def error_reason(exc: Exception, last: bool = False) -> str:
    """One line for an error message: the exception's first (or last) non-empty line, or just its type."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith("Check the doc")]
    return f"{type(exc).__name__}: {lines[-1 if last else 0][:160]}" if lines else type(exc).__name__


def unwrap_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Find the tensor dict in common checkpoint layouts and strip DataParallel's `module.` prefix."""
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    for key in NESTED_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path} does not contain a state dict of tensors; save model.state_dict()")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def apply_state_dict(net: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` strictly, with an error that names missing/unexpected keys and shape mismatches."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = [line.strip() for line in str(exc).splitlines() if line.strip()][1:3]
        raise ModelError(f"weights in {source} do not fit the architecture ({'; '.join(first)[:300]}); "
                         "check --arch and ?num_classes=") from None
