"""The CI gate of a git repository: baseline from the base ref (cached), candidate from the head ref, rules from
the base ref, verdicts as JUnit XML, a Markdown summary and a JSON result.

The baseline run is kept under `cache/<key>`, the key naming everything its numbers depend on: the base commit,
the model / data / suite spec and this package's version. Each side is evaluated by `rbl evaluate` in a fresh
process from a checkout of its commit (`git worktree`, so Git LFS files are smudged like any checkout), with that
checkout on PYTHONPATH for `python:` architectures. The rules file is read from the base commit, so a pull
request cannot loosen its own gate; a base without a rules file is judged with rules proposed from the baseline
(`rbl gate --init`), said in the summary. A base without the checkpoint has nothing to compare with: the build
passes with that notice (the gate starts once the checkpoint is on the base branch); a head without it is an error.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

from robustbench_local.reports.gate import junit_xml, markdown

from .errors import RunError
from .gate import Verdict, judge, load_rules
from .gate_init import propose_rules, rules_document
from .results import RunResult, load_run
from .runner.store import atomic_write

LFS_POINTER = b"version https://git-lfs.github.com/spec/"
MARKER = "<!-- rbl-ci -->"  # the first line of the summary: the workflow updates the one comment holding it


@dataclass(frozen=True)
class CiSpec:
    """What both sides are evaluated with; `checkpoint` and `rules` are paths inside the repository."""

    checkpoint: str
    arch: str
    data: str
    suites: tuple[str, ...] = ("clean",)
    options: dict[str, str] = field(default_factory=dict)  # suite options by flag, e.g. {"--attack": "pgd"}
    limit: int | None = None
    seed: int = 0
    rules: str = "gate.yaml"

    def evaluate_args(self, tree: Path, out: Path) -> list[str]:
        """`rbl evaluate` arguments for the checkpoint of the checkout `tree`, into `out`."""
        args = [str(tree / self.checkpoint), "--arch", self.arch, "--data", self.data, "--suite", ",".join(self.suites),
                "--seed", str(self.seed), "--out", str(out)]
        args += ["--limit", str(self.limit)] if self.limit else []
        return args + [item for flag, value in sorted(self.options.items()) for item in (flag, value)]


@dataclass
class CiResult:
    """What a build found; `status` is passed, failed or skipped (no checkpoint on the base)."""

    status: str
    base: str
    head: str
    cache_key: str
    baseline_source: str = ""  # "cache" or "evaluated"
    rules_source: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)

    def to_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "verdicts"}
        data["checks"], data["failures"] = len(self.verdicts), sum(not v.passed for v in self.verdicts)
        data["verdicts"] = [{"rule": str(v.rule), "metric": v.rule.metric, "suite": v.suite, "condition": v.condition,
                             "kind": v.rule.kind, "threshold": v.rule.threshold, "baseline": v.baseline,
                             "candidate": v.candidate, "change": v.change, "low": v.low, "high": v.high,
                             "passed": v.passed, "method": v.method} for v in self.verdicts]
        return data


def git(repo: Path, *args: str) -> str:
    """Output of `git -C repo ARGS`; a failure is one line naming the command and git's own reason."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise RunError(f"cannot run git ({exc.strerror or exc}); install git") from None
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise RunError(f"git {' '.join(args)} failed in {repo}: {reason}")
    return done.stdout


def resolve(repo: Path, ref: str) -> str:
    """The commit `ref` names in `repo`."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except RunError:
        raise RunError(f"{repo} has no commit {ref!r}; fetch it first (actions/checkout: fetch-depth: 0)") from None


def has_file(repo: Path, commit: str, path: str) -> bool:
    return subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{commit}:{path}"],
                          capture_output=True, check=False).returncode == 0


def cache_key(base: str, spec: CiSpec) -> str:
    """`rbl-baseline-<digest>` of the base commit, the spec (rules excepted) and this package's version."""
    identity = {"base": base, "spec": {k: v for k, v in asdict(spec).items() if k != "rules"},
                "version": version("robustbench-local")}
    return "rbl-baseline-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


@contextmanager
def checkout(repo: Path, commit: str) -> Iterator[Path]:
    """A temporary detached worktree of `commit` (LFS files smudged as in any checkout), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="rbl-ci-") as tmp:
        tree = Path(tmp) / "tree"
        git(repo, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        try:
            yield tree
        finally:
            git(repo, "worktree", "remove", "--force", str(tree))


def evaluate(tree: Path, spec: CiSpec, out: Path, side: str, quiet: bool) -> RunResult:
    """`rbl evaluate` of the checkpoint in `tree` in a fresh process (with `tree` on PYTHONPATH); its progress lines
    pass through, and its one-line error becomes ours, naming the side."""
    checkpoint = tree / spec.checkpoint
    with open(checkpoint, "rb") as f:
        if f.read(len(LFS_POINTER)) == LFS_POINTER:
            raise RunError(f"{spec.checkpoint} of the {side} is a Git LFS pointer, not the file; fetch LFS objects "
                           "(actions/checkout: lfs: true; git lfs fetch origin BASE)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", "from robustbench_local.cli import main; main()",
               *(["--quiet"] if quiet else []), "evaluate", *spec.evaluate_args(tree, out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    error = ""
    for line in process.stderr or ():
        if line.startswith("error: "):
            error = line.removeprefix("error: ").strip()
        else:
            print(line, end="", file=sys.stderr, flush=True)
    if process.wait():
        raise RunError(f"evaluating the {side}: {error or f'rbl evaluate exited with {process.returncode}'}")
    return load_run(out)


def baseline_run(repo: Path, base: str, spec: CiSpec, cache: Path, quiet: bool) -> tuple[RunResult, str]:
    """The baseline from `cache/<key>` if it finished there before, else evaluated into it ('cache'/'evaluated')."""
    out = cache / cache_key(base, spec)
    if (out / "metrics.csv").is_file():
        return load_run(out), "cache"
    with checkout(repo, base) as tree:
        return evaluate(tree, spec, out, f"base {base[:12]}", quiet), "evaluated"


def base_rules(repo: Path, base: str, spec: CiSpec, baseline: RunResult, out: Path) -> tuple[list, str]:
    """The rules as committed on the base (copied to out/rules.yaml), or proposed from the baseline if it has none."""
    path = out / "rules.yaml"
    if has_file(repo, base, spec.rules):
        atomic_write(path, git(repo, "show", f"{base}:{spec.rules}").encode())
        return load_rules(path), f"{spec.rules} at the base {base[:12]}"
    atomic_write(path, rules_document(propose_rules(baseline), f"the baseline of {base[:12]}").encode())
    return load_rules(path), (f"proposed from the baseline (`rbl gate --init`): the base {base[:12]} has no "
                              f"{spec.rules}; commit one to the base branch to fix them")


def run_ci(repo: str | Path, base_ref: str, head_ref: str, spec: CiSpec, cache: str | Path, out: str | Path,
           quiet: bool = False) -> CiResult:
    """One build: resolve the refs, baseline (cache or evaluate), candidate, base rules, verdicts."""
    repo, cache, out = Path(repo), Path(cache), Path(out)
    git(repo, "rev-parse", "--git-dir")  # a clear line when `repo` is no git repository
    base, head = resolve(repo, base_ref), resolve(repo, head_ref)
    result = CiResult("skipped", base, head, cache_key(base, spec))
    if not has_file(repo, head, spec.checkpoint):
        raise RunError(f"the head {head_ref} ({head[:12]}) has no {spec.checkpoint}; pass --checkpoint with the "
                       "model's path in the repository")
    if not has_file(repo, base, spec.checkpoint):
        result.notes.append(f"the base {base_ref} ({base[:12]}) has no {spec.checkpoint}: nothing to compare with; "
                            "the gate starts once the checkpoint is on the base branch")
        return result
    start = time.monotonic()
    baseline, result.baseline_source = baseline_run(repo, base, spec, cache, quiet)
    result.seconds["baseline"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    with checkout(repo, head) as tree:
        candidate = evaluate(tree, spec, out / f"candidate-{head[:12]}", f"head {head[:12]}", quiet)
    result.seconds["candidate"] = round(time.monotonic() - start, 2)
    rules, result.rules_source = base_rules(repo, base, spec, baseline, out)
    result.verdicts = judge(baseline, candidate, rules, spec.seed)
    result.status = "failed" if any(not v.passed for v in result.verdicts) else "passed"
    return result


def summary_markdown(result: CiResult) -> str:
    """The pull-request comment: a marker line (so the workflow updates one comment), the verdicts, the provenance."""
    if result.status == "skipped":
        body = "### Robustness gate: skipped\n"
    else:
        body = markdown(result.verdicts)
    where = {"cache": "from the cache", "evaluated": "evaluated in this build"}.get(result.baseline_source, "")
    lines = [f"- base `{result.base[:12]}`" + (f", baseline {where}" if where else "") + f"; head `{result.head[:12]}`"]
    lines += [f"- rules: {result.rules_source}"] if result.rules_source else []
    lines += [f"- {side}: {seconds:.0f} s" for side, seconds in result.seconds.items()]
    lines += [f"- note: {note}" for note in result.notes]
    return f"{MARKER}\n{body}\n" + "\n".join(lines) + "\n"


def skipped_junit(result: CiResult) -> bytes:
    suite = ET.Element("testsuite", name="rbl gate", tests="1", failures="0", errors="0", skipped="1")
    case = ET.SubElement(suite, "testcase", classname="gate", name="robustness gate")
    ET.SubElement(case, "skipped", message="; ".join(result.notes))
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def write_outputs(result: CiResult, out: Path) -> dict[str, Path]:
    """gate.xml (JUnit), gate.md (summary) and gate.json (machine-readable) under `out`."""
    paths = {"junit": out / "gate.xml", "summary": out / "gate.md", "json": out / "gate.json"}
    atomic_write(paths["junit"], skipped_junit(result) if result.status == "skipped" else junit_xml(result.verdicts))
    atomic_write(paths["summary"], summary_markdown(result).encode())
    atomic_write(paths["json"], (json.dumps(result.to_json(), indent=2) + "\n").encode())
    return paths
