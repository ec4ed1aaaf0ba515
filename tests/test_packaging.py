"""One installed namespace: the wheel holds `robustbench_local` alone, and the code imports only by those names."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("attacks", "corruptions", "ood", "reports")


def test_wheel_has_one_top_level_package(tmp_path):
    source = tmp_path / "source"  # a copy of the tracked files: the build writes build/ and *.egg-info beside them
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"robustbench_local"}
    for room in ROOMS:
        assert f"robustbench_local/{room}/__init__.py" in names
    assert "robustbench_local/zoo/digits-cnn.safetensors" in names


def test_every_package_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = {name: ROOT / path for name, path in config["package-dir"].items()}
    listed = set(config["packages"])
    found = set()
    for init in [*ROOT.glob("robustbench_local/**/__init__.py"), *(p for r in ROOMS for p in ROOT.glob(f"{r}/**/__init__.py"))]:
        rel = init.parent.relative_to(ROOT)
        top = rel.parts[0]
        prefix = [] if top == "robustbench_local" else ["robustbench_local"]
        found.add(".".join([*prefix, *rel.parts]))
    assert found == listed
    assert all(mapped[f"robustbench_local.{room}"] == ROOT / room for room in ROOMS)


def test_code_imports_the_rooms_only_under_the_namespace():
    bare = re.compile(rf"^\s*(from|import) ({'|'.join(ROOMS)})\b", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for folder in ("robustbench_local", *ROOMS, "tests", "bench")
                 for p in (ROOT / folder).rglob("*.py") if bare.search(p.read_text())]
    assert offenders == []
