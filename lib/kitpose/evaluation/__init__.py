"""Pose metrics (COCO OKS AP/AR, PCK), OKS-NMS and the top-down evaluation driver."""
from .centroid import CENTROID_METRIC_NAMES, centroid_metrics
from .nms import image_oks_nms, oks_iou, oks_nms, soft_oks_nms
from .oks import OKS_METRIC_NAMES, oks_metrics
from .pck import pck_counts, pck_metrics
from .topdown import evaluate_topdown, evaluation_settings, format_metrics_table, instance_scores

__all__ = [
    "CENTROID_METRIC_NAMES", "centroid_metrics", "OKS_METRIC_NAMES", "evaluate_topdown", "evaluation_settings", "format_metrics_table", "image_oks_nms",
    "instance_scores", "oks_iou", "oks_metrics", "oks_nms", "pck_counts", "pck_metrics", "soft_oks_nms",
]
