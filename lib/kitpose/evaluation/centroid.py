"""Detection metrics of the centroid stage: found anchors against labelled ones, one peak per animal."""
from collections import OrderedDict

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["CENTROID_METRIC_NAMES", "centroid_metrics"]

CENTROID_METRIC_NAMES = ("F1", "precision", "recall", "distance_px")


def centroid_metrics(found, anchors, box_sizes, match_distance):
    """(OrderedDict F1, precision, recall, distance_px, primary F1) over images.

    found[i] [M,2], anchors[i] [N,2] and box_sizes[i] [N] (each animal's box longer side) in frame pixels;
    a found point matches at most one animal within `match_distance` x that animal's box size (Hungarian
    matching on distance); distance_px is the mean distance of the matches (nan without any)."""
    if not len(found) == len(anchors) == len(box_sizes):
        raise ValueError(f"centroid_metrics: {len(found)} images of found points, {len(anchors)} of anchors, "
                         f"{len(box_sizes)} of box sizes")
    matched, num_found, num_labelled, distances = 0, 0, 0, []
    for points, truth, sizes in zip(found, anchors, box_sizes):
        points = np.asarray(points, np.float64).reshape(-1, 2)
        truth = np.asarray(truth, np.float64).reshape(-1, 2)
        num_found += len(points)
        num_labelled += len(truth)
        if not len(points) or not len(truth):
            continue
        distance = np.linalg.norm(points[:, None, :] - truth[None, :, :], axis=2)
        allowed = distance <= match_distance * np.asarray(sizes, np.float64)[None, :]
        rows, cols = linear_sum_assignment(np.where(allowed, distance, 1e12))
        good = allowed[rows, cols]
        matched += int(good.sum())
        distances.extend(distance[rows[good], cols[good]].tolist())
    precision = matched / num_found if num_found else 0.0
    recall = matched / num_labelled if num_labelled else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    values = OrderedDict([("F1", f1), ("precision", precision), ("recall", recall),
                          ("distance_px", float(np.mean(distances)) if distances else float("nan"))])
    return values, f1
