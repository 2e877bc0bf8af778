"""Closing report of a test run, as `make demo` prints it (tools/demo_summary.py): the metrics table
and AP that tools/test.py measured, the wall time and where the pictures are. Exit status 1 when
metrics.json is missing or the AP is below --min-ap, so a demo that did not learn fails visibly."""
import argparse
import json
import os
import sys
import time
from pathlib import Path

from .testing import METRICS_FILE, VIS_DIR
from kitpose.evaluation import format_metrics_table
from kitpose.runtime.amp import cpu_has_native_bf16, cpu_model

PICTURE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="output folder of the demo run (metrics.json, vis/)")
    parser.add_argument("--start", type=float, required=True, help="start time of the demo, seconds since the epoch")
    parser.add_argument("--pictures", nargs="*", default=(), help="further picture folders to list")
    parser.add_argument("--min-ap", type=float, default=0.85, help="the AP the demo promises (default 0.85)")
    return parser.parse_args(argv)


def count_pictures(folder):
    folder = Path(folder)
    return sum(1 for path in folder.iterdir() if path.suffix.lower() in PICTURE_SUFFIXES) if folder.is_dir() else 0


def describe_machine():
    """The line that goes with a demo's wall time: the demo's speed depends on the CPU model and on
    whether its training took the bfloat16 path (TRAIN.AMP bf16 falls back to float32 without it)."""
    precision = "bfloat16 autocast" if cpu_has_native_bf16() else "float32 (no native bfloat16)"
    return f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; CPU training path: {precision}"


def main(argv=None):
    args = parse_args(argv)
    elapsed = time.time() - args.start
    metrics_file = Path(args.run) / METRICS_FILE
    if not metrics_file.is_file():
        print(f"demo: {metrics_file} is missing: tools/test.py did not finish", file=sys.stderr)
        return 1
    report = json.loads(metrics_file.read_text())
    print(f"\n==== KITPose demo: {report['model_file']} on {report['ann_file']} "
          f"({report['num_instances']} instances) ====")
    print(format_metrics_table(report["metrics"], Path(args.run).name))
    primary = float(report["primary"])
    print(f"{'AP' if report['metric'] == 'oks' else 'PCK'}: {primary:.4f}")
    print(f"wall time: {elapsed / 60:.1f} min ({elapsed:.0f} s)")
    print(describe_machine())
    for folder in (Path(args.run) / VIS_DIR, *map(Path, args.pictures)):
        print(f"pictures: {folder} ({count_pictures(folder)} files)")
    if primary < args.min_ap:
        print(f"demo: AP {primary:.4f} is below the promised {args.min_ap}", file=sys.stderr)
        return 1
    return 0

