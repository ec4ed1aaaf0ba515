"""The built-in corruption backends, declared as plain data (this module imports nothing heavy).

A backend's target is `fn(images, corruption, severity, seeds, params) -> images` on uint8 NHWC numpy batches (see
backends.py). Its `meta` declares how the engine runs it: `processes` (True: fan batches out over worker processes,
for CPU-bound numpy code) and `on_device` ("module:function" of a twin on uint8 NCHW tensors that corrupts a batch on
the model's device, right before the model; None when the backend has none).
"""
from __future__ import annotations

from robustbench_local.registry import Entry
from robustbench_local.suites import SuiteOption, suite_entry

from .names import PARAM_SETS

BACKENDS = (
    Entry("reference", "robustbench_local.corruptions.reference:corrupt_batch",
          "imagecorruptions 1.1.2 (+ compat layer) per image, fanned out over processes",
          "Hendrycks & Dietterich 2019", {"processes": True, "on_device": None}),
    Entry("fast", "robustbench_local.corruptions.fast:corrupt_batch",
          "batched torch ops on (N, C, H, W) tensors, CPU or GPU (corruptions/fast)", "this package",
          {"processes": False, "on_device": "robustbench_local.corruptions.fast:corrupt_tensor"}),
)

NOT_BIT_IDENTICAL = ("on-the-fly corruptions are not bit-identical to the released ImageNet-C / CIFAR-10-C files "
                     "(imagecorruptions reimplements motion blur, elastic, pixelate and frost, and skips the JPEG "
                     "save), so mce_alexnet mixes two distributions; evaluate cifar10c:/imagenetc: sets to compare "
                     "with published numbers")
SUITE_MODULE = "robustbench_local.corruptions.suite"
SUITE_OPTIONS = (
    SuiteOption("corruptions", "common, all, a category (noise, blur, weather, digital, validation) or NAME,... (see "
                "`rbl list corruptions`)", "common", "robustbench_local.corruptions.names:parse_corruptions"),
    SuiteOption("severities", "severities, e.g. 1-5, 3 or 1,3,5", "1-5",
                "robustbench_local.corruptions.names:parse_severities"),
    SuiteOption("params", f"corruption parameter set: auto (by image size), {', '.join(PARAM_SETS)}", "auto",
                f"{SUITE_MODULE}:params_option"),
    SuiteOption("backend", "corruption backend: fast (batched torch on the model's device; its fidelity report passes, "
                "see `rbl corrupt --validate`), reference (imagecorruptions) or a plugin's (see `rbl list "
                "corruptions`)", "fast", f"{SUITE_MODULE}:backend_option"),
    SuiteOption("corruption_workers", "processes for the reference backend: auto (all CPUs) or N (0: in-process)",
                "auto", f"{SUITE_MODULE}:workers_option"),
)
SUITE = suite_entry("corruptions", f"{SUITE_MODULE}:SUITE", "ImageNet-C / CIFAR-10-C corruptions x severities (on the "
                    "fly, or precomputed cifar10c:/imagenetc: sets): accuracy and calibration per condition, mean "
                    "corruption accuracy, mCE and relative mCE vs AlexNet. Note: " + NOT_BIT_IDENTICAL, SUITE_OPTIONS,
                    "Hendrycks & Dietterich 2019")
