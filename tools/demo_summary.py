"""Closing report of `make demo`: the metrics table and AP that tools/test.py measured, the wall time
and where the pictures are.

    python tools/demo_summary.py --run RUN_DIR --start EPOCH_SECONDS [--pictures DIR ...] [--min-ap 0.8]

RUN_DIR is the training/test output folder (it holds metrics.json and vis/). Exit status 1 when
metrics.json is missing or the AP is below --min-ap, so a demo that did not learn fails visibly.
"""
import sys

from kitpose.engine.summary import main

if __name__ == "__main__":
    sys.exit(main())
