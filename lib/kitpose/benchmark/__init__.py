"""Benchmarks: the speed harness behind tools/benchmark.py (see `kitpose.benchmark.cli`), timing
the package's own train step and prediction function."""
