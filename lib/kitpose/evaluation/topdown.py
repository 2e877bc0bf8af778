"""Top-down evaluation: instance rescoring, OKS-NMS, COCO results file, metrics."""
import logging
import os
from collections import OrderedDict

import numpy as np

from kitpose.datasets.metainfo import METRICS
from kitpose.jsonio import write_json

from .nms import image_oks_nms
from .oks import load_coco, oks_metrics
from .pck import pck_metrics

logger = logging.getLogger(__name__)



def instance_scores(maxvals, box_scores, in_vis_thre):
    """Box score x mean of the keypoint maxima above `in_vis_thre` (0 when none is)."""
    maxvals = np.asarray(maxvals, dtype=np.float64)
    confident = maxvals > in_vis_thre
    num_confident = confident.sum(axis=1)
    keypoint_score = np.where(num_confident > 0,
                              (maxvals * confident).sum(axis=1) / np.maximum(num_confident, 1), 0.0)
    return keypoint_score * np.asarray(box_scores, dtype=np.float64)


def _result_categories(coco, ann_ids, category_ids, results_category):
    """Category of each instance: given, else the file's first category (metainfo
    ``loader.results_category`` 'first'), else its GT annotation's, else the file's only category."""
    category_of_ann = {ann["id"]: ann["category_id"] for ann in coco.dataset.get("annotations", [])}
    unknown = [int(ann_id) for ann_id in ann_ids if ann_id >= 0 and ann_id not in category_of_ann]
    if unknown:
        raise ValueError(f"ann_id {unknown[0]} is not an annotation of the annotation file")
    if category_ids is not None:
        return [int(category) for category in category_ids]
    file_categories = coco.getCatIds()
    if results_category == "first":
        first = coco.dataset.get("categories") or [{"id": 1}]
        return [int(first[0]["id"])] * len(ann_ids)
    categories = []
    for ann_id in ann_ids:
        if ann_id >= 0:
            categories.append(category_of_ann[ann_id])
        elif len(file_categories) == 1:
            categories.append(file_categories[0])
        else:
            raise ValueError(f"detector-box instances (ann_id {ann_id}) on an annotation file with "
                             f"{len(file_categories)} categories: pass category_ids")
    return categories


def _image_groups(image_ids, bbox_ids):
    """Instance indices per image, images in first-appearance order, as the published evaluation
    groups them; with ``bbox_ids`` (metainfo ``loader.unique_box_ids``) each image's instances are
    sorted by bbox_id and a repeated bbox_id is dropped (first occurrence kept), as the published
    AP-10K evaluation does."""
    first_seen = {}
    for position, image_id in enumerate(image_ids.tolist()):
        first_seen.setdefault(image_id, []).append(position)
    groups = []
    for members in first_seen.values():
        members = np.asarray(members, dtype=np.int64)
        if bbox_ids is not None:
            members = members[np.argsort(bbox_ids[members], kind="stable")]
            repeated = np.concatenate([[False], bbox_ids[members][1:] == bbox_ids[members][:-1]])
            members = members[~repeated]
        groups.append(members)
    return groups


def _nms_keep(groups, keypoints, scores, areas, sigmas, oks_thre, soft_nms):
    """Indices kept by per-image (soft) OKS-NMS, image by image in the order of ``groups``."""
    kept = [members[image_oks_nms(keypoints[members], scores[members], areas[members], sigmas, oks_thre, soft_nms)]
            for members in groups]
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def evaluation_settings(test_cfg, meta):
    """The keyword arguments of `evaluate_topdown` from the config's TEST node: IN_VIS_THRE, OKS_THRE,
    SOFT_NMS, PCK_THRE, and the metric (TEST.METRIC, else the metainfo's)."""
    return {"in_vis_thre": float(test_cfg.IN_VIS_THRE), "oks_thre": float(test_cfg.OKS_THRE),
            "soft_nms": bool(test_cfg.SOFT_NMS), "pck_thre": float(test_cfg.PCK_THRE),
            "metric": test_cfg.METRIC or meta.metric}


def evaluate_topdown(meta, ann_file, preds, boxes, image_ids, ann_ids, output_dir, *, in_vis_thre, oks_thre,
                     soft_nms, metric, pck_thre, set_name="val", category_ids=None, bbox_ids=None):
    """Score, suppress, write and evaluate top-down predictions.

    preds [N, K, 3]: x, y, maxval in image coordinates; boxes [N, 6]: cx, cy, sw, sh,
    area, score; image_ids [N]; ann_ids [N] (-1 for detector boxes).
    The thresholds and the metric are the config's (`evaluation_settings(cfg.TEST, meta)`).
    metric 'oks': per-image OKS-NMS (soft when `soft_nms`) with the dataset's sigmas, then
    COCO AP; primary = AP. Images are visited in first-appearance order; with `bbox_ids` [N]
    (the dataset's per-image box ids) and metainfo ``loader.unique_box_ids``, an image's
    repeated box id is evaluated once.
    metric 'pck': every instance is kept (one prediction per GT annotation, matched by
    ann_id; NMS would only drop overlapping animals); primary = PCK 'Mean'.
    category_ids [N] (optional): result categories; by default the GT annotation's
    category, or the file's only category for detector boxes.
    Writes output_dir/results/keypoints_<set_name>_results.json (COCO results plus
    'center', 'scale', 'ann_id'). An annotation file without annotations (e.g. COCO
    test-dev image info) only gets the results file; the metrics are then empty and primary 0.
    Returns (OrderedDict name -> value, primary).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    preds = np.asarray(preds, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    image_ids = np.asarray(image_ids, dtype=np.int64).reshape(-1)
    ann_ids = np.asarray(ann_ids, dtype=np.int64).reshape(-1)
    num = preds.shape[0]
    if preds.ndim != 3 or preds.shape[1:] != (meta.num_keypoints, 3):
        raise ValueError(f"preds must be [N, {meta.num_keypoints}, 3] for dataset '{meta.name}', got {preds.shape}")
    if boxes.shape != (num, 6) or image_ids.shape != (num,) or ann_ids.shape != (num,):
        raise ValueError(f"for {num} predictions expected boxes [{num}, 6], image_ids [{num}], ann_ids [{num}]; "
                         f"got {boxes.shape}, {image_ids.shape}, {ann_ids.shape}")
    if category_ids is not None and len(category_ids) != num:
        raise ValueError(f"category_ids has {len(category_ids)} entries for {num} predictions")
    if bbox_ids is not None:
        bbox_ids = np.asarray(bbox_ids, dtype=np.int64).reshape(-1)
        if bbox_ids.shape != (num,):
            raise ValueError(f"bbox_ids has {bbox_ids.shape[0]} entries for {num} predictions")

    coco = load_coco(ann_file)
    categories = _result_categories(coco, ann_ids, category_ids, meta.loader.results_category)
    scores = instance_scores(preds[:, :, 2], boxes[:, 5], in_vis_thre)
    groups = _image_groups(image_ids, bbox_ids if meta.loader.unique_box_ids else None)
    if metric == "oks":
        kept = _nms_keep(groups, preds, scores, boxes[:, 4], meta.sigmas, oks_thre,
                         soft_nms)
        logger.info("OKS-NMS kept %d of %d instances", kept.size, num)
    else:
        kept = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)

    results = [{
        "image_id": int(image_ids[i]),
        "category_id": int(categories[i]),
        "keypoints": preds[i].reshape(-1).tolist(),
        "score": float(scores[i]),
        "center": boxes[i, 0:2].tolist(),
        "scale": boxes[i, 2:4].tolist(),
        "ann_id": int(ann_ids[i]),
    } for i in kept]
    results_file = write_json(os.path.join(output_dir, "results", f"keypoints_{set_name}_results.json"), results)
    logger.info("wrote %d results to %s", len(results), results_file)

    if not coco.dataset.get("annotations"):
        logger.warning("%s has no annotations: results written, nothing evaluated", ann_file)
        return OrderedDict(), 0.0
    if metric == "oks":
        name_values = OrderedDict(oks_metrics(coco, results, meta.sigmas))
        return name_values, name_values["AP"]
    name_values = pck_metrics(coco, results, meta, threshold=pck_thre)
    return name_values, name_values["Mean"]


def format_metrics_table(name_values, model_name):
    """A markdown table: one header row of metric names, one row of values (3 decimals)."""
    names = list(name_values.keys())
    header = "| Arch | " + " | ".join(names) + " |"
    rule = "|---" * (len(names) + 1) + "|"
    values = "| " + model_name + " | " + " | ".join(f"{float(name_values[n]):.3f}" for n in names) + " |"
    return "\n".join([header, rule, values])
