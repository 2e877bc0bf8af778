"""Look at the training pipeline: a PNG grid of augmented samples with keypoints, skeleton and targets.

Each sample gets two tiles: the network input with the visible keypoints and the
skeleton, and the same input with its Gaussian target heatmaps overlaid. Samples
cycle through the dataset, so a small dataset shows several augmentations of
each instance.

    python tools/browse_dataset.py --cfg experiments/ap10k/kitpose/kitpose_w32_256x256.yaml --num 8
    # the AP-10K sample folder (annotation file beside its images) with the published augmentation:
    python tools/browse_dataset.py --cfg experiments/ap10k/kitpose/kitpose_w32_256x256.yaml \
        --out output/browse_ap10k_sample.png \
        DATASET.ROOT tests/data/samples/ap10k DATASET.TRAIN_ANN test_ap10k.json DATASET.IMAGE_DIR .
"""
import argparse
import logging
import os

import cv2

from kitpose.config import load_config
from kitpose.datasets import build_dataset
from kitpose.vis.browse import training_samples_grid


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfg", default="", help="experiment YAML (defaults only when omitted)")
    parser.add_argument("--num", type=int, default=8, help="number of samples shown")
    parser.add_argument("--columns", type=int, default=4, help="samples per grid row")
    parser.add_argument("--out", default="", help="PNG path (default OUTPUT_DIR/browse_<cfg name>.png)")
    parser.add_argument("--seed", type=int, default=0, help="augmentation seed")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return parser.parse_args(argv)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    cfg = load_config(args.cfg or None, args.opts)
    dataset = build_dataset(cfg, is_train=True)
    dataset.set_random_seed(args.seed)
    try:
        grid = training_samples_grid(dataset, args.num, args.columns, cfg.DATASET.COLOR_RGB)
    except ValueError as err:
        raise SystemExit(str(err))
    out = args.out or os.path.join(cfg.OUTPUT_DIR, f"browse_{cfg.CFG_NAME or cfg.DATASET.DATASET}.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if not cv2.imwrite(out, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"could not write {out}")
    logging.getLogger(__name__).info("wrote %d samples to %s", args.num, out)
    return out


if __name__ == "__main__":
    main()
