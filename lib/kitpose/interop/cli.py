"""Command line of tools/import_labels.py (see kitpose.interop.labels_in for the conversion rules).

    python tools/import_labels.py SOURCE --out data/NAME/ [--val-fraction 0.2 --seed 0 | --val-source FILE]
        [--images copy|link] [--flip-pairs 'a:b,...'|none] [--skeleton 'a-b,...'] [--sigma 0.05] [--overwrite]

(`kitpose-import-labels` when the package is installed.)

SOURCE: a DeepLabCut project folder or its config.yaml, a SLEAP .slp, or any labels file sleap-io
reads (--source-format names its format when the extension does not). A source that cannot be
converted ends with one error line and exit status 1.
"""
import argparse
import logging
import sys

from kitpose.codecs.keypoint_box import DEFAULT_BOX_MARGIN

from . import InteropError
from .finetune import FINE_TUNE_TRAIN_SAMPLES
from .labels_in import BUILTIN_TEMPLATE, DEFAULT_SIGMA, DEFAULT_TRAIN_SAMPLES, DEFAULT_VAL_FRACTION, import_labels

logger = logging.getLogger("import_labels")

__all__ = ["import_main"]


def frame_range_argument(text):
    """'START:STOP[:STEP]' -> (start, stop, step), non-negative, STOP > START, STEP >= 1."""
    try:
        values = [int(part) for part in text.split(":")]
    except ValueError:
        values = []
    if len(values) == 2:
        values.append(1)
    if len(values) != 3 or values[0] < 0 or values[1] <= values[0] or values[2] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected START:STOP[:STEP] with 0 <= START < STOP, STEP >= 1")
    return tuple(values)


def import_main(argv=None):
    parser = argparse.ArgumentParser(description="Labelled animals from DeepLabCut, SLEAP or any format sleap-io "
                                     "reads -> COCO train/val files, images, metainfo and a training YAML.")
    parser.add_argument("source", help="DeepLabCut project folder or config.yaml, SLEAP .slp, or another labels file")
    parser.add_argument("--out", required=True, help="output folder, e.g. data/my_animals/ (absent or empty, "
                        "or see --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace the earlier import in --out (its "
                        "meta.json with any hand edits, YAML, annotations and images); refused when --out "
                        "holds files the import did not write")
    parser.add_argument("--name", default="", help="data set name: YAML and metainfo name (default: --out's name)")
    parser.add_argument("--source-format", default=None, help="sleap-io format name (coco, labelstudio, nwb, jabs, "
                        "ultralytics, analysis_h5, ...; default: from the file)")
    parser.add_argument("--val-source", default=None, help="a second labels file used as the validation split")
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                        help=f"without --val-source: share of the labelled frames held out (default "
                        f"{DEFAULT_VAL_FRACTION})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random frame split (default 0)")
    parser.add_argument("--images", choices=("copy", "link"), default="copy",
                        help="copy the labelled images (default) or symlink them; video frames are written as PNG")
    parser.add_argument("--flip-pairs", default=None, help="left/right pairs 'a:b,c:d' or 'none' "
                        "(default: inferred from left/right names)")
    parser.add_argument("--skeleton", default=None, help="limbs 'a-b,b-c' (default: the source's skeleton)")
    parser.add_argument("--sigma", type=float, default=DEFAULT_SIGMA,
                        help=f"OKS sigma of every keypoint (default {DEFAULT_SIGMA}; editable per keypoint in meta.json)")
    parser.add_argument("--box-margin", type=float, default=DEFAULT_BOX_MARGIN,
                        help=f"box = labelled keypoints' extent + this x its longer side on each side "
                        f"(default {DEFAULT_BOX_MARGIN})")
    parser.add_argument("--template", default=None,
                        help=f"YAML the written config starts from (default: the built-in {BUILTIN_TEMPLATE}, "
                        "kitpose/interop/templates/, a small network trained from scratch on the CPU)")
    parser.add_argument("--train-samples", type=int, default=None,
                        help=f"TRAIN.END_EPOCH = this / training instances (default {DEFAULT_TRAIN_SAMPLES}, "
                        "with the default template about 5 minutes on 2 idle CPU cores, 8 when shared; "
                        f"{FINE_TUNE_TRAIN_SAMPLES} with --init-from)")
    parser.add_argument("--use-predictions", action="store_true",
                        help="take a SLEAP frame's predicted instances where it has no user-labelled one (a "
                        "model's output used as labels: only when you trust it)")
    parser.add_argument("--frames", type=frame_range_argument, default=None, metavar="START:STOP[:STEP]",
                        help="keep only these video frame numbers (STOP excluded), e.g. 0:900:5")
    parser.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                        help="fine-tune a trained model (published or own .pth): the YAML takes its architecture, "
                        f"{FINE_TUNE_TRAIN_SAMPLES} training samples by default and a keypoint map inferred from names")
    parser.add_argument("--init-config", default=None, metavar="YAML",
                        help="the YAML the --init-from checkpoint was trained with (e.g. "
                        "experiments/ap10k/kitpose/kitpose_w32_256x256.yaml for the published AP-10K W32); "
                        "default: the config a training checkpoint carries, else the built-in template")
    parser.add_argument("--init-meta", default=None, metavar="NAME|JSON",
                        help="the --init-from checkpoint's keypoints: a built-in metainfo name (ap10k, animalpose, "
                        "ak, coco) or a metainfo JSON (default: the --init-config's dataset)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = import_labels(args.source, args.out, name=args.name or None, fmt=args.source_format,
                               val_source=args.val_source, val_fraction=args.val_fraction, seed=args.seed,
                               images=args.images, flip_pairs=args.flip_pairs, skeleton=args.skeleton,
                               sigma=args.sigma, box_margin=args.box_margin, template=args.template,
                               train_samples=args.train_samples, overwrite=args.overwrite,
                               init_from=args.init_from, init_config=args.init_config, init_meta=args.init_meta,
                               use_predictions=args.use_predictions, frame_range=args.frames)
    except InteropError as err:
        logger.error("%s", err)
        return 1
    print(report.summary(), flush=True)
    print(f"train: kitpose-train --cfg {report.yaml}   (in a checkout: python tools/train.py --cfg ...)", flush=True)
    print(f"train the detection stage (several animals per frame): kitpose-train --cfg {report.centroid_yaml}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(import_main())
