"""Plugins: README's example package, installed into a temporary target directory, is discovered through its entry
points alone and runs from the CLI; the CLI's start imports no heavy library."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
RBL = Path(sys.executable).parent / "rbl"
HEAVY = ("torch", "torchvision", "torchattacks", "imagecorruptions", "sklearn", "scipy", "pandas", "matplotlib")
START = (*HEAVY, "numpy", "tqdm")  # not even these for a help text


def readme_plugin_files() -> dict[str, str]:
    """The files of README's plugin example: each fenced block after a `<!-- plugin-file: PATH -->` line."""
    text = (ROOT / "README.md").read_text()
    return dict(re.findall(r"<!-- plugin-file: (\S+) -->\n```\w*\n(.*?)```", text, re.S))


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> str:
    """README's plugin installed with pip into its own directory (on no sys.path but the subprocesses')."""
    source = tmp_path_factory.mktemp("plugin-src")
    files = readme_plugin_files()
    assert set(files) == {"pyproject.toml", "rbl_plugin_demo/__init__.py", "rbl_plugin_demo/impl.py"}
    for name, content in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(content)
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True)
    assert any(p.name.startswith("rbl_plugin_demo") and p.suffix == ".dist-info" for p in target.iterdir())
    return str(target)


def rbl(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RBL_DEVICE": "cpu"}
    if path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    return subprocess.run([str(RBL), *args], capture_output=True, text=True, env=env, timeout=600)


def test_plugin_is_listed_and_gets_cli_options(plugin_path):
    assert "margin" not in rbl("list", "detectors").stdout  # nothing without the plugin on the path
    detectors = rbl("list", "detectors", path=plugin_path)
    assert re.search(r"^margin +negative gap between the two largest logits \| consumes logits \| fit: none",
                     detectors.stdout, re.M), detectors.stdout + detectors.stderr
    assert re.search(r"^flip +accuracy and calibration on mirrored images", rbl("list", "suites", path=plugin_path).stdout,
                     re.M)
    assert "--flip-axis" in rbl("evaluate", "--help", path=plugin_path).stdout
    bad = rbl("evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "flip", "--flip-axis", "x",
              "--out", "unused", path=plugin_path)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --flip-axis: flip axis is h or v, got 'x'", bad.stderr


def test_plugin_detector_and_suite_run_from_the_cli(plugin_path, tmp_path):
    out = tmp_path / "run"
    done = rbl("evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "flip,ood", "--flip-axis", "v",
               "--detectors", "msp,margin", "--ood-data", "builtin:ood-noise-gaussian", "--limit", "60", "--out",
               str(out), "--calibration-data", "none", "--quiet", path=plugin_path)
    assert done.returncode == 0, done.stderr
    metrics = pd.read_csv(out / "metrics.csv")
    flip = metrics.query("suite == 'flip' and condition == 'flip-v' and metric == 'acc'")
    assert len(flip) == 1 and 0 <= flip.value.iloc[0] <= 1
    margin = metrics.query("suite == 'ood' and condition == 'noise-gaussian:margin' and metric == 'auroc'")
    assert len(margin) == 1 and 0 <= margin.value.iloc[0] <= 1
    assert json.loads((out / "manifest.json").read_text())  # an ordinary run directory


def imported_by(*args: str, modules: tuple[str, ...] = HEAVY) -> set[str]:
    """Which of `modules` a fresh `rbl ARGS` process has imported when it exits."""
    code = ("import sys\nfrom robustbench_local.cli import cli\ntry:\n    cli(sys.argv[1:], prog_name='rbl')\n"
            f"except SystemExit:\n    pass\nprint('heavy:', *(m for m in {modules!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    return set(done.stderr.strip().splitlines()[-1].removeprefix("heavy:").split())


@pytest.mark.parametrize("args", [
    ["--help"], ["evaluate", "--help"], ["train", "--help"], ["gate", "--help"], ["corrupt", "--help"],
    ["demo", "--help"], ["report", "--help"], ["leaderboard", "add", "--help"],
    ["list", "models"], ["list", "datasets"], ["list", "suites"], ["list", "attacks"], ["list", "corruptions"],
    ["list", "detectors"], ["evaluate", "--bogus"], ["evalute"], ["evaluate", "--limit", "zero"],
    ["ci", "--help"], ["evaluate", "m", "--data", "d", "--out", "o", "--conformal-alpha", "0.1,2"],
    ["compress", "--help"], ["compress", "m", "--method", "prune", "--amount", "2", "--out", "o"],
], ids=" ".join)
def test_help_listings_and_flag_errors_import_no_heavy_library(args):
    assert imported_by(*args) == set()


@pytest.mark.parametrize("command", ["", "evaluate", "train", "compress", "compare", "corrupt", "gate", "ci"])
def test_help_texts_import_not_even_numpy(command):
    assert imported_by(*command.split(), "--help", modules=START) == set()


def test_global_flags_are_accepted_after_the_subcommand(tmp_path):
    before = rbl("--quiet", "evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "20", "--out",
                 str(tmp_path / "a"))
    after = rbl("evaluate", "builtin:digits-cnn", "--data", "builtin:digits", "--limit", "20", "--out",
                str(tmp_path / "b"), "--quiet")
    assert before.returncode == after.returncode == 0, after.stderr
    assert after.stderr == before.stderr == ""
    bad = ["evaluate", "builtin:nope", "--data", "builtin:digits", "--out", str(tmp_path / "c")]
    assert "Traceback" not in rbl(*bad).stderr
    assert "Traceback" in rbl(*bad, "--debug").stderr  # --debug after the subcommand shows the traceback
