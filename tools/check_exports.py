"""Load the --format files of a tools/infer.py run back (sleap-io, movement) and compare them with its
results.json: `python tools/check_exports.py OUT_DIR` (see kitpose.interop.readback).

Exit status 1 when a file cannot be read, lists other frames or animals, or differs by more than
1e-3 px or 1e-3 in score.
"""
import argparse
import sys

TOLERANCE = 1e-3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="the --out folder of tools/infer.py --format ...")
    args = parser.parse_args(argv)

    from kitpose.interop import InteropError
    from kitpose.interop.readback import read_back

    try:
        checks = read_back(args.out_dir)
    except InteropError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for check in checks:
        print(check.describe())
    good = all(c.same_entries and c.max_xy_difference <= TOLERANCE and c.max_score_difference <= TOLERANCE
               for c in checks)
    print(f"{len(checks)} read-back(s): {'all agree with results.json' if good else 'DIFFERENCES'} "
          f"(tolerance {TOLERANCE})")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
