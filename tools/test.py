"""Test a checkpoint: `python tools/test.py --cfg X.yaml TEST.MODEL_FILE path.pth [KEY VALUE ...]`.

Prints the metrics table and writes the COCO-format results, metrics.json and, with
TEST.NUM_VIS N, N pictures of predicted skeletons into the run's output folder.
"""
import sys

from kitpose.engine.cli import test_main

if __name__ == "__main__":
    sys.exit(test_main())
