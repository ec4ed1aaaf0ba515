"""Adversarial robustness over torchattacks: attack specs (registry.py; built-ins declared in entries.py, builders
in builders.py), threat model and contract (threat.py), per-point worst-case engine (engine.py), sanity checks
(checks.py) and the `attacks` suite (suite.py). Importing the package imports nothing heavy."""
