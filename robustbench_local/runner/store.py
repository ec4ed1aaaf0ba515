"""The run directory: manifest, temperature, per-task record files and other cached files.

Every cached file is written atomically together with its SHA-256 digest beside it (`NAME.sha256`, in
`sha256sum -c` format). A file whose bytes do not match its digest (cut short, edited, damaged) is never used:
`intact` reports it with a one-line notice so that the caller recomputes it, `verified` refuses it in one line.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RunError
from ..progress import Progress
from ..records import Records, check_schema

MANIFEST = "manifest.json"
CALIBRATION = "calibration.json"
DIGEST_SUFFIX = ".sha256"
RECOMPUTE = "re-run the evaluation that made it on this directory to recompute it"
IDENTITY = {"model_fingerprint": "model", "data_index": "data", "seed": "seed",
            "calibration_fingerprint": "calibration_data"}  # what a run dir is of -> how the manifest shows it
SAMPLES = "samples.npy"  # the identity of each evaluated image (path, size, time or pixels) when its records were made
_digests: dict[tuple, str] = {}  # (path, inode, size, mtime) -> SHA-256 of the bytes, so a file is hashed once


class DamagedFile(RunError):
    """A cached file of a run directory that does not match its recorded digest."""


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
    atomic_write(path, _json_bytes(obj))


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=str) + "\n").encode()


def write_output(path: Path, data: bytes) -> None:
    """Write a run's output file (atomically, and only if its content changes), or say why it cannot be written."""
    if path.is_file() and path.read_bytes() == data:
        return
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise RunError(f"cannot write {path} ({exc.strerror or exc}); make {path.parent} writable "
                       "or choose another --out") from None


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def _version(path: Path) -> tuple:
    stat = path.stat()
    return str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns


def _sha256(path: Path) -> str:
    key = _version(path)
    if key not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _digests[key] = h.hexdigest()
    return _digests[key]


def recorded_digest(path: Path) -> str | None:
    """The digest recorded beside `path` (None if there is none)."""
    try:
        return digest_path(path).read_text().split()[0]
    except (FileNotFoundError, IndexError, UnicodeDecodeError):
        return None


def damage(path: Path) -> str | None:
    """What is wrong with the existing cached file `path`, or None if it matches its recorded digest."""
    recorded = recorded_digest(path)
    if recorded is None:
        return "has no recorded digest"
    if _sha256(path) != recorded:
        return "does not match its recorded digest (cut short, edited or damaged)"
    return None


def verified(path: Path, fix: str = RECOMPUTE) -> Path:
    """`path` if it matches its recorded digest; DamagedFile (one line naming the file and `fix`) otherwise."""
    problem = damage(path)
    if problem:
        raise DamagedFile(f"{path} {problem}; {fix}")
    return path


class RunStore:
    """Files of one run directory; notices about damaged files go to `progress`."""

    def __init__(self, root: str | Path, progress: Progress = Progress()) -> None:
        self.root = Path(root)
        self.tasks = self.root / "tasks"
        self.progress = progress

    # --- cached files and their digests

    def write(self, path: Path, data: bytes) -> None:
        """Write a cached file and its digest, atomically each (a crash between them leaves a mismatch)."""
        digest = hashlib.sha256(data).hexdigest()
        with self._writing(path):
            atomic_write(path, data)
            atomic_write(digest_path(path), f"{digest}  {path.name}\n".encode())
        _digests[_version(path)] = digest

    def remove(self, path: Path) -> None:
        """Remove a cached file and its digest, if present."""
        with self._writing(path):
            for file in (path, digest_path(path)):
                if file.exists():
                    file.unlink()

    @contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise RunError(f"cannot write {path} ({exc.strerror or exc}); make {self.root} writable "
                           "or choose another --out") from None

    def write_json(self, name: str | Path, obj: Any) -> None:
        self.write(self.root / name, _json_bytes(obj))

    def intact(self, path: Path) -> bool:
        """Whether cached `path` exists and matches its digest; a damaged one gets a notice (to be recomputed)."""
        if not path.is_file():
            return False
        problem = damage(path)
        if problem:
            self.progress.note(f"notice: {path.relative_to(self.root)} {problem}; recomputing it")
        return problem is None

    def read_json(self, name: str | Path, fix: str = RECOMPUTE) -> dict | None:
        """A cached JSON file (None if absent); DamagedFile if it does not match its digest."""
        path = self.root / name
        return json.loads(verified(path, fix).read_text()) if path.is_file() else None

    # --- the manifest: what the run dir is of

    def has_records(self) -> bool:
        """Whether any task or shard records exist (damaged or not): only then does the manifest bind the dir."""
        return any(self.root.glob("tasks/*.npz")) or any(self.root.glob("shards/*/*.npz"))

    def check_identity(self, manifest: dict) -> None:
        """Refuse a run dir whose records are of another model, data set, seed or calibration set."""
        if not self.has_records():
            return
        fix = "restore it or choose another --out directory"
        old = self.read_json(MANIFEST, f"the run's identity cannot be checked: {fix}")
        if old is None:
            raise RunError(f"{self.root} holds records but no {MANIFEST} that says what they are of; {fix}")
        for key, shown in IDENTITY.items():
            if old.get(key) != manifest.get(key):
                what = (f"{old.get(key)} != {manifest.get(key)}" if key == shown else
                        f"{old.get(shown)} [{old.get(key)}] != {manifest.get(shown)} [{manifest.get(key)}]")
                raise RunError(f"{self.root} holds a run with a different {key.replace('_', ' ')} ({what}); "
                               "run the same evaluation or choose another --out directory")

    def read_samples(self) -> np.ndarray | None:
        """The per-sample identities recorded for the run's images (None if absent or damaged)."""
        path = self.root / SAMPLES
        return np.load(path, allow_pickle=False) if self.intact(path) else None

    def write_samples(self, digests: np.ndarray) -> None:
        """Record the per-sample identities (only when they differ from the recorded ones)."""
        path = self.root / SAMPLES
        if path.is_file() and not damage(path) and np.array_equal(np.load(path, allow_pickle=False), digests):
            return
        buffer = io.BytesIO()
        np.save(buffer, digests)
        self.write(self.root / SAMPLES, buffer.getvalue())

    def write_manifest(self, manifest: dict) -> None:
        """(Re)write the manifest when anything but its `updated` time changes."""
        path = self.root / MANIFEST
        old = json.loads(path.read_text()) if path.is_file() and not damage(path) else None
        if old is None or {**old, "updated": None} != {**manifest, "updated": None}:
            self.write_json(MANIFEST, manifest)

    # --- task and shard records

    def task_path(self, key: str) -> Path:
        return self.tasks / f"{key}.npz"

    def has_task(self, key: str) -> bool:
        return self.intact(self.task_path(key))

    def save_task(self, key: str, meta: dict, records: Records) -> None:
        """One .npz per task: each record column, the logits (if any) and a JSON `meta` string."""
        self.write(self.task_path(key), _task_bytes(meta, records))

    def shard_path(self, key: str, name: str) -> Path:
        return self.root / "shards" / key / f"{name}.npz"

    def save_shard(self, key: str, name: str, meta: dict, records: Records, schema: Mapping[str, str]) -> None:
        """A finished shard of an unfinished task (merged into the task file once all shards exist), checked against
        its suite's record `schema` (RecordSchemaError, and nothing written, if it does not match)."""
        check_schema(records, schema, f"{meta['suite']} {meta['condition']!r} shard {name}")
        self.write(self.shard_path(key, name), _task_bytes(meta, records))

    def has_shard(self, key: str, name: str) -> bool:
        return self.intact(self.shard_path(key, name))

    def merge_shards(self, key: str, names: list[str], meta: dict) -> None:
        """Concatenate the task's shards in order into its task file, then remove them."""
        parts = [read_task_file(self.shard_path(key, name))[1] for name in names]
        logits = None if parts[0].logits is None else np.concatenate([p.logits for p in parts])
        table = pd.concat([p.table for p in parts], ignore_index=True)
        self.save_task(key, meta, Records(table, logits, parts[0].info))
        shutil.rmtree(self.root / "shards" / key)

    def load_meta(self, key: str) -> dict:
        """A task's meta alone (the .npz members are read lazily, so records stay on disk)."""
        return read_meta(self.task_path(key))

    def load_task(self, key: str) -> tuple[dict, Records]:
        return read_task_file(self.task_path(key))

    def task_keys(self) -> list[str]:
        return sorted(p.stem for p in self.tasks.glob("*.npz")) if self.tasks.is_dir() else []


def _task_bytes(meta: dict, records: Records) -> bytes:
    arrays = {f"col:{c}": records.table[c].to_numpy() for c in records.table.columns}
    arrays = {k: v.astype(str) if v.dtype == object else v for k, v in arrays.items()}
    if records.logits is not None:
        arrays["logits"] = records.logits
    arrays["meta"] = np.array(json.dumps({**meta, "info": records.info}, default=str))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def read_meta(path: Path) -> dict:
    """The meta of a task or shard file, checked against its digest."""
    with np.load(verified(path), allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    meta.pop("info", None)
    return meta


def read_task_file(path: Path) -> tuple[dict, Records]:
    """(meta, records) of a task file written by `save_task`, checked against its digest."""
    with np.load(verified(path), allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        table = pd.DataFrame({k[4:]: z[k] for k in z.files if k.startswith("col:")})
        logits = z["logits"] if "logits" in z.files else None
    return meta, Records(table, logits, meta.pop("info", {}))
