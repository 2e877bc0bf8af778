"""Speed benchmark of a configuration (training, inference, data pipeline, evaluation, memory).

    python tools/benchmark.py --cfg experiments/ap10k/kitpose/kitpose_w32_256x256.yaml --batch 4 [--help]

The harness is `kitpose.benchmark` (its `cli` module documents every measurement).
"""
import sys

from kitpose.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
