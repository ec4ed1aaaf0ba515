"""ImageNet-C / CIFAR-10-C corruptions: names and parameter sets, the imagecorruptions compatibility layer,
backends, the streaming engine, readers for precomputed sets, mCE, and the `corruptions` suite.

Modules a worker process imports (`compat`, `cifar`, `reference`) do not import torch or robustbench_local.
"""
