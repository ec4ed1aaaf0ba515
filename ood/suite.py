"""Suite `ood`: one condition per (OOD set × detector), named `<set>:<detector>`; ID test samples are the
negatives, the OOD set the positives; the summary gives OpenOOD's near/far means per detector."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from robustbench_local.data import DataSource, load_data, parse_data_spec
from robustbench_local.data.builtin import builtin_datasets
from robustbench_local.errors import DataError, SpecError
from robustbench_local.metrics import metric_row
from robustbench_local.metrics.contract import MetricSpec
from robustbench_local.models import Classifier
from robustbench_local.parsing import parse_int
from robustbench_local.record_schema import OOD_SCHEMA, TEXT
from robustbench_local.records import Records, ood_records
from robustbench_local.registry import DETECTORS
from robustbench_local.suites import BaseSuite, Condition, TaskContext

from .builtin_sets import OOD_SETS, SIZE
from .cache import fitted, memo, representations
from .detectors import build, parse_detectors
from .entries import FEATURES, FIT_TRAIN, HEAD, INPUT_GRADIENT
from .metrics import OOD_METRICS, SPECS, ood_metric_rows
from .representations import Representations

KINDS = ("near", "far")


def positive_int(text: str) -> int:
    return parse_int(text, 1)


def parse_ood_data(text: str) -> tuple[tuple[str, str], ...]:
    """`builtin` (every built-in OOD set) or comma-separated specs, each optionally `near=SPEC` / `far=SPEC`,
    -> ((kind, spec), ...). Built-in sets carry their own kind; other sets are far unless marked near."""
    out: list[tuple[str, str]] = []
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        if entry == "builtin":
            out += [(s.kind, f"builtin:{name}") for name, s in OOD_SETS.items()]
            continue
        kind, sep, spec = entry.partition("=")
        if not sep or kind not in KINDS:
            kind, spec = "", entry
        parsed = parse_data_spec(spec)
        if parsed.scheme == "builtin" and parsed.target not in builtin_datasets():
            raise SpecError(f"unknown built-in data set {parsed.target!r}; OOD sets: {', '.join(OOD_SETS)}")
        default = OOD_SETS[parsed.target].kind if parsed.target in OOD_SETS else "far"
        out.append((kind or default, spec))
    if not out:
        raise SpecError("empty list; give `builtin` or data specs such as imagefolder:DIR")
    return tuple(dict.fromkeys(out))


def missing_for(detector: str, consumes: tuple[str, ...], model: Classifier, reps: Callable[[], Representations]
                ) -> str | None:
    """What `model` cannot give a detector that consumes `consumes` (None: it can serve it), with the fix: input
    gradients of an int8 network, or the penultimate features and linear head that `reps()` (the ID
    representations, extracted once) holds only when the model exposes them."""
    if INPUT_GRADIENT in consumes:
        return ("input gradients, which an int8 network has not (zero almost everywhere); evaluate its float original "
                f"for {detector}") if model.int8 else None
    if FEATURES not in consumes and HEAD not in consumes:
        return None
    if reps().features is None:
        return ("penultimate features, which this model does not expose; load it with a builtin, torchvision or timm "
                "spec or ?features=LAYER")
    if HEAD in consumes and reps().head is None:
        return "the classifier head: its logits are not the output of a final nn.Linear on its features"
    return None


def set_label(spec: str) -> str:
    """Short name of an OOD data spec for condition names: `noise-uniform`, `imagefolder-textures`."""
    parsed = parse_data_spec(spec)
    if parsed.scheme == "builtin":
        return parsed.target.removeprefix("ood-")
    return f"{parsed.scheme}-{PurePath(parsed.target.rstrip('/')).name or parsed.target}"


def check_image_size(model, id_data: DataSource, ood: DataSource) -> None:
    """Refuse OOD images of another size than the ID images unless the model declares (and resizes to) one."""
    if len(ood) == 0:
        raise DataError(f"OOD set {ood.name} is empty; point --ood-data at a set with images")
    id_size, ood_size = id_data.image_shape[:2], ood.image_shape[:2]
    if ood_size != id_size and model.input_size is None:
        h, w = id_size
        raise DataError(f"OOD set {ood.name} has {ood_size[0]}x{ood_size[1]} images but the ID data has {h}x{w} "
                        f"and the model declares no input size; resize the OOD set (imagefolder:DIR?resize={h}"
                        f"&crop={h}) or load the model with ?input_size={h}")


class OODSuite(BaseSuite):
    name = "ood"
    headline = ("auroc_mean", "fpr_at_95tpr_id_mean")
    record_schema = {**OOD_SCHEMA, "detector": TEXT, "ood_set": TEXT}
    metric_specs = (*SPECS, *(MetricSpec(f"{s.name}_mean", s.higher_is_better, s.low, s.high,
                                         f"unweighted mean over the near (or far) OOD sets of {s.name}: {s.definition}")
                              for s in SPECS))
    report_module = "robustbench_local.ood.report"
    shardable = False  # a task scores the whole ID test split against the whole OOD set
    demo_options: ClassVar[dict[str, Any]] = {"ood_data": "builtin", "detectors": "msp,energy,odin,mahalanobis,knn,vim,react",
                                              "ood_limit": 120}

    def conditions(self, options: dict[str, Any]) -> list[Condition]:
        sets = options.get("ood_data") or parse_ood_data("builtin")
        detectors = options.get("detectors") or parse_detectors("all")
        labels = [set_label(spec) for _, spec in sets]
        labels = [lab if labels.count(lab) == 1 else f"{lab}-{labels[:i + 1].count(lab)}"
                  for i, lab in enumerate(labels)]
        return [Condition(f"{label}:{det}", {"ood_data": spec, "ood_set": label, "kind": kind, "detector": det,
                                             "ood_limit": options.get("ood_limit"),
                                             "ood_fit_limit": options.get("ood_fit_limit")})
                for (kind, spec), label in zip(sets, labels, strict=True) for det in detectors]

    def run(self, condition: Condition, ctx: TaskContext) -> Records:
        p = condition.params
        spec = self._ood_spec(p["ood_data"], ctx)
        if spec is None:  # a digit-specific built-in set next to other data: not OOD in any useful sense
            memo(ctx.model, ("digits-only-note", p["ood_data"]), lambda: ctx.progress.note(
                f"notice: {p['ood_data']} is made of digits, a near-OOD set for builtin:digits only; skipped for "
                f"{ctx.data.name} (pass --ood-data with near-OOD sets of your own)"))
            return self._empty()
        limit = p["ood_limit"] or ctx.limit
        ood = memo(ctx.model, ("ood-set", spec, limit), lambda: load_data(spec, "test", limit))
        check_image_size(ctx.model, ctx.data, ood)
        detector = build(p["detector"], ctx.temperature)
        missing = missing_for(detector.name, detector.info.meta["consumes"], ctx.model,
                              lambda: representations(ctx.model, ctx.data, ctx.batch_size))
        if missing:  # logit detectors run on every model; the others only where the model can serve them
            memo(ctx.model, ("missing-note", detector.name), lambda: ctx.progress.note(
                f"notice: detector {detector.name} needs {missing}; skipped for {ctx.model.name} (logit detectors "
                "such as msp, energy, gen run on every model)"))
            return self._empty()
        if INPUT_GRADIENT in detector.info.meta["consumes"]:  # scored on the inputs themselves (e.g. ODIN)
            s_id, s_ood = (memo(ctx.model, ("inputs", repr(detector), d.fingerprint),
                                lambda d=d: detector.score_inputs(ctx.model, d.batches(ctx.batch_size)))
                           for d in (ctx.data, ood))
        else:
            if detector.requires_fit:
                role = "train" if detector.info.meta["fit_on"] == FIT_TRAIN else "val"
                fit_data = self._fit_data(ctx, role, p["ood_fit_limit"] if role == "train" else None, detector.name)
                memo(ctx.model, ("overlap-note", fit_data.fingerprint), lambda: self._note_overlap(fit_data, ctx))
                detector = fitted(detector, ctx.model, fit_data, ctx.batch_size, ctx.run_dir, role, ctx.progress)
            s_id, s_ood = (detector.score(representations(ctx.model, d, ctx.batch_size)) for d in (ctx.data, ood))
        ids = np.concatenate([ctx.data.ids.astype(str), np.char.add("ood:", ood.ids.astype(str))])
        is_ood = np.r_[np.zeros(len(s_id), bool), np.ones(len(s_ood), bool)]
        records = ood_records(ids, is_ood, np.r_[s_id, s_ood].astype(np.float64), detector=detector.name,
                              ood_set=p["ood_set"])
        records.info = {"detector": repr(detector), "kind": p["kind"], "ood_data": p["ood_data"],
                        "ood_name": ood.name}
        return records

    @staticmethod
    def _empty() -> Records:
        """The records of a skipped condition (no metrics come of them)."""
        return ood_records(np.zeros(0, str), np.zeros(0, bool), np.zeros(0), detector=np.zeros(0, str),
                           ood_set=np.zeros(0, str))

    @staticmethod
    def _ood_spec(spec: str, ctx: TaskContext) -> str | None:
        """`spec`, with built-in OOD sets drawn at the ID images' size; None for a digit-specific set next to data
        that is not the digits."""
        parsed = parse_data_spec(spec)
        if parsed.scheme != "builtin" or parsed.target not in OOD_SETS or "size" in parsed.options:
            return spec
        if OOD_SETS[parsed.target].digits_only and not ctx.data.name.startswith("builtin:digits"):
            return None
        height, width = ctx.data.image_shape[:2]
        return spec if (height, width) == (SIZE, SIZE) else f"{spec}{'&' if parsed.options else '?'}size={height}"

    @staticmethod
    def _fit_data(ctx: TaskContext, role: str, limit: int | None, detector: str) -> DataSource:
        origin = ctx.data.origin
        try:
            if origin is None:
                raise DataError(f"{ctx.data.name} was given as arrays, with no data spec to open")
            return memo(ctx.model, ("fit-set", origin.spec, role, limit), lambda: load_data(origin.spec, role, limit))
        except (DataError, SpecError) as exc:
            raise DataError(f"detector {detector!r} is fitted on the ID {role} split, which {ctx.data.name!r} "
                            f"does not provide ({exc}); pick detectors that need no fitting, e.g. "
                            "--detectors msp,maxlogit,energy,odin") from None

    @staticmethod
    def _note_overlap(fit_data: DataSource, ctx: TaskContext) -> None:
        """Warn when the fitting set holds images of the evaluated set (same file or same pixels)."""
        shared = int(np.isin(fit_data.origins(), ctx.data.origins()).sum())
        if shared:
            ctx.progress.note(f"warning: detectors are fitted on {fit_data.name}, which shares {shared} images with "
                              "the ID test split; fitted detectors will look better than they are")

    def metrics(self, records: Records, temperature: float | None, seed_parts: tuple) -> list[dict]:
        """OOD metrics; the ID resamples are keyed by the run seed only, so every task of the run shares them."""
        t = records.table
        if not len(t):  # a set skipped for this data (see run)
            return []
        return ood_metric_rows(t["score"].to_numpy(), t["is_ood"].to_numpy(bool), (seed_parts[0], "ood-id"),
                               seed_parts)

    def summary(self, metrics: pd.DataFrame) -> list[dict]:
        """OpenOOD's near/far rows `<metric>_mean`: the unweighted mean over the OOD sets of one kind, with a
        percentile interval from the per-set bootstrap replicates (which share the ID resamples); `n` sums the
        conditions' sample counts (ID samples once per set)."""
        params = metrics["params"].map(json.loads)
        frame = metrics.assign(**{key: params.map(lambda q, key=key: q.get(key))
                                  for key in ("kind", "detector", "ood_data")})
        frame = frame[frame["metric"].isin(list(OOD_METRICS)) & frame["kind"].isin(KINDS)]
        order = {name: i for i, name in enumerate([*KINDS, *DETECTORS, *OOD_METRICS])}
        frame = frame.sort_values(["kind", "detector", "metric"], key=lambda col: col.map(order), kind="stable")
        rows = []
        for (kind, detector, metric), group in frame.groupby(["kind", "detector", "metric"], sort=False):
            draws = None
            if "paired" in group and group["paired"].map(lambda r: isinstance(r, list)).all():
                draws = np.mean(np.stack(group["paired"].map(np.asarray)), axis=0)
            rows.append({**metric_row(f"{metric}_mean", group["value"].mean(), draws, group["n"].sum()),
                         "condition": f"{kind}:{detector}",
                         "params": json.dumps({"mean_over": sorted(group["ood_data"]), "kind": kind,
                                               "detector": detector}, sort_keys=True)})
        return rows


SUITE = OODSuite()
