"""Compare this implementation with the outputs of the published one and print the largest differences.

    python tools/check_reference.py [--reference DIR] [--samples DIR]

DIR defaults to $KITPOSE_REFERENCE_DIR, else the repository's tests/data/reference (samples:
tests/data/samples). Every family of kitpose.reference is compared: the tiny model's outputs and
clusters, the k-medoids case, the losses, the official checkpoint keys, strict loading, and for
each pipeline file (pipeline_reference.pt, published_pipeline_extra.pt when present) training
samples from scripted draws, affine matrices, CutMix, decoding, rescoring + OKS-NMS and the
annotation filter. Parameter counts of experiments/ are printed. Exits 1 when a comparison fails.
"""
import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from kitpose import reference
from kitpose.config import load_config
from kitpose.models import build_model, count_parameters

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DATA = Path("tests") / "data"


def repository_root():
    """The checkout holding tests/data: beside this tool or, for a copied tool, the editable package's."""
    import kitpose
    for root in (REPO_ROOT, Path(kitpose.__file__).resolve().parents[2]):
        if (root / TESTS_DATA).is_dir():
            return root
    return REPO_ROOT


def default_reference_dir():
    """$KITPOSE_REFERENCE_DIR if set, else the repository's tests/data/reference."""
    if os.environ.get("KITPOSE_REFERENCE_DIR"):
        return Path(os.environ["KITPOSE_REFERENCE_DIR"])
    return repository_root() / TESTS_DATA / "reference"


def print_parameter_counts(root):
    print("parameter counts of the published configurations (all / used):")
    for path in sorted((root / "experiments").glob("*/kitpose/*.yaml")):
        cfg = load_config(str(path), ["MODEL.INIT_WEIGHTS", "False"])
        with torch.device("meta"):
            num_all, num_used = count_parameters(build_model(cfg))
        print(f"  {str(path.relative_to(root / 'experiments')):<45} {num_all:>13,} {num_used:>13,}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", default=None, help="reference folder (see above)")
    parser.add_argument("--samples", default=None, help="sample images folder (default tests/data/samples)")
    args = parser.parse_args(argv)
    reference_dir = Path(args.reference) if args.reference else default_reference_dir()
    samples_dir = Path(args.samples) if args.samples else repository_root() / TESTS_DATA / "samples"
    if not (reference_dir / "kitpose_tiny_ap10k_reference.pt").is_file():
        print(f"error: {reference_dir / 'kitpose_tiny_ap10k_reference.pt'} not found (pass --reference DIR)",
              file=sys.stderr)
        return 1
    # the annotation-filter cases skip annotations on purpose: keep their warnings out of the printout
    logging.getLogger("kitpose.datasets").setLevel(logging.ERROR)
    root = repository_root()
    official_cfg = load_config(str(root / "experiments/ap10k/kitpose/kitpose_w32_256x256.yaml"),
                               ["MODEL.INIT_WEIGHTS", "False"])
    comparisons = reference.compare_all(reference_dir, samples_dir, official_cfg)
    for comparison in comparisons:
        print("\n".join(comparison.lines()))
    print_parameter_counts(root)
    failed = [c.family for c in comparisons if c.failed]
    print("all comparisons passed" if not failed else "FAILED: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
