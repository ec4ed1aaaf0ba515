"""OOD detection: detectors on one shared forward pass, OOD metrics with named conventions, built-in OOD
sets, and the `ood` suite (see ood/suite.py; `rbl list detectors`)."""
