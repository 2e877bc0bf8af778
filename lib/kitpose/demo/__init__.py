"""Demo tooling: the synthetic quadruped generator behind `make demo` (and the tests and benchmarks
that need pictures with ground truth). Not part of training or inference."""
