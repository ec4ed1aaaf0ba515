"""docs/github-actions-gate.yml: the steps call `rbl ci` with flags it has, on files that exist, and read its outputs."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from robustbench_local.ci import MARKER
from robustbench_local.cli.ci import ci

ROOT = Path(__file__).parents[1]
WORKFLOW = ROOT / "docs" / "github-actions-gate.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict) -> list[dict]:
    return workflow["jobs"]["gate"]["steps"]


def rbl_ci_calls(workflow: dict) -> list[list[str]]:
    """The arguments of every `rbl ci` call, with the workflow's env variables put in (as the shell splits them)."""
    env = {**workflow["env"], "BASE_SHA": "0123abc"}
    calls = []
    for step in steps(workflow):
        for line in step.get("run", "").splitlines():
            if "rbl ci" not in line:
                continue
            line = re.sub(r"\$\(|\)$", " ", line.split("rbl ci", 1)[1])
            line = re.sub(r'"\$(\w+)"|\$(\w+)', lambda m: env[m.group(1) or m.group(2)], line)
            calls.append(shlex.split(line.split(">>")[0]))
    return calls


def test_triggers_and_permissions(workflow):
    assert "pull_request" in workflow[True]  # PyYAML reads the key `on` as True
    assert workflow["permissions"] == {"contents": "read", "checks": "write", "pull-requests": "write"}


def test_every_rbl_ci_call_parses_and_names_an_existing_checkpoint(workflow):
    calls = rbl_ci_calls(workflow)
    assert len(calls) == 2 and "--print-key" in calls[0]
    for args in calls:
        ctx = ci.make_context("ci", list(args))  # an unknown flag or a missing required one raises here
        assert (ROOT / ctx.params["checkpoint"]).is_file()
        assert ctx.params["data"] == workflow["env"]["RBL_DATA"]
    run = ci.make_context("ci", calls[1]).params
    assert run["cache"] == ".rbl-cache" and run["out"] == "rbl-ci"
    assert (ROOT / run["rules_path"]).is_file()  # the rules the base branch holds


def test_install_does_not_use_an_index_where_the_package_is_unpublished(workflow):
    install = next(s for s in steps(workflow) if s.get("name", "").startswith("Install"))["run"]
    assert "pip install robustbench-local" not in install
    assert 'pip install "$RUNNER_TEMP/rbl-base"' in install and 'pip install "$RBL_WHEEL"' in install


def test_checkout_fetches_history_and_lfs_and_pip_is_cached(workflow):
    checkout, python = steps(workflow)[:2]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"] == {"fetch-depth": 0, "lfs": True}
    assert python["with"]["cache"] == "pip" and (ROOT / python["with"]["cache-dependency-path"]).is_file()


def test_baseline_cache_is_keyed_by_rbl_ci_and_saved_even_when_the_gate_fails(workflow):
    by_uses = {s.get("uses", "").split("@")[0]: s for s in steps(workflow)}
    restore, save = by_uses["actions/cache/restore"], by_uses["actions/cache/save"]
    for step in (restore, save):
        assert step["with"]["key"] == "${{ steps.key.outputs.key }}"
        assert step["with"]["path"] == ".rbl-cache/${{ steps.key.outputs.key }}"
    assert save["if"].startswith("always()") and "metrics.csv" in save["if"]


def test_junit_check_and_one_comment_read_the_files_rbl_ci_writes(workflow):
    by_uses = {s.get("uses", "").split("@")[0]: s for s in steps(workflow)}
    assert by_uses["mikepenz/action-junit-report"]["with"]["report_paths"] == "rbl-ci/gate.xml"
    script = by_uses["actions/github-script"]["with"]["script"]
    assert "readFileSync('rbl-ci/gate.md'" in script and "updateComment" in script and "createComment" in script
    assert "body.split('\\n')[0]" in script and MARKER.startswith("<!--")  # the summary's first line marks it
    artifacts = by_uses["actions/upload-artifact"]["with"]["path"].split()
    assert {"rbl-ci/gate.xml", "rbl-ci/gate.md", "rbl-ci/gate.json", "rbl-ci/rules.yaml"} <= set(artifacts)
