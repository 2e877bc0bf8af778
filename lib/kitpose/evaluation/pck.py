"""PCK: fraction of visible ground-truth joints predicted within a threshold, as the published
AnimalKingdom evaluation computes it.

The distance is normalised by max(w, h) of the ground-truth box cleaned as the dataset's
loader cleans it (``kitpose.codecs.clean_boxes`` with the metainfo's box convention: the
AnimalKingdom loader's box is x2 - x1 + 1 wide); a joint is correct when the normalised
distance is at most the threshold. The metainfo's ``loader.pck_prediction_offset`` is added to
the predictions first (the published AnimalKingdom evaluation adds 1). A table row averages
the PCK of its joints (left and right equally), 'Mean' pools every visible joint.
Predictions are matched to ground truth by annotation id.
"""
import logging
import os
from collections import OrderedDict

import numpy as np

from kitpose.codecs import clean_boxes
from kitpose.jsonio import read_json

logger = logging.getLogger(__name__)

def _ground_truth(ann_file):
    """The annotation file's dict from a path or a loaded COCO (anything with `.dataset`)."""
    if isinstance(ann_file, (str, os.PathLike)):
        return read_json(ann_file, "annotation file")
    return ann_file.dataset


def _results(results):
    if isinstance(results, (str, os.PathLike)):
        return read_json(results, "results file")
    return list(results)


def pck_counts(ann_file, results, meta, threshold=0.05):
    """Per-joint (correct[K], visible[K]) counts.

    Every non-crowd ground-truth annotation with a positive (clean) box counts; a visible joint
    of an annotation without a prediction counts as a miss (logged).
    """
    ground_truth = _ground_truth(ann_file)
    num_joints = meta.num_keypoints
    annotations = [ann for ann in ground_truth.get("annotations", []) if not ann.get("iscrowd", 0)]
    sizes = {image["id"]: (image["width"], image["height"]) for image in ground_truth.get("images", [])}
    row_of_ann = {ann["id"]: row for row, ann in enumerate(annotations)}

    gt_keypoints = np.zeros((len(annotations), num_joints, 3), dtype=np.float64)
    boxes = np.zeros((len(annotations), 4), dtype=np.float64)
    image_sizes = np.zeros((len(annotations), 2), dtype=np.float64)
    for row, ann in enumerate(annotations):
        keypoints = np.asarray(ann.get("keypoints", []), dtype=np.float64)
        if keypoints.size != 3 * num_joints:
            raise ValueError(f"annotation id {ann['id']}: {keypoints.size} keypoint values, "
                             f"expected {3 * num_joints} for {num_joints} keypoints")
        gt_keypoints[row] = keypoints.reshape(num_joints, 3)
        if len(ann.get("bbox", [])) != 4:
            raise ValueError(f"annotation id {ann['id']}: PCK needs a 'bbox' [x, y, w, h], got {ann.get('bbox')}")
        if ann.get("image_id") not in sizes:
            raise ValueError(f"annotation id {ann['id']}: its image_id {ann.get('image_id')} is not in 'images' "
                             "(PCK clips the box to the image)")
        boxes[row] = ann["bbox"]
        image_sizes[row] = sizes[ann["image_id"]]
    clean, inside = clean_boxes(boxes, image_sizes, meta.loader.box)
    box_size = np.where(inside, clean[:, 2:].max(axis=1), 0.0)

    pred_xy = np.zeros((len(annotations), num_joints, 2), dtype=np.float64)
    has_pred = np.zeros(len(annotations), dtype=bool)
    for index, result in enumerate(_results(results)):
        ann_id = result.get("ann_id")
        if ann_id is None or ann_id < 0:
            raise ValueError(f"result {index} (image_id {result.get('image_id')}) has ann_id {ann_id}: "
                             f"PCK matches predictions to ground-truth annotations and needs GT boxes")
        if ann_id not in row_of_ann:
            raise ValueError(f"result {index}: ann_id {ann_id} is not a (non-crowd) annotation of the file")
        row = row_of_ann[ann_id]
        if has_pred[row]:
            raise ValueError(f"result {index}: second prediction for ann_id {ann_id}")
        keypoints = np.asarray(result["keypoints"], dtype=np.float64)
        if keypoints.size != 3 * num_joints:
            raise ValueError(f"result {index} (ann_id {ann_id}): {keypoints.size} keypoint values, "
                             f"expected {3 * num_joints}")
        pred_xy[row] = keypoints.reshape(num_joints, 3)[:, :2] + meta.loader.pck_prediction_offset
        has_pred[row] = True

    sized = box_size > 0
    if not sized.all():
        logger.warning("PCK: skipped %d annotation(s) with box width and height <= 0", int((~sized).sum()))
    visible = (gt_keypoints[:, :, 2] > 0) & sized[:, None]
    missing = visible.any(axis=1) & ~has_pred
    if missing.any():
        logger.warning("PCK: %d annotation(s) with visible joints have no prediction; their joints count as misses",
                       int(missing.sum()))

    distance = np.linalg.norm(pred_xy - gt_keypoints[:, :, :2], axis=-1) / np.where(sized, box_size, 1.0)[:, None]
    correct = visible & has_pred[:, None] & (distance <= threshold)
    return correct.sum(axis=0), visible.sum(axis=0)


def _ratio(correct, visible):
    return float(correct) / float(visible) if visible > 0 else float("nan")


def pck_metrics(ann_file, results, meta, threshold=0.05, per_joint=None):
    """PCK table as an OrderedDict name -> fraction in [0, 1].

    Rows: the metainfo's ``pck_rows`` when defined, each the mean PCK of its
    joints that have visible instances; per-joint rows (meta.keypoints) when not or when
    `per_joint` is True; then 'Mean' = all correct / all visible joints (the published mean
    weights each joint's PCK by its visible count, the same figure). A row without visible
    joints is NaN (the published table would also make 'Mean' NaN then).
    results: dicts (or a JSON path) with 'ann_id' and flat 'keypoints'.
    """
    correct, visible = pck_counts(ann_file, results, meta, threshold)
    groups = meta.pck_rows
    if per_joint is None:
        per_joint = groups is None

    table = OrderedDict()
    if groups is not None:
        index_of = {name: index for index, name in enumerate(meta.keypoints)}
        for row, names in groups.items():
            ratios = [_ratio(correct[index_of[name]], visible[index_of[name]]) for name in names]
            ratios = [ratio for ratio in ratios if not np.isnan(ratio)]
            table[row] = float(np.mean(ratios)) if ratios else float("nan")
    if per_joint:
        for index, name in enumerate(meta.keypoints):
            table[name] = _ratio(correct[index], visible[index])
    table["Mean"] = _ratio(correct.sum(), visible.sum())
    return table
