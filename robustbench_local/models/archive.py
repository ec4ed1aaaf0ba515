"""What a `.pt2` archive may hold before torch.export.load opens it: tensors and JSON, nothing unpickled.

torch.export.load unpickles an archive's sample inputs (falling back to `weights_only=False`), pickled
weights and constants, custom and opaque objects, and loads AOTInductor shared libraries. An archive is
let through only when every member is one of the plain kinds below and its sample inputs load with
torch's safe unpickler, so torch's own load never reaches a path that could run code.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import torch

from ..errors import ModelError
from .checkpoint import error_reason, refusal, refused_global

NAME = r"[\w.-]+"
PLAIN_MEMBERS = re.compile(  # raw tensor bytes, JSON and text: read by torch without unpickling
    rf"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|models/{NAME}\.json"
    r"|data/weights/weight_\d+|data/constants/tensor_constant_\d+|extra/.+")
PAYLOAD_CONFIG = re.compile(rf"data/(weights/{NAME}_weights|constants/{NAME}_constants)_config\.json")
SAMPLE_INPUTS = re.compile(rf"data/sample_inputs/{NAME}\.pt")
RAW_CONSTANT = "tensor_constant_"
REEXPORT = "re-export the model with torch.export.save from plain tensors"


def not_an_export(path: Path, reason: str) -> ModelError:
    """The error for a file that is no torch.export archive."""
    return ModelError(f"cannot load {path} as a torch.export program ({reason[:160]}); save it with torch.export.save")


def check_pt2_members(path: Path) -> None:
    """Refuse (CheckpointRefused) an archive with any member torch would unpickle or run; see the module doc."""
    try:
        reader = torch._C.PyTorchFileReader(str(path))  # the reader torch.export.load uses
        names = reader.get_all_records()
    except RuntimeError as exc:
        raise not_an_export(path, error_reason(exc)) from None
    _same_members_for_zipfile(path, names)
    for name in names:
        if PLAIN_MEMBERS.fullmatch(name):
            continue
        if PAYLOAD_CONFIG.fullmatch(name):
            _check_payload_config(path, name, reader.get_record(name))
        elif SAMPLE_INPUTS.fullmatch(name):
            _check_sample_inputs(path, name, reader.get_record(name))
        else:
            raise refusal(path, f"its member {name} is not plain tensor data (torch would unpickle or run it)", REEXPORT)


def _same_members_for_zipfile(path: Path, names: list[str]) -> None:
    """torch falls back to reading old archives with Python's zipfile: both readers must see the same members."""
    try:
        with zipfile.ZipFile(path) as archive:
            listed = [n.split("/", 1)[-1] for n in archive.namelist()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise not_an_export(path, error_reason(exc)) from None
    if sorted(listed) != sorted(names) or len(set(names)) != len(names):
        raise refusal(path, "its zip directory lists duplicate or inconsistent members", REEXPORT)


def _check_payload_config(path: Path, name: str, raw: bytes) -> None:
    try:
        entries = json.loads(raw)["config"].values()
        pickled = [e["path_name"] for e in entries if e["use_pickle"] or
                   (name.startswith("data/constants/") and not e["path_name"].startswith(RAW_CONSTANT))]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise not_an_export(path, f"{name}: {error_reason(exc)}") from None
    if pickled:
        raise refusal(path, f"{name} marks {pickled[0]} as a pickled object (torch unpickles it with weights_only=False)",
                      REEXPORT)


def _check_sample_inputs(path: Path, name: str, raw: bytes) -> None:
    try:
        torch.load(io.BytesIO(raw), weights_only=True)  # exactly the first try of torch.export.load
    except Exception as exc:  # noqa: BLE001  (the safe unpickler raises many types for what it refuses)
        found = refused_global(exc)
        why = f"it refers to {found}" if found else error_reason(exc, last=True)
        raise refusal(path, f"its sample inputs {name} are not plain tensors ({why})", REEXPORT) from None

