"""Speed benchmark of a configuration (training, inference, data pipeline, evaluation, memory).

    python tools/benchmark.py --cfg experiments/ap10k/kitpose/kitpose_w32_256x256.yaml --batch 4 [--help]

The harness is `benchmarks.speed` in this checkout (its docstring documents every measurement).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's benchmarks/

from benchmarks.speed import main

if __name__ == "__main__":
    sys.exit(main())
