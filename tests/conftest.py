"""Shared fixtures: CPU-only, small, deterministic."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("RBL_DEVICE", "cpu")


@pytest.fixture(scope="session")
def digits_test():
    from robustbench_local import load_data

    return load_data("builtin:digits", "test")


@pytest.fixture(scope="session")
def digits_model():
    from robustbench_local import load_model

    return load_model("builtin:digits-cnn")
