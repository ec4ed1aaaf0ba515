"""A model and its compressed copies side by side: each evaluated with the same spec (seed, points, options), the
change of every headline metric with a paired-bootstrap 95% interval, and the models' size, parameters, sparsity and
CPU latency.

The metrics compared are the headline metrics each suite declares (`Suite.headline`), per condition, for every suite
of the original's run; their changes (compressed − original) are paired: both runs' rows are recomputed under the
same resamples of the sample ids by `gate.Replicates` (seed parts (run seed, task key), the draws that made each
run's own intervals), and the interval is the 2.5th and 97.5th percentile of the per-draw differences.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .api import run_spec
from .errors import IncompatibleRuns
from .gate import Replicates, check_comparable
from .latency import Latency, LatencySetup, measure_latency
from .metrics.contract import metric_spec
from .models import Classifier, load_model, to_tensor
from .models.compress import CARD, read_card
from .models.pruning import weight_stats
from .progress import Progress
from .registry import SUITES
from .results import RunResult, load_run
from .runner import EvalSpec
from .suites import get_suite

UNCOMPRESSED_SIZE = "state dict as safetensors"  # what the size of a model given by spec measures


@dataclass(frozen=True)
class MetricChange:
    """One headline metric of one condition: the original's and a compressed model's value, their difference
    (compressed − original) and its paired-bootstrap 95% interval."""

    model: str
    suite: str
    condition: str
    metric: str
    higher_is_better: bool
    original: float
    value: float
    change: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class ModelFacts:
    """A model's size on disk (bytes of `size_of`), parameter count and the share of zeros among its conv/linear
    weights; None where they cannot be read (a model quantised inline by ?quantize=)."""

    name: str
    spec: str
    method: str
    size_bytes: int | None
    size_of: str
    parameters: int | None
    sparsity: float | None


@dataclass(frozen=True)
class Comparison:
    """The original (first of `runs`), the compressed models, and what sets them apart."""

    runs: dict[str, RunResult]
    specs: dict[str, str]
    seed: int
    changes: list[MetricChange]
    facts: list[ModelFacts]
    latency: list[Latency]
    latency_setup: LatencySetup | None

    @property
    def original(self) -> str:
        return next(iter(self.runs))


def run_names(specs: list[str]) -> list[str]:
    """A name per model or run: a directory's own name (a compressed model's, a run's), else the spec with
    characters other than letters, digits and .=- as '_'; a repeated name gets -2, -3..."""
    names: list[str] = []
    for spec in specs:
        base = Path(spec).name if Path(spec).is_dir() else spec
        base = re.sub(r"[^A-Za-z0-9.=-]+", "_", base).strip("_.") or "model"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def model_facts(name: str, spec: str, model: Classifier) -> ModelFacts:
    """Size, parameters and sparsity of a loaded model. A directory of `rbl compress`: the size of its network file,
    the parameter count and sparsity its card records (of the float network, before int8 packing). A model given
    by spec: its state dict serialised as safetensors (the form `rbl compress --method prune` stores, so the two
    sizes compare), and the counts of its network."""
    if (Path(spec) / CARD).is_file():
        card = read_card(Path(spec))
        return ModelFacts(name, spec, card["method"], (Path(spec) / card["file"]).stat().st_size, card["file"],
                          int(card["parameters"]), float(card["sparsity"]))
    if model.int8:
        return ModelFacts(name, spec, "int8 (inline)", None, "n/a: write it with `rbl compress` to measure it", None,
                          None)
    from safetensors.torch import save

    stats = weight_stats(model.net)
    size = len(save({k: v.detach().clone().contiguous() for k, v in model.net.state_dict().items()}))
    return ModelFacts(name, spec, "uncompressed", size, UNCOMPRESSED_SIZE, int(stats["parameters"]),
                      float(stats["sparsity"]))


def headline_rows(run: RunResult, suites: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(suite, condition, metric) of every headline metric in `run`'s table, of registered suites (of `suites` if
    given), in table order."""
    rows = []
    for suite, condition, metric in run.metrics[["suite", "condition", "metric"]].itertuples(index=False):
        if suite in SUITES and (suites is None or suite in suites) and metric in get_suite(suite).headline:
            rows.append((suite, condition, metric))
    return list(dict.fromkeys(rows))


def metric_changes(original: RunResult, others: dict[str, RunResult], seed: int, suites: list[str] | None = None,
                   progress: Progress = Progress(True)) -> list[MetricChange]:
    """The change of each headline metric of `original` in each run of `others`, paired draw by draw."""
    replicates = Replicates(seed)
    rows = headline_rows(original, suites)
    for run in others.values():
        check_comparable(original, run)
        for suite in dict.fromkeys(s for s, _, _ in rows):
            replicates.check_paired(original, run, suite)
    changes = []
    with progress.bar(len(others) * len(rows), "pairing", "metric") as bar:
        for name, run in others.items():
            for row in rows:
                changes.append(_change(replicates, original, name, run, *row))
                bar.update()
    return changes


def _change(replicates: Replicates, original: RunResult, name: str, run: RunResult, suite: str, condition: str,
            metric: str) -> MetricChange:
    """One row's change, paired draw by draw."""
    b_value, b_draws = replicates.row(original, suite, condition, metric)
    c_value, c_draws = replicates.row(run, suite, condition, metric)
    low, high = np.nanpercentile(c_draws - b_draws, [2.5, 97.5])
    n = run.metrics.query("suite == @suite and condition == @condition and metric == @metric").n
    return MetricChange(name, suite, condition, metric, metric_spec(metric).higher_is_better, float(b_value),
                        float(c_value), float(c_value - b_value), float(low), float(high), int(n.iloc[0]))


def compare_models(specs: list[str], template: EvalSpec, out: Path, progress: Progress,
                   setup: LatencySetup) -> Comparison:
    """Evaluate each model of `specs` (the original first) with `template` into out/<name>/ (cached, resumable),
    measure their latency side by side, and compare every later model with the first. All models are loaded (and
    refused in one line) before anything is evaluated, once: the runs evaluate the loaded models."""
    from .data import load_data

    names = run_names(specs)
    models = {}
    for name, spec in zip(names, specs, strict=True):
        models[name] = load_model(spec, template.arch, template.trust_checkpoint, seed=template.seed)
    classes = {name: model.num_classes for name, model in models.items()}
    if len(set(classes.values())) > 1:
        listed = ", ".join(f"{n}: {k}" for n, k in classes.items())
        raise IncompatibleRuns(f"the models output different class counts ({listed}); compare copies of one classifier")
    _note_sources(specs, models[names[0]].fingerprint, progress)
    facts = [model_facts(name, spec, models[name]) for name, spec in zip(names, specs, strict=True)]
    runs = {}
    for i, (name, spec) in enumerate(zip(names, specs, strict=True), 1):
        progress.note(f"[{i}/{len(specs)}] evaluating {spec} into {out / name}")
        runs[name] = run_spec(replace(template, model=spec), out / name, progress, model=models[name])
    images = next(load_data(template.data, "test").batches(max(setup.batch_sizes)))
    progress.note(f"measuring CPU latency of {len(models)} models side by side")
    with progress.bar(len(setup.batch_sizes) * (setup.warmup + setup.repetitions), "latency", "rep") as bar:
        latency = measure_latency({name: model.cpu() for name, model in models.items()}, to_tensor(images), setup,
                                  bar.update)  # (evaluated on the run's device, timed on the CPU)
    original, *others = names
    changes = metric_changes(runs[original], {n: runs[n] for n in others}, template.seed, template.suites, progress)
    return Comparison(runs, dict(zip(names, specs, strict=True)), template.seed, changes, facts, latency, setup)


def compare_runs(roots: list[str], progress: Progress) -> Comparison:
    """Compare finished run directories (the original first): metric changes only, the runs' own seed."""
    runs = {}
    for name, root in zip(run_names(roots), roots, strict=True):
        runs[name] = load_run(root)
    original, *others = runs
    seeds = {name: run.manifest.get("seed") for name, run in runs.items()}
    if len(set(seeds.values())) > 1:
        raise IncompatibleRuns(f"the runs use different seeds ({', '.join(f'{n}: {s}' for n, s in seeds.items())}); "
                               "compare runs evaluated with the same --seed")
    seed = int(seeds[original] or 0)
    changes = metric_changes(runs[original], {n: runs[n] for n in others}, seed, progress=progress)
    return Comparison(runs, {n: str(r.manifest.get("model")) for n, r in runs.items()}, seed, changes, [], [], None)


def _note_sources(specs: list[str], original: str, progress: Progress) -> None:
    """A notice for each compressed directory that was not made from the original, whose fingerprint is `original`
    (a student, or a slip)."""
    for spec in specs[1:]:
        if (Path(spec) / CARD).is_file():
            card = read_card(Path(spec))
            if card.get("source_fingerprint") != original:
                progress.note(f"notice: {spec} was compressed from {card['source']}, whose weights differ from "
                              f"{specs[0]}; compared all the same")
