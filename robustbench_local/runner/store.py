"""The run directory: manifest, temperature, per-task record files (atomic writes, never recomputed)."""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RunError
from ..records import Records

MANIFEST = "manifest.json"
CALIBRATION = "calibration.json"
IDENTITY_KEYS = ("model_fingerprint", "data_fingerprint", "seed")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


class RunStore:
    """Files of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.tasks = self.root / "tasks"

    def read_json(self, name: str) -> dict | None:
        path = self.root / name
        return json.loads(path.read_text()) if path.is_file() else None

    def check_or_write_manifest(self, manifest: dict) -> None:
        """Refuse a run dir that holds another model, data set or seed; otherwise (re)write the manifest."""
        old = self.read_json(MANIFEST)
        if old is not None:
            for key in IDENTITY_KEYS:
                if old.get(key) != manifest.get(key):
                    raise RunError(f"{self.root} holds a run with a different {key.replace('_', ' ')} "
                                   f"({old.get(key)} != {manifest.get(key)}); choose another --out directory")
        write_json(self.root / MANIFEST, manifest)

    def task_path(self, key: str) -> Path:
        return self.tasks / f"{key}.npz"

    def has_task(self, key: str) -> bool:
        return self.task_path(key).is_file()

    def save_task(self, key: str, meta: dict, records: Records) -> None:
        """One .npz per task: each record column, the logits (if any) and a JSON `meta` string."""
        self._save(self.task_path(key), meta, records)

    @staticmethod
    def _save(path: Path, meta: dict, records: Records) -> None:
        arrays = {f"col:{c}": records.table[c].to_numpy() for c in records.table.columns}
        arrays = {k: v.astype(str) if v.dtype == object else v for k, v in arrays.items()}
        if records.logits is not None:
            arrays["logits"] = records.logits
        arrays["meta"] = np.array(json.dumps({**meta, "info": records.info}, default=str))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(path, buffer.getvalue())

    def shard_path(self, key: str, name: str) -> Path:
        return self.root / "shards" / key / f"{name}.npz"

    def save_shard(self, key: str, name: str, records: Records) -> None:
        """A finished shard of an unfinished task (merged into the task file once all shards exist)."""
        self._save(self.shard_path(key, name), {}, records)

    def has_shard(self, key: str, name: str) -> bool:
        return self.shard_path(key, name).is_file()

    def merge_shards(self, key: str, names: list[str], meta: dict) -> None:
        """Concatenate the task's shards in order into its task file, then remove them."""
        parts = [read_task_file(self.shard_path(key, name))[1] for name in names]
        logits = None if parts[0].logits is None else np.concatenate([p.logits for p in parts])
        table = pd.concat([p.table for p in parts], ignore_index=True)
        self.save_task(key, meta, Records(table, logits, parts[0].info))
        shutil.rmtree(self.root / "shards" / key)

    def load_meta(self, key: str) -> dict:
        """A task's meta alone (the .npz members are read lazily, so records stay on disk)."""
        with np.load(self.task_path(key), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        meta.pop("info", None)
        return meta

    def load_task(self, key: str) -> tuple[dict, Records]:
        return read_task_file(self.task_path(key))

    def task_keys(self) -> list[str]:
        return sorted(p.stem for p in self.tasks.glob("*.npz")) if self.tasks.is_dir() else []


def read_task_file(path: Path) -> tuple[dict, Records]:
    """(meta, records) of a task file written by `save_task`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        table = pd.DataFrame({k[4:]: z[k] for k in z.files if k.startswith("col:")})
        logits = z["logits"] if "logits" in z.files else None
    return meta, Records(table, logits, meta.pop("info", {}))
