"""Animal boxes from a torchvision COCO detector, for `tools/infer.py --detector NAME`.

The detectors are torchvision's COCO-trained models (DETECTORS). A frame goes in as BGR uint8
(as OpenCV reads it); out come the boxes (x, y, w, h) of the requested COCO classes
(default: the ten COCO animals) with score >= the threshold, after a class-agnostic NMS: a
detector often boxes one animal as both 'dog' and 'cat', and the pose model should see it once.

Weights: a file given with `weights`, else torchvision's own file name in its cache folder
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``). Nothing is
downloaded: when the file is not there the error names the file, the folder and where the
file comes from.
"""
import logging
import os

import numpy as np
import torch
import torchvision
from torchvision.ops import nms

logger = logging.getLogger(__name__)

__all__ = ["DETECTORS", "COCO_ANIMALS", "DetectorError", "AnimalDetector", "check_classes", "coco_categories",
           "default_weights_file", "build_detector", "add_detector_arguments", "detector_from_args"]

DETECTORS = ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn",
             "retinanet_resnet50_fpn_v2", "ssdlite320_mobilenet_v3_large")
COCO_ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_NMS_IOU = 0.5


class DetectorError(ValueError):
    """An unknown detector or class name, or detector weights that are missing or do not fit."""


def _check_name(name):
    if name not in DETECTORS:
        raise DetectorError(f"--detector {name!r}: unknown; choose one of {', '.join(DETECTORS)}")


def _coco_weights(name):
    _check_name(name)
    return torchvision.models.get_model_weights(name).COCO_V1


def coco_categories(name):
    """The detector's label names, indexed by its label id (COCO category ids; 'N/A' for unused ids)."""
    return list(_coco_weights(name).meta["categories"])


def default_weights_file(name):
    """Where torchvision keeps the COCO weights of `name`: (path in the cache folder, URL they come from)."""
    url = _coco_weights(name).url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url)), url


def build_detector(name, weights=None, device="cpu"):
    """torchvision detector `name` in eval mode on `device` with its COCO weights (see module docstring)."""
    path, url = default_weights_file(name)
    if weights:
        path = weights
        if not os.path.isfile(path):
            raise DetectorError(f"--det-weights {path}: no such file")
    elif not os.path.isfile(path):
        raise DetectorError(
            f"detector weights for {name} not found: put the file {os.path.basename(path)} into "
            f"{os.path.dirname(path)} (torchvision's cache folder; set TORCH_HOME to use another) or pass "
            f"--det-weights PATH. This machine downloads nothing: fetch {url} where a network is available.")
    model = torchvision.models.get_model(name, weights=None, weights_backbone=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        raise DetectorError(f"detector weights {path} do not load into {name}: {err}") from None
    logger.info("detector %s with weights %s", name, path)
    return model.eval().to(device)


def check_classes(categories, classes):
    """DetectorError unless every name in `classes` is one of the detector's `categories`."""
    placeholders = ("N/A", "__background__")
    unknown = [c for c in classes if c not in categories or c in placeholders]
    if unknown:
        known = sorted(c for c in set(categories) if c not in placeholders)
        raise DetectorError(f"--det-classes: {', '.join(unknown)} not COCO class name(s); known: {', '.join(known)}")


class AnimalDetector:
    """Boxes of the chosen COCO classes in BGR uint8 frames.

    `model`: a torchvision detection model (eval mode); `categories`: its label names by label id;
    `classes`: COCO names to keep; `score_threshold`: keep boxes scoring at least this;
    `nms_iou`: class-agnostic NMS IoU (1.0 keeps overlapping boxes).
    """

    def __init__(self, model, categories, classes=COCO_ANIMALS, score_threshold=DEFAULT_SCORE_THRESHOLD,
                 nms_iou=DEFAULT_NMS_IOU, device="cpu"):
        check_classes(categories, classes)
        self.model = model
        self.categories = list(categories)
        self.classes = tuple(classes)
        self.label_ids = sorted({self.categories.index(c) for c in classes})
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.device = torch.device(device)
        self.calls = 0

    @torch.inference_mode()
    def raw(self, image):
        """The model's own output for one BGR uint8 frame: (boxes x1 y1 x2 y2 [N,4], scores [N], labels [N]), numpy."""
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        tensor = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0).to(self.device)
        output = self.model([tensor])[0]
        self.calls += 1
        return (output["boxes"].float().cpu().numpy(), output["scores"].float().cpu().numpy(),
                output["labels"].cpu().numpy())

    def __call__(self, image):
        """(boxes [N,4] x, y, w, h float64, scores [N] float32, COCO category ids [N] int64), best first."""
        boxes, scores, labels = self.raw(image)
        keep = np.isin(labels, self.label_ids) & (scores >= self.score_threshold)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        if len(boxes) > 1 and self.nms_iou < 1.0:
            kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), self.nms_iou).numpy()
            boxes, scores, labels = boxes[kept], scores[kept], labels[kept]
        order = np.argsort(-scores, kind="stable")
        boxes, scores, labels = boxes[order], scores[order], labels[order]
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
        return xywh.reshape(-1, 4), scores.astype(np.float32), labels.astype(np.int64)


# ---------------------------------------------------------------- command line
def add_detector_arguments(parser):
    group = parser.add_argument_group("detector (boxes without a --boxes file)")
    group.add_argument("--detector", default="", choices=("",) + DETECTORS, metavar="NAME",
                       help=f"torchvision COCO detector: {', '.join(DETECTORS)}")
    group.add_argument("--det-weights", default="", help="detector weights file (default: torchvision's file "
                       "in its cache folder, $TORCH_HOME/hub/checkpoints)")
    group.add_argument("--det-classes", nargs="+", default=list(COCO_ANIMALS), metavar="CLASS",
                       help="COCO class names to keep (default: the COCO animals)")
    group.add_argument("--det-thr", type=float, default=DEFAULT_SCORE_THRESHOLD,
                       help=f"keep detections scoring >= this (default {DEFAULT_SCORE_THRESHOLD})")
    group.add_argument("--det-nms", type=float, default=DEFAULT_NMS_IOU,
                       help=f"class-agnostic NMS IoU over the kept classes (default {DEFAULT_NMS_IOU}; 1 = off)")


def detector_from_args(args, device):
    """The AnimalDetector the --detector arguments ask for, or None without --detector."""
    if not args.detector:
        return None
    categories = coco_categories(args.detector)
    check_classes(categories, args.det_classes)
    model = build_detector(args.detector, args.det_weights or None, device)
    return AnimalDetector(model, categories, args.det_classes, args.det_thr, args.det_nms, device)
