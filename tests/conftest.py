"""Shared fixtures: CPU-only, small, deterministic."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("RBL_DEVICE", "cpu")


def pytest_report_header(config) -> str:
    """The setup float results depend on (`make test` reruns the `numerics` tests at other CPU capabilities)."""
    from robustbench_local.device import cpu_setup

    return "cpu setup: " + ", ".join(f"{k} {v}" for k, v in cpu_setup().items())


@pytest.fixture(scope="session")
def digits_test():
    from robustbench_local import load_data

    return load_data("builtin:digits", "test")


@pytest.fixture(scope="session")
def digits_model():
    from robustbench_local import load_model

    return load_model("builtin:digits-cnn")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module: attacks make many small tensor ops, and more threads oversubscribe a busy
    2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
