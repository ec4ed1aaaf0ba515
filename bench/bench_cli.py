"""`rbl --help` start-up cost: wall time and peak RSS of a fresh process, before and after the light CLI.

'before' is the CLI of commit c3540a8 (the last one that imported the API, torch and every suite at start), built
from `git archive` into a temporary directory with `pip install --no-deps --target`; 'after' is this checkout. Both
run with this interpreter, side by side in this one run, REPEAT times each (median wall time, peak RSS of the slowest).
Also: `rbl evaluate --help` and `rbl list detectors` for 'after', and the heavy modules each process imported.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "c3540a8"
REPEAT = int(os.environ.get("RBL_BENCH_REPEAT", "5"))
HEAVY = ("torch", "torchvision", "torchattacks", "imagecorruptions", "sklearn", "scipy", "pandas", "matplotlib")
RUN = ("import sys\nfrom robustbench_local.cli import cli\ntry:\n    cli(sys.argv[1:], prog_name='rbl')\nexcept SystemExit:\n"
       f"    pass\nprint('heavy:', *(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
MEASURE = ("import json, resource, subprocess, sys, time\nt = time.perf_counter()\n"
           "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
           "print(json.dumps({'wall': time.perf_counter() - t, 'rss_kb': resource.getrusage(resource.RUSAGE_CHILDREN)"
           ".ru_maxrss, 'heavy': done.stderr.strip().splitlines()[-1].removeprefix('heavy:').split()}))")


def measure(args: list[str], path: str | None, cwd: str) -> dict:
    """Median wall time (s), peak RSS (MB) and heavy modules of `rbl ARGS` in fresh processes, run in `cwd` (not the
    checkout, whose robustbench_local would shadow the one on `path`)."""
    env = {**os.environ, "PYTHONPATH": path} if path else dict(os.environ)
    runs = [json.loads(subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-c", RUN, *args], env=env,
                                      cwd=cwd, capture_output=True, text=True, check=True).stdout)
            for _ in range(REPEAT)]
    return {"wall_s": statistics.median(r["wall"] for r in runs), "rss_mb": max(r["rss_kb"] for r in runs) / 1024,
            "heavy": runs[0]["heavy"]}


def install_before(target: Path) -> None:
    """The CLI of commit BEFORE, installed (not editable) into `target`."""
    source = target.parent / "source"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target), str(source)], check=True, capture_output=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "site"
        install_before(target)
        rows = [(f"before ({BEFORE})", "--help", measure(["--help"], str(target), tmp))]
        rows += [("after (this checkout)", " ".join(args), measure(args, None, tmp))
                 for args in (["--help"], ["evaluate", "--help"], ["list", "detectors"])]
    print(f"fresh processes, {REPEAT} runs each, {sys.executable}")
    print(f"{'CLI':<24}{'command':<18}{'wall s (median)':>16}{'peak RSS MB':>13}  heavy modules imported")
    for who, command, m in rows:
        print(f"{who:<24}{command:<18}{m['wall_s']:>16.2f}{m['rss_mb']:>13.0f}  {', '.join(m['heavy']) or '-'}")
    before, after = rows[0][2], rows[1][2]
    print(f"rbl --help: {before['wall_s'] / after['wall_s']:.1f}x faster, {before['rss_mb'] / after['rss_mb']:.1f}x less "
          "peak memory")


if __name__ == "__main__":
    main()
