"""The test pipeline of tools/test.py: load a checkpoint strictly, predict, evaluate, report."""
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from kitpose.codecs import box_corners
from kitpose.config import is_centroid_model
from kitpose.datasets import build_dataset
from kitpose.evaluation import format_metrics_table
from kitpose.jsonio import write_json
from kitpose.models import build_model, load_model_file
from kitpose.runtime import prepare_for_inference
from kitpose.vis.draw import draw_instances

from .checkpoint import FINAL_NAME
from .distributed import build_loader, describe, run_phase
from .logging_setup import FILE_ONLY
from .seeding import configure_cudnn
from .validation import evaluate_predictions, predict_dataset

logger = logging.getLogger(__name__)

VIS_DIR = "vis"
METRICS_FILE = "metrics.json"


def save_prediction_pictures(predictions, meta, out_dir, num_images, score_thr):
    """Draw the predicted skeletons of the first `num_images` images (by image id) into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    image_ids = np.unique(predictions.image_ids)[:num_images]
    written = []
    for image_id in image_ids.tolist():
        members = np.flatnonzero(predictions.image_ids == image_id)
        image_file = predictions.image_files[members[0]]
        image = cv2.imread(image_file, cv2.IMREAD_COLOR)
        if image is None:
            logger.warning("cannot read %s for drawing; skipped", image_file)
            continue
        boxes = predictions.boxes[members]
        corners = box_corners(boxes[:, :2], boxes[:, 2:4])
        canvas = draw_instances(image, predictions.preds[members], meta.skeleton, score_thr, corners)
        target = Path(out_dir) / f"{image_id}_{Path(image_file).stem}.jpg"
        cv2.imwrite(str(target), canvas)
        written.append(target)
    logger.info("drew predictions on %d images into %s", len(written), out_dir)
    return written


def run_test(cfg):
    """tools/test.py: metrics dict of the checkpoint TEST.MODEL_FILE (default: the run's final_state.pth)."""
    with run_phase(cfg, "test") as (context, dirs):
        return _test(cfg, context, dirs)


def _test(cfg, context, dirs):
    logger.info(describe(context))
    configure_cudnn(cfg)
    model_file = Path(cfg.TEST.MODEL_FILE) if cfg.TEST.MODEL_FILE else dirs.output_dir / FINAL_NAME
    model = build_model(cfg, is_train=False)
    load_model_file(model, model_file)
    model = prepare_for_inference(model, cfg, context.device)
    if context.data_parallel_ids:
        model = torch.nn.DataParallel(model, device_ids=list(context.data_parallel_ids))

    dataset = build_dataset(cfg, is_train=False)
    loader = build_loader(dataset, cfg, context, is_train=False)
    predictions = predict_dataset(model, loader, cfg, context, amp=cfg.TEST.AMP,
                                  channels_last=cfg.TEST.CHANNELS_LAST, desc="test")
    if not context.is_main:
        return None
    name_values, primary = evaluate_predictions(dataset, predictions, dirs.output_dir, cfg)
    table = format_metrics_table(name_values, cfg.MODEL.NAME)
    logger.info("metrics of %s on %s:\n%s", model_file, dataset.ann_file, table, extra=FILE_ONLY)
    print(table, flush=True)  # the console's copy
    report = {
        "model_file": str(model_file),
        "ann_file": dataset.ann_file,
        "metric": "centroid" if is_centroid_model(cfg) else cfg.TEST.METRIC or dataset.meta.metric,
        "primary": float(primary),
        "num_instances": int(len(predictions)),
        "metrics": {name: float(value) for name, value in name_values.items()},
    }
    write_json(dirs.output_dir / METRICS_FILE, report, indent=2)
    logger.info("wrote %s", dirs.output_dir / METRICS_FILE)
    if cfg.TEST.NUM_VIS > 0 and not is_centroid_model(cfg):
        save_prediction_pictures(predictions, dataset.meta, dirs.output_dir / VIS_DIR, cfg.TEST.NUM_VIS,
                                 cfg.TEST.IN_VIS_THRE)
    return report
