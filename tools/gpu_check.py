"""GPU check: proves the CUDA paths right and measures GPU training and inference speed, in one command.

    python tools/gpu_check.py --device cuda --json output/gpu_check.json      # the device run
    python tools/gpu_check.py --device cpu --quick                            # the same code paths on a CPU

The harness is `benchmarks.gpu_check` in this checkout (its docstring lists every part;
docs/gpu_check.md says what the device machine needs).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's benchmarks/

from benchmarks.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
