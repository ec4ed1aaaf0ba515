"""The built-in OOD detectors, declared as plain data (this module imports nothing heavy).

A detector's target is a `Detector` subclass (ood/detectors/base.py) whose `name` is the entry's. Its `meta` declares
what it `consumes` (LOGITS, FEATURES, HEAD: the suite extracts representations once and shares them;
INPUT_GRADIENT: the suite hands it the model and the image batches) and what it is `fit_on` (FIT_NONE; FIT_TRAIN or
FIT_VAL: ID representations of that split; FIT_TEMPERATURE: it is built with the run's clean-fitted temperature).
"""
from __future__ import annotations

from robustbench_local.registry import Entry
from robustbench_local.suites import SuiteOption, suite_entry

LOGITS, FEATURES, HEAD, INPUT_GRADIENT = "logits", "features", "head", "input_gradient"
FIT_NONE, FIT_TRAIN, FIT_VAL, FIT_TEMPERATURE = "none", "id-train", "id-val", "clean temperature"


def detector(name: str, target: str, description: str, reference: str, consumes: tuple[str, ...],
             fit_on: str) -> Entry:
    """A detector entry (`target` relative to robustbench_local.ood.detectors)."""
    return Entry(name, f"robustbench_local.ood.detectors.{target}", description, reference,
                 {"consumes": consumes, "fit_on": fit_on})


DETECTORS = (
    detector("msp", "logit:MSP", "negative max softmax probability", "Hendrycks & Gimpel 2017", (LOGITS,), FIT_NONE),
    detector("msp_ts", "logit:TemperatureMSP", "negative max softmax probability at the clean-fitted temperature",
             "Guo et al. 2017 (temperature scaling)", (LOGITS,), FIT_TEMPERATURE),
    detector("maxlogit", "logit:MaxLogit", "negative max logit", "Hendrycks et al. 2022", (LOGITS,), FIT_NONE),
    detector("energy", "logit:Energy", "free energy -T logsumexp(z/T), T=1", "Liu et al. 2020", (LOGITS,), FIT_NONE),
    detector("odin", "odin:ODIN", "negative MSP at T=1000 after an eps=0.0014 input-gradient step (pixel space)",
             "Liang et al. 2018", (INPUT_GRADIENT,), FIT_NONE),
    detector("mahalanobis", "feature:Mahalanobis", "min squared Mahalanobis distance to class means, tied covariance",
             "Lee et al. 2018 (OpenOOD `mds`)", (FEATURES,), FIT_TRAIN),
    detector("knn", "feature:KNN", "distance to the k-th nearest normalised ID train feature, k=50",
             "Sun et al. 2022", (FEATURES,), FIT_TRAIN),
    detector("vim", "feature:ViM", "alpha * ||residual off the principal subspace|| - logsumexp(logits)",
             "Wang et al. 2022", (FEATURES, HEAD, LOGITS), FIT_TRAIN),
    detector("react", "feature:ReAct", "energy of the head on features clipped at the 90th percentile of ID val "
             "activations", "Sun et al. 2021", (FEATURES, HEAD), FIT_VAL),
    detector("gen", "logit:GEN", "generalised entropy of the top-M probabilities", "Liu et al. 2023", (LOGITS,),
             FIT_NONE),
    detector("dice", "feature:DICE", "energy of the sparsified head, p=90", "Sun & Li 2022", (FEATURES, HEAD),
             FIT_TRAIN),
    detector("ash", "feature:ASH", "energy after ASH-B on pooled features, p=90", "Djurisic et al. 2023",
             (FEATURES, HEAD), FIT_NONE),
)

FIT_LIMIT = 50_000  # train images whose features a fitted detector holds, by default (N x D floats)
SUITE_MODULE = "robustbench_local.ood.suite"
SUITE_OPTIONS = (
    SuiteOption("ood_data", "OOD sets: `builtin` or comma-separated data specs, each optionally near=/far=", "builtin",
                f"{SUITE_MODULE}:parse_ood_data"),
    SuiteOption("detectors", "`all` or comma-separated detector names (see `rbl list detectors`)", "all",
                "robustbench_local.ood.detectors:parse_detectors"),
    SuiteOption("ood_limit", "evaluate a deterministic subset of N images of each OOD set (default: --limit)", None,
                f"{SUITE_MODULE}:positive_int"),
    SuiteOption("ood_fit_limit", "fit detectors on a deterministic subset of N ID train images (default 50000: their "
                "features are held in memory)", FIT_LIMIT, f"{SUITE_MODULE}:positive_int"),
)
SUITE = suite_entry("ood", f"{SUITE_MODULE}:SUITE", "OOD detection: MSP, MSP-TS, MaxLogit, Energy, ODIN, Mahalanobis, "
                    "KNN, ViM, ReAct, GEN, DICE, ASH (and plugins') on --ood-data vs the ID test split (AUROC, AUPR, "
                    "FPR@95TPR, near/far means)", SUITE_OPTIONS, "Yang et al. 2022 (OpenOOD)")
