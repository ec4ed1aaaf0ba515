"""Suite `corruptions`: accuracy and calibration per corruption x severity, with mCE-style summaries."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from robustbench_local.errors import DataError
from robustbench_local.metrics import classification_metrics, predictions
from robustbench_local.parsing import parse_int
from robustbench_local.records import Records, classification_records
from robustbench_local.suites import BaseSuite, Condition, SuiteOption, TaskContext

from .api import check_images, resolve_params
from .backends import get_backend
from .engine import corrupted_batches, sample_seeds
from .names import PARAM_SETS, check_params, parse_corruptions, parse_severities
from .readers import is_precomputed, precomputed_index
from .summary import paired_rows, summary_rows

NOT_BIT_IDENTICAL = ("on-the-fly corruptions are not bit-identical to the released ImageNet-C / CIFAR-10-C files "
                     "(imagecorruptions reimplements motion blur, elastic, pixelate and frost, and skips the JPEG "
                     "save), so mce_alexnet mixes two distributions; evaluate cifar10c:/imagenetc: sets to compare "
                     "with published numbers")


def _params_option(text: str) -> str:
    return text if text == "auto" else check_params(text)


def _backend_option(text: str) -> str:
    get_backend(text)
    return text


def _workers_option(text: str) -> int | None:
    return None if text == "auto" else parse_int(text, 0)


class CorruptionSuite(BaseSuite):
    name = "corruptions"
    description = ("ImageNet-C / CIFAR-10-C corruptions x severities (on the fly, or precomputed cifar10c:/"
                   "imagenetc: sets): accuracy and calibration per condition, mean corruption accuracy, "
                   "mCE and relative mCE vs AlexNet. Note: " + NOT_BIT_IDENTICAL)
    options = (
        SuiteOption("corruptions", "common, all, a category (noise, blur, weather, digital, validation) or "
                    "NAME,... (see `rbl list corruptions`)", "common", parse_corruptions),
        SuiteOption("severities", "severities, e.g. 1-5, 3 or 1,3,5", "1-5", parse_severities),
        SuiteOption("params", f"corruption parameter set: auto (by image size), {', '.join(PARAM_SETS)}", "auto",
                    _params_option),
        SuiteOption("backend", "corruption backend: fast (batched torch on the model's device; its fidelity report "
                    "passes, see `rbl corrupt --validate`) or reference (imagecorruptions)", "fast", _backend_option),
        SuiteOption("corruption_workers", "processes for the reference backend: auto (all CPUs) or N (0: in-process)",
                    "auto", _workers_option),
    )
    headline = ("mean_corruption_acc", "mean_corruption_error", "mce_alexnet", "relative_mce_alexnet")
    demo_options: ClassVar[dict[str, Any]] = {"corruptions": "common", "severities": "1,5"}  # 30 cheap 32-px tasks

    def conditions(self, options: dict[str, Any]) -> list[Condition]:
        shared = {"params": options["params"], "backend": options["backend"]}
        return [Condition("clean", {"severity": 0})] + [
            Condition(f"{c}/{s}", {"corruption": c, "severity": s, **shared})
            for c in options["corruptions"] for s in options["severities"]]

    def run(self, condition: Condition, ctx: TaskContext) -> Records:
        data = ctx.data
        if condition.name == "clean":
            if is_precomputed(data):  # no clean images in a precomputed set: an empty task, no metrics
                return self._records(np.zeros((0, data.num_classes), np.float32), data.labels[:0], data.ids[:0],
                                     "none", 0, {"source": "precomputed", "note": "no clean images"})
            return self._records(ctx.clean_logits(), data.labels, data.ids, "none", 0, {"source": "clean pass"})
        c, s = condition.params["corruption"], condition.params["severity"]
        if is_precomputed(data):
            index = precomputed_index(data, c, s)
            if not len(index):
                raise DataError(f"{data.name} holds no {c} at severity {s}; choose --corruptions/--severities "
                                "that the set contains")
            logits, info = ctx.model.predict(data.images[index], ctx.batch_size), {"source": "precomputed"}
            return self._records(logits, data.labels[index], data.ids[index], c, s, info)
        check_images(data.images)
        params = resolve_params(condition.params["params"], data.images, _once(ctx.progress.note))
        seeds = sample_seeds(ctx.seed, data.ids, c, s)
        if condition.params["backend"] == "fast":  # corrupt each batch on the model's device, right before it
            from .fast.stream import corrupted_logits
            logit_batches = corrupted_logits(ctx.model, data.images, c, s, seeds, params, ctx.batch_size,
                                             ctx.model.device)
        else:
            batches = corrupted_batches(data.images, c, s, seeds, params, condition.params["backend"],
                                        ctx.options.get("corruption_workers"), ctx.batch_size)
            logit_batches = (ctx.model.predict(batch, ctx.batch_size) for batch in batches)
        chunks = []
        with ctx.progress.bar(len(data), f"{c}/{s}", "img") as bar:
            for logits in logit_batches:
                chunks.append(logits)
                bar.update(len(logits))
        info = {"source": "on-the-fly", "params": params, "backend": condition.params["backend"],
                "note": NOT_BIT_IDENTICAL}
        return self._records(np.concatenate(chunks), data.labels, data.ids, c, s, info)

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


_NOTIFIED: set[str] = set()


def _once(note):
    """`note` that prints each distinct message once per process (the params notice would repeat per task)."""
    def emit(message: str) -> None:
        if message not in _NOTIFIED:
            _NOTIFIED.add(message)
            note(message)
    return emit


SUITE = CorruptionSuite()
