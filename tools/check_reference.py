"""Compare this implementation with the outputs of the published one and print the largest differences.

    python tools/check_reference.py [--reference DIR] [--samples DIR] [--help]

The comparisons are `benchmarks.reference` in this checkout (its `main` documents the options).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's benchmarks/

from benchmarks.reference import main

if __name__ == "__main__":
    sys.exit(main())
