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
from kitpose.vis.draw import draw_pose
from kitpose.vis.heatmaps import denormalize_image, heatmap_overlay, image_grid


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfg", default="", help="experiment YAML (defaults only when omitted)")
    parser.add_argument("--num", type=int, default=8, help="number of samples shown")
    parser.add_argument("--columns", type=int, default=4, help="samples per grid row")
    parser.add_argument("--out", default="", help="PNG path (default OUTPUT_DIR/browse_<cfg name>.png)")
    parser.add_argument("--seed", type=int, default=0, help="augmentation seed")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return parser.parse_args(argv)


def sample_tiles(dataset, index, rgb):
    image, target, target_weight, meta = dataset[index]
    crop = denormalize_image(image.numpy())
    if not rgb:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    # a joint is drawn when it has a target (visible and on the crop)
    has_target = target_weight.numpy()[:, 0] > 0
    pose = draw_pose(crop, meta["joints"][:, :2], has_target, dataset.meta.skeleton)
    heat = heatmap_overlay(crop, target.numpy(), alpha=0.7, rgb=True)
    caption = f"img {meta['image_id']} ann {meta['ann_id']} rot {meta['rotation']:.0f}"
    cv2.putText(pose, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return pose, heat


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    cfg = load_config(args.cfg or None, args.opts)
    dataset = build_dataset(cfg, is_train=True)
    if len(dataset) == 0:
        raise SystemExit(f"{dataset.ann_file}: no training instances to show")
    dataset.set_random_seed(args.seed)
    tiles = []
    for position in range(args.num):
        tiles.extend(sample_tiles(dataset, position % len(dataset), cfg.DATASET.COLOR_RGB))
    grid = image_grid(tiles, columns=2 * args.columns)
    out = args.out or os.path.join(cfg.OUTPUT_DIR, f"browse_{cfg.CFG_NAME or cfg.DATASET.DATASET}.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if not cv2.imwrite(out, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"could not write {out}")
    logging.getLogger(__name__).info("wrote %d samples to %s", args.num, out)
    return out


if __name__ == "__main__":
    main()
