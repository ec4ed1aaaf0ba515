"""Suite `corruptions`: accuracy and calibration per corruption x severity, with mCE-style summaries."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from robustbench_local.errors import DataError
from robustbench_local.metrics import classification_metrics, predictions
from robustbench_local.parsing import parse_int
from robustbench_local.record_schema import CLASSIFICATION_SCHEMA, INT, TEXT
from robustbench_local.records import Records, classification_records
from robustbench_local.registry import load_target
from robustbench_local.suites import BaseSuite, Condition, TaskContext

from .api import check_size, resolve_params
from .backends import get_backend
from .engine import corrupted_batches, sample_seeds
from .entries import NOT_BIT_IDENTICAL
from .names import check_params
from .readers import variant_name
from .summary import SPECS, paired_rows, summary_rows


def params_option(text: str) -> str:
    return text if text == "auto" else check_params(text)


def backend_option(text: str) -> str:
    get_backend(text)
    return text


def workers_option(text: str) -> int | None:
    return None if text == "auto" else parse_int(text, 0)


class CorruptionSuite(BaseSuite):
    name = "corruptions"
    grouped = True  # a shard's clean images are decoded once for all its conditions
    headline = ("mean_corruption_acc", "mean_corruption_error", "mce_alexnet", "relative_mce_alexnet")
    metric_specs = SPECS
    record_schema = {**CLASSIFICATION_SCHEMA, "corruption": TEXT, "severity": INT}
    report_module = "robustbench_local.corruptions.report"
    demo_options: ClassVar[dict[str, Any]] = {"corruptions": "common", "severities": "1,5"}  # 30 cheap 32-px tasks

    def conditions(self, options: dict[str, Any]) -> list[Condition]:
        shared = {"params": options["params"], "backend": options["backend"]}
        return [Condition("clean", {"severity": 0})] + [
            Condition(f"{c}/{s}", {"corruption": c, "severity": s, **shared})
            for c in options["corruptions"] for s in options["severities"]]

    def run(self, condition: Condition, ctx: TaskContext) -> Records:
        return self.run_group([condition], ctx)[0]

    def run_group(self, conditions: list[Condition], ctx: TaskContext) -> list[Records]:
        """Precomputed sets: each condition reads its own variant. On the fly: one pass over the shard, each clean
        batch decoded once and corrupted under every condition."""
        if ctx.data.variants:
            return [self._precomputed(condition, ctx) for condition in conditions]
        return self._on_the_fly(conditions, ctx)

    def _precomputed(self, condition: Condition, ctx: TaskContext) -> Records:
        data = ctx.data
        if condition.name == "clean":  # no clean images in a precomputed set: an empty task, no metrics
            return self._records(np.zeros((0, data.num_classes), np.float32), data.labels[:0], data.ids[:0], "none",
                                 0, {"source": "precomputed", "note": "no clean images"})
        c, s = condition.params["corruption"], condition.params["severity"]
        if variant_name(c, s) not in data.variants:
            raise DataError(f"{data.name} holds no {c} at severity {s}; choose --corruptions/--severities that the "
                            "set contains (or restrict the set with ?corruptions=&severities=)")
        view = data.with_variant(variant_name(c, s))
        with ctx.progress.bar(len(view), f"{c}/{s}", "img") as bar:
            logits = ctx.model.predict_stream(_counted(view.batches(ctx.batch_size), bar))
        return self._records(logits, view.labels, view.ids, c, s, {"source": "precomputed"})

    def _on_the_fly(self, conditions: list[Condition], ctx: TaskContext) -> list[Records]:
        data, model = ctx.data, ctx.model
        corrupted = [cond for cond in conditions if cond.name != "clean"]
        params: dict[str, str] = {}  # the parameter sets, chosen by the size of the first batch
        seeds = {cond.name: sample_seeds(ctx.seed, data.ids, cond.params["corruption"], cond.params["severity"])
                 for cond in corrupted}
        chunks: dict[str, list[np.ndarray]] = {cond.name: [] for cond in conditions}
        known = ctx.clean_logits.known  # computed by another suite: no second model pass over the clean images
        label = conditions[0].name if len(conditions) == 1 else f"{len(conditions)} conditions"
        with ctx.progress.bar(len(data) * len(conditions), label, "img") as bar:
            start = 0
            for batch in data.batches(ctx.batch_size):
                rows = slice(start, start + len(batch))
                if corrupted and not params:
                    check_size(*batch.shape[1:3])
                    note = _once(ctx.progress.note)
                    params = {p: resolve_params(p, batch.shape[1:3], note) for p in {c.params["params"] for c in corrupted}}
                on_device = None
                for cond in conditions:
                    device_twin = cond.name != "clean" and get_backend(cond.params["backend"]).meta["on_device"]
                    if cond.name == "clean":  # the shard's clean logits, shared with every suite
                        logits = model.predict(batch, ctx.batch_size) if known is None else known[rows]
                    elif device_twin:  # the backend corrupts on the model's device, right before it
                        from .fast.stream import corrupted_logits, to_device

                        on_device = to_device(batch, model.device) if on_device is None else on_device
                        logits = corrupted_logits(model, on_device, load_target(device_twin), cond.params["corruption"],
                                                  cond.params["severity"], seeds[cond.name][rows],
                                                  params[cond.params["params"]])
                    else:
                        images = np.concatenate(list(corrupted_batches(
                            batch, cond.params["corruption"], cond.params["severity"], seeds[cond.name][rows],
                            params[cond.params["params"]], cond.params["backend"], ctx.options.get("corruption_workers"),
                            ctx.batch_size)))
                        logits = model.predict(images, ctx.batch_size)
                    chunks[cond.name].append(logits)
                    bar.update(len(batch))
                start += len(batch)
        empty = np.zeros((0, model.num_classes), np.float32)
        if known is None and "clean" in chunks:
            ctx.clean_logits.keep(np.concatenate(chunks["clean"]) if chunks["clean"] else empty)
        return [self._condition_records(cond, np.concatenate(chunks[cond.name]) if chunks[cond.name] else empty,
                                        data, params) for cond in conditions]

    def _condition_records(self, cond: Condition, logits: np.ndarray, data, params: dict[str, str]) -> Records:
        if cond.name == "clean":
            return self._records(logits, data.labels, data.ids, "none", 0, {"source": "clean pass"})
        info = {"source": "on-the-fly", "params": params.get(cond.params["params"], cond.params["params"]),
                "backend": cond.params["backend"], "note": NOT_BIT_IDENTICAL}
        return self._records(logits, data.labels, data.ids, cond.params["corruption"], cond.params["severity"], info)

    @staticmethod
    def _records(logits: np.ndarray, labels: np.ndarray, ids: np.ndarray, corruption: str, severity: int,
                 info: dict) -> Records:
        n = len(labels)
        records = classification_records(logits, labels, ids, corruption=np.full(n, corruption),
                                         severity=np.full(n, severity, np.int64))
        records.info = info
        return records

    def metrics(self, records: Records, temperature: float | None, seed_parts: tuple) -> list[dict]:
        """Calibration metrics per condition, the summary's ones also under the run's shared (paired) resamples."""
        if not len(records.table):
            return []
        variants = predictions(records.logits, records.table["label"].to_numpy(), temperature)
        return paired_rows(classification_metrics(variants, seed_parts), records, variants, seed_parts[0])

    def summary(self, metrics) -> list[dict]:
        return summary_rows(metrics)


def _counted(batches: Iterator[np.ndarray], bar) -> Iterator[np.ndarray]:
    """`batches`, advancing `bar` by each batch's size."""
    for batch in batches:
        yield batch
        bar.update(len(batch))


_NOTIFIED: set[str] = set()


def _once(note):
    """`note` that prints each distinct message once per process (the params notice would repeat per task)."""
    def emit(message: str) -> None:
        if message not in _NOTIFIED:
            _NOTIFIED.add(message)
            note(message)
    return emit


SUITE = CorruptionSuite()
