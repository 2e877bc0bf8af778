"""Generate the synthetic AP-10K-schema quadruped set (the embedded default data for `make demo`).

    python tools/make_synthetic.py --out data/synthetic_ap10k --train 2000 --val 200 --seed 0

Writes <out>/annotations/ap10k-{train,val,test}-split1.json and <out>/data/*.jpg. A rerun with
the same parameters finds the manifest and returns at once; --force regenerates.
"""
import argparse
import logging
import os
import sys

from kitpose.demo.synthetic import generate_synthetic_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/synthetic_ap10k", help="output folder (AP-10K layout)")
    parser.add_argument("--train", type=int, default=2000, help="training images")
    parser.add_argument("--val", type=int, default=200, help="validation images")
    parser.add_argument("--test", type=int, default=None, help="test images (default: as many as --val)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    parser.add_argument("--force", action="store_true", help="regenerate even when the same set exists")
    # sched_getaffinity (the CPUs this process may use, e.g. under taskset) exists on Linux only
    usable_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    parser.add_argument("--workers", type=int, default=usable_cpus,
                        help="rendering processes (default: the CPUs this process may use); the files do not "
                             "depend on it")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    test = args.val if args.test is None else args.test
    try:
        generate_synthetic_dataset(args.out, args.train, args.val, test, seed=args.seed, force=args.force,
                                   workers=args.workers)
    except (FileExistsError, ValueError) as err:
        logging.getLogger("make_synthetic").error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
