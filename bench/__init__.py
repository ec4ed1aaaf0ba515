"""Benchmarks: each `bench/bench_*.py` has a `main()` that prints ratios against its peer, measured in one run."""
