"""OKS-based non-maximum suppression for top-down pose results (vectorised numpy).

`image_oks_nms` suppresses among one image's instances given as arrays; evaluation and
`PosePredictor` both call it. `oks_nms` and `soft_oks_nms` take HRNet's instance dicts:
'keypoints' ([K, 3] or flat [3K]: x, y, confidence), 'score' (instance score) and 'area'
(box area in pixels, used as the OKS scale). Both suppressors follow HRNet: instances are
visited in descending score order and the OKS between two instances uses the mean of their areas.
"""
import numpy as np

# HRNet keeps at most this many instances per image in soft OKS-NMS.
SOFT_NMS_MAX_DETS = 20


def oks_iou(gt_keypoints, det_keypoints, gt_area, det_areas, sigmas, in_vis_thre=None):
    """OKS between one instance and N others.

    gt_keypoints: [K, 3] (or flat [3K]); det_keypoints: [N, K, 3] (or [N, 3K]);
    gt_area: scalar; det_areas: [N]; sigmas: [K].
    in_vis_thre: when given, only joints whose confidence exceeds it in both
    instances count (HRNet's `list(a) and list(b)` reduced this to the second mask;
    the published test path never passes a threshold, so the intended rule is used).
    Returns [N] float64; 0 where no joint counts.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    num_joints = sigmas.shape[0]
    reference = np.asarray(gt_keypoints, dtype=np.float64).reshape(num_joints, 3)
    others = np.asarray(det_keypoints, dtype=np.float64).reshape(-1, num_joints, 3)
    det_areas = np.asarray(det_areas, dtype=np.float64).reshape(-1)
    if others.shape[0] != det_areas.shape[0]:
        raise ValueError(f"oks_iou: {others.shape[0]} instances but {det_areas.shape[0]} areas")

    variances = (2.0 * sigmas) ** 2
    squared_dist = ((others[:, :, :2] - reference[None, :, :2]) ** 2).sum(axis=-1)
    mean_area = (gt_area + det_areas[:, None]) / 2.0 + np.spacing(1)
    similarity = np.exp(-squared_dist / variances / mean_area / 2.0)
    if in_vis_thre is None:
        return similarity.mean(axis=1)
    counted = (reference[None, :, 2] > in_vis_thre) & (others[:, :, 2] > in_vis_thre)
    num_counted = counted.sum(axis=1)
    total = (similarity * counted).sum(axis=1)
    return np.where(num_counted > 0, total / np.maximum(num_counted, 1), 0.0)


def _stack_instances(instances, sigmas):
    num_joints = len(sigmas)
    try:
        keypoints = np.stack([np.asarray(inst["keypoints"], dtype=np.float64).reshape(num_joints, 3)
                              for inst in instances])
        scores = np.array([inst["score"] for inst in instances], dtype=np.float64)
        areas = np.array([inst["area"] for inst in instances], dtype=np.float64)
    except KeyError as err:
        raise KeyError(f"OKS-NMS instance lacks field {err}; needs 'keypoints', 'score', 'area'") from err
    except ValueError as err:
        raise ValueError(f"OKS-NMS instance keypoints do not reshape to [{num_joints}, 3] "
                         f"(one row per sigma): {err}") from err
    return keypoints, scores, areas


def _descending(scores):
    """Indices by descending score; ties in reverse index order, as the published NMS orders them."""
    return np.argsort(scores, kind="stable")[::-1]


def oks_nms(kpts_db, thr, sigmas, in_vis_thre=None):
    """Greedy OKS-NMS. Returns the kept indices into `kpts_db`, best score first.

    An instance is dropped when its OKS with an already kept one exceeds `thr`.
    Equal scores put the later instance first (the published descending order reverses
    an ascending sort).
    """
    if len(kpts_db) == 0:
        return []
    return _greedy_keep(*_stack_instances(kpts_db, sigmas), thr, sigmas, in_vis_thre)


def _greedy_keep(keypoints, scores, areas, thr, sigmas, in_vis_thre):
    order = _descending(scores)
    keep = []
    while order.size > 0:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        overlap = oks_iou(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas, in_vis_thre)
        order = rest[overlap <= thr]
    return keep


def soft_oks_nms(kpts_db, thr, sigmas, in_vis_thre=None, max_dets=SOFT_NMS_MAX_DETS):
    """Soft OKS-NMS with Gaussian decay score * exp(-oks^2 / thr).

    After each pick the remaining scores decay by their OKS with the pick and are
    re-sorted; at most `max_dets` indices are returned, in pick order.
    **quirk** (HRNet): the decayed scores only decide the order and the cut at
    `max_dets`; callers keep the instances' original scores.
    """
    if len(kpts_db) == 0:
        return []
    return _soft_keep(*_stack_instances(kpts_db, sigmas), thr, sigmas, in_vis_thre, max_dets)


def _soft_keep(keypoints, scores, areas, thr, sigmas, in_vis_thre, max_dets):
    order = _descending(scores)
    remaining_scores = scores[order]
    keep = []
    while order.size > 0 and len(keep) < max_dets:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        overlap = oks_iou(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas, in_vis_thre)
        decayed = remaining_scores[1:] * np.exp(-overlap ** 2 / thr)
        resort = _descending(decayed)
        order = rest[resort]
        remaining_scores = decayed[resort]
    return keep


def image_oks_nms(keypoints, scores, areas, sigmas, thr, soft=False):
    """Indices (int64, best first) of one image's instances kept by OKS-NMS at ``thr``: greedy
    (`oks_nms`), or soft (`soft_oks_nms`, at most `SOFT_NMS_MAX_DETS`) with ``soft``.

    keypoints [N, K, 3] (x, y, confidence); scores [N]; areas [N] (box areas in pixels); sigmas [K].
    """
    sigmas = np.asarray(sigmas)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    count = len(scores)
    if keypoints.shape != (count, len(sigmas), 3) or areas.shape != (count,):
        raise ValueError(f"image_oks_nms: {count} scores need keypoints [{count}, {len(sigmas)}, 3] and areas "
                         f"[{count}], got {keypoints.shape} and {areas.shape}")
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if soft:
        keep = _soft_keep(keypoints, scores, areas, thr, sigmas, None, SOFT_NMS_MAX_DETS)
    else:
        keep = _greedy_keep(keypoints, scores, areas, thr, sigmas, None)
    return np.asarray(keep, dtype=np.int64)
