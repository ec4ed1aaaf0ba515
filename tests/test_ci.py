"""`rbl ci` end to end on a temporary git repository: base rules, a cached baseline, JUnit / Markdown / JSON."""
from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from robustbench_local.ci import MARKER
from robustbench_local.cli import cli

ZOO = Path(__file__).parents[1] / "robustbench_local" / "zoo"
STRICT = "rules:\n  - {metric: robust_acc, suite: attacks, max_drop: 0.05}\n  - {metric: acc, suite: clean, max_drop: 0.05}\n"
LOOSE = "rules:\n  - {metric: robust_acc, suite: attacks, max_drop: 1.0}\n"
POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:0000\nsize 797824\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Commits: readme (no model), at (PGD-AT model, no rules), rules (+ strict gate.yaml), same (model unchanged,
    rules loosened), worse (the standard model, rules loosened), lfs (an LFS pointer instead of the weights)."""
    root = tmp_path_factory.mktemp("ci") / "repo"
    root.mkdir()

    def commit(tag: str, files: dict[str, str | Path]) -> None:
        for name, content in files.items():
            if isinstance(content, Path):
                shutil.copyfile(content, root / name)
            else:
                (root / name).write_text(content)
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        subprocess.run(["git", "commit", "-qm", tag], cwd=root, check=True)
        subprocess.run(["git", "tag", tag], cwd=root, check=True)

    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "config", "user.email", "ci@example.com"], cwd=root, check=True)
    subprocess.run(["git", "config", "user.name", "ci"], cwd=root, check=True)
    commit("readme", {"README.md": "a model\n"})
    commit("at", {"model.safetensors": ZOO / "digits-cnn-at.safetensors"})
    commit("rules", {"gate.yaml": STRICT})
    commit("same", {"gate.yaml": LOOSE, "README.md": "a model, loosely gated\n"})
    commit("worse", {"model.safetensors": ZOO / "digits-cnn.safetensors"})
    commit("lfs", {"model.safetensors": POINTER})
    return root


def ci(repo: Path, tmp: Path, base: str, head: str, *extra: str):
    args = ["ci", "--repo", str(repo), "--base", base, "--head", head, "--checkpoint", "model.safetensors",
            "--arch", "builtin:digits-cnn", "--data", "builtin:digits", "--suite", "clean,attacks", "--attack", "fgsm",
            "--eps", "0.1", "--limit", "100", "--cache", str(tmp / "cache"), "--out", str(tmp / "out"), *extra]
    return CliRunner().invoke(cli, args)


def outputs(tmp: Path) -> tuple[dict, ET.Element, str]:
    out = tmp / "out"
    return (json.loads((out / "gate.json").read_text()), ET.parse(out / "gate.xml").getroot(),
            (out / "gate.md").read_text())


def test_regression_fails_on_the_base_rules_and_the_next_build_takes_the_baseline_from_the_cache(repo, tmp_path):
    worse = ci(repo, tmp_path, "rules", "worse")
    assert worse.exit_code == 1, worse.output
    result, junit, summary = outputs(tmp_path)
    assert result["status"] == "failed" and result["baseline_source"] == "evaluated"
    assert result["rules_source"].startswith("gate.yaml at the base")
    assert [v["rule"] for v in result["verdicts"]] == ["robust_acc max drop 0.05", "acc max drop 0.05"]  # not LOOSE
    failed = [v for v in result["verdicts"] if not v["passed"]]
    assert [v["metric"] for v in failed] == ["robust_acc"] and failed[0]["change"] > 0.3
    assert junit.get("tests") == "2" and junit.get("failures") == "1"
    assert summary.startswith(f"{MARKER}\n### Robustness gate: FAILED (1 of 2 checks failed)")
    cached = tmp_path / "cache" / result["cache_key"] / "metrics.csv"
    stamp = cached.stat().st_mtime_ns

    same = ci(repo, tmp_path, "rules", "same")
    assert same.exit_code == 0, same.output
    result, junit, summary = outputs(tmp_path)
    assert result["status"] == "passed" and result["baseline_source"] == "cache"
    assert cached.stat().st_mtime_ns == stamp  # not evaluated again
    assert junit.get("failures") == "0" and "baseline from the cache" in summary


def test_base_without_rules_is_judged_with_rules_proposed_from_its_baseline(repo, tmp_path):
    result = ci(repo, tmp_path, "at", "same")
    assert result.exit_code == 0, result.output
    data, _, summary = outputs(tmp_path)
    assert data["rules_source"].startswith("proposed from the baseline") and data["checks"] > 2
    assert "rules: proposed from the baseline" in summary
    assert (tmp_path / "out" / "rules.yaml").read_text().startswith("# Proposed by `rbl gate --init`")


def test_base_without_the_checkpoint_passes_with_a_notice(repo, tmp_path):
    result = ci(repo, tmp_path, "readme", "rules")
    assert result.exit_code == 0, result.output
    data, junit, summary = outputs(tmp_path)
    assert data["status"] == "skipped" and data["checks"] == 0 and "has no model.safetensors" in data["notes"][0]
    assert junit.get("skipped") == "1" and "Robustness gate: skipped" in summary
    assert not (tmp_path / "cache").exists()  # nothing evaluated


@pytest.mark.parametrize("base, head, message", [
    ("rules", "readme", "error: the head readme ({}) has no model.safetensors; pass --checkpoint with the model's "
                        "path in the repository"),
    ("nope", "same", "error: {repo} has no commit 'nope'; fetch it first (actions/checkout: fetch-depth: 0)"),
])
def test_bad_input_is_one_line_exit_2(repo, tmp_path, base, head, message):
    result = ci(repo, tmp_path, base, head)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    readme = subprocess.run(["git", "rev-parse", "readme"], cwd=repo, capture_output=True, text=True).stdout[:12]
    assert len(lines) == 1 and lines[0].startswith(message.format(readme, repo=repo).split(" (")[0]), result.output


def test_an_evaluation_error_is_one_line_naming_the_side(repo, tmp_path):
    result = ci(repo, tmp_path, "rules", "same", "--arch", "torchvision:resnet18")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: evaluating the base ") and "do not fit the arch" in lines[0]


def test_an_lfs_pointer_is_named(repo, tmp_path):
    result = ci(repo, tmp_path, "at", "lfs")
    assert result.exit_code == 2
    assert "model.safetensors of the head" in result.output and "is a Git LFS pointer" in result.output


def test_the_cache_key_names_base_spec_and_version(repo, tmp_path):
    def key(base: str, *extra: str) -> str:
        result = ci(repo, tmp_path, base, "same", "--print-key", *extra)
        assert result.exit_code == 0, result.output
        return result.output.strip()

    assert key("rules") == key("rules") != key("at")
    assert key("rules") != key("rules", "--seed", "1") and key("rules").startswith("rbl-baseline-")
    assert key("rules", "--rules", "other.yaml") == key("rules")  # the rules are read anew on every build
    assert not (tmp_path / "out").exists()
