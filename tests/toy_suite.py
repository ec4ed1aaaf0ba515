"""A small multi-task suite used to test the runner (resume, caching, executors); it adds seeded noise per sample and
records the thread count each shard ran with (float kernels may sum in another order with another count, so every
executor must run shards with the run's).

With $RBL_TOY_KILL_ONCE set to a path, the first worker process to run condition noise:2.0 dies.
With $RBL_TOY_HOLD set to a path, each task creates PATH.started and waits until PATH exists (a run kept busy).
"""
from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustbench_local.record_schema import CLASSIFICATION_SCHEMA, INT
from robustbench_local.records import Records, classification_records
from robustbench_local.runner.execute import Task
from robustbench_local.seeding import numpy_rng
from robustbench_local.suites import BaseSuite, Condition, SuiteOption, TaskContext, suite_entry


class ToySuite(BaseSuite):
    name = "toy"
    record_schema = {**CLASSIFICATION_SCHEMA, "threads": INT}
    interrupt_at: str | None = None
    calls: list[str] = []

    def conditions(self, options: dict[str, Any]) -> list[Condition]:
        return [Condition(f"noise:{s}", {"scale": s}) for s in options["scales"]]

    def run(self, condition: Condition, ctx: TaskContext) -> Records:
        if condition.name == self.interrupt_at:
            raise KeyboardInterrupt
        marker = os.environ.get("RBL_TOY_KILL_ONCE")
        if marker and multiprocessing.parent_process() is not None and condition.name == "noise:2.0" \
                and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # a worker dying mid-shard
        hold = os.environ.get("RBL_TOY_HOLD")
        if hold:
            Path(f"{hold}.started").touch()
            while not os.path.exists(hold):
                time.sleep(0.05)
        self.calls.append(condition.name)
        noise = np.stack([numpy_rng(ctx.seed, Task(self, condition).key, i).normal(size=ctx.model.num_classes)
                          for i in ctx.data.ids])
        return classification_records(ctx.clean_logits() + condition.params["scale"] * noise,
                                      ctx.data.labels, ctx.data.ids, threads=np.full(len(ctx.data), torch.get_num_threads()))


SUITE = ToySuite()
# Registered through the public mechanism (`SUITES.register(ENTRY)`, or an entry point naming ENTRY): options, records,
# metrics and gate rules then come from this module alone.
ENTRY = suite_entry("toy", "toy_suite:SUITE", "logit noise at several scales (test only)",
                    (SuiteOption("scales", "comma-separated noise scales", "0.5,1,2,4",
                                 lambda s: [float(v) for v in s.split(",")]),))

