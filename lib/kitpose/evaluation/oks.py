"""COCO keypoint AP/AR with a dataset's own OKS sigmas (xtcocotools)."""
import contextlib
import copy
import io
import logging
import os

import numpy as np

from kitpose.jsonio import read_json

logger = logging.getLogger(__name__)

# Order of xtcocotools' keypoint summary (COCOeval.stats).
OKS_METRIC_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


@contextlib.contextmanager
def _quiet_cocotools():
    """xtcocotools prints progress; route it to the debug log instead of stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        logger.debug("xtcocotools:\n%s", buffer.getvalue().rstrip())


def load_coco(ann_file):
    """An xtcocotools COCO for `ann_file`: a path, a COCO keypoint dict (indexed in memory), or an
    already loaded COCO (returned as is)."""
    if isinstance(ann_file, dict):
        from xtcocotools.coco import COCO
        coco = COCO()
        coco.dataset = copy.deepcopy(ann_file)
        with _quiet_cocotools():
            coco.createIndex()
        return coco
    if not isinstance(ann_file, (str, os.PathLike)):
        return ann_file
    path = os.fspath(ann_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    from xtcocotools.coco import COCO
    with _quiet_cocotools():
        return COCO(path)


def _load_results(results):
    if isinstance(results, (str, os.PathLike)):
        path = os.fspath(results)
        results = read_json(path, "results file")
        if not isinstance(results, list):
            raise ValueError(f"results file {path} must hold a JSON list of result dicts")
    # xtcocotools' loadRes writes 'id', 'area' and 'bbox' into the dicts it gets.
    return copy.deepcopy(list(results))


def _evaluated_categories(coco):
    """Listed categories plus any that annotations use without listing.

    The AnimalKingdom sample annotates category 4 but lists only 1 and 2; COCOeval
    takes its categories from the list and would skip those annotations (AP -1).
    """
    listed = set(coco.getCatIds())
    used = {ann["category_id"] for ann in coco.dataset.get("annotations", [])}
    if used - listed:
        logger.warning("annotations use category ids %s that 'categories' does not list; evaluating them too",
                       sorted(used - listed))
    return sorted(listed | used)


def _check_results(coco, results, num_joints, category_ids):
    image_ids = set(coco.getImgIds())
    for index, result in enumerate(results):
        for key in ("image_id", "category_id", "keypoints", "score"):
            if key not in result:
                raise KeyError(f"result {index} lacks '{key}'")
        if result["image_id"] not in image_ids:
            raise ValueError(f"result {index}: image_id {result['image_id']} is not in the annotation file")
        if result["category_id"] not in category_ids:
            raise ValueError(f"result {index}: category_id {result['category_id']} is not in the annotation file")
        if len(result["keypoints"]) != 3 * num_joints:
            raise ValueError(f"result {index} (image_id {result['image_id']}): {len(result['keypoints'])} "
                             f"keypoint values, expected {3 * num_joints} for {num_joints} sigmas")
        # A 'bbox' would make loadRes treat the results as box detections.
        if "bbox" in result:
            raise ValueError(f"result {index} has a 'bbox' field; keypoint results must not carry one")
    for ann in coco.dataset.get("annotations", []):
        if len(ann.get("keypoints", [])) != 3 * num_joints:
            raise ValueError(f"annotation id {ann.get('id')}: {len(ann.get('keypoints', []))} keypoint values, "
                             f"expected {3 * num_joints} for {num_joints} sigmas")


def oks_metrics(ann_file, results, sigmas):
    """COCO keypoint AP/AR of `results` against `ann_file`, using `sigmas`.

    ann_file: path to a COCO keypoint annotation file, its dict, or a loaded xtcocotools COCO.
    results: list of {'image_id', 'category_id', 'keypoints' (flat 3K), 'score'} or a
    path to such a JSON list. Returns a dict with OKS_METRIC_NAMES as keys.
    Empty results are not an error: every metric is 0.0 (what xtcocotools reports
    when nothing is detected), with a warning. Area ranges without ground truth
    report -1.0, as xtcocotools does. Note xtcocotools drops a result whose keypoint
    confidences are all <= 0 before matching.
    Matching is per category and AP/AR are means over the categories with ground
    truth (COCOeval's useCats), so each result needs its instance's category_id
    (for AP-10K: the species of its GT annotation).
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    coco = load_coco(ann_file)
    results = _load_results(results)
    category_ids = _evaluated_categories(coco)
    _check_results(coco, results, sigmas.shape[0], set(category_ids))
    if not results:
        logger.warning("oks_metrics: no results for %s; every metric is 0",
                       ann_file if isinstance(ann_file, (str, os.PathLike)) else "the annotations")
        return {name: 0.0 for name in OKS_METRIC_NAMES}

    from xtcocotools.cocoeval import COCOeval
    with _quiet_cocotools():
        detections = coco.loadRes(results)
        evaluator = COCOeval(coco, detections, "keypoints", sigmas, use_area=True)
        evaluator.params.catIds = category_ids
        evaluator.evaluate()
        evaluator.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.summarize()
    logger.info("COCO keypoint evaluation:\n%s", summary.getvalue().rstrip())
    return {name: float(value) for name, value in zip(OKS_METRIC_NAMES, evaluator.stats)}
