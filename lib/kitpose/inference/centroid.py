"""The trained centroid stage as a box source: `tools/infer.py --centroid-cfg C.yaml --centroid-checkpoint C.pth`.

A frame (BGR uint8, any size) is letterboxed into the centroid model's MODEL.IMAGE_SIZE
(`kitpose.codecs.centroid.letterbox`), its anchor map predicted (no flip test), the local peaks above
CENTROID.PEAK_THRESHOLD at least CENTROID.MIN_DISTANCE heatmap pixels apart found (at most
`max_animals` when > 0, the highest first) and mapped back to frame pixels; each becomes a box of
CENTROID.BOX_SIZE centred on it, scored by the peak's value. The interface is the torchvision
detector's (`kitpose.inference.detector.AnimalDetector`), so images, videos and --track use it alike.
"""
import logging

import cv2
import numpy as np
import torch

from kitpose.codecs.centroid import anchor_boxes, find_peaks, letterbox, peaks_to_frame
from kitpose.config import CENTROID_MODEL, is_centroid_model, load_config
from kitpose.datasets.transforms import normalize_image
from kitpose.models import build_model, load_model_file
from kitpose.runtime import predict_heatmaps, prepare_for_inference

from .detector import DetectorError

logger = logging.getLogger(__name__)

__all__ = ["CentroidDetector", "add_centroid_arguments", "centroid_detector_from_args"]


class CentroidDetector:
    """Boxes (x, y, w, h) around the animals' anchors in BGR uint8 frames (see module docstring).

    `cfg`: the centroid stage's config (MODEL.NAME centroid_hrnet, CENTROID.BOX_SIZE set); `checkpoint`:
    its trained weights; `max_animals`: at most this many boxes per frame (0: no limit)."""

    def __init__(self, cfg, checkpoint, device="cpu", max_animals=0, source="--centroid-cfg"):
        if not is_centroid_model(cfg):
            raise DetectorError(f"{source}: MODEL.NAME is {cfg.MODEL.NAME!r}, not {CENTROID_MODEL!r}: give the "
                                f"centroid YAML that tools/import_labels.py writes (<name>_centroid.yaml)")
        if min(cfg.CENTROID.BOX_SIZE) <= 0:
            raise DetectorError(f"{source}: CENTROID.BOX_SIZE {list(cfg.CENTROID.BOX_SIZE)} must be positive "
                                f"(the pose box around each animal, frame pixels)")
        self.cfg = cfg
        self.device = torch.device(device)
        model = build_model(cfg, is_train=False)
        load_model_file(model, checkpoint, source="--centroid-checkpoint")
        self.model = prepare_for_inference(model, cfg, self.device)
        self.input_size = tuple(int(v) for v in cfg.MODEL.IMAGE_SIZE)
        self.heatmap_size = tuple(int(v) for v in cfg.MODEL.HEATMAP_SIZE)
        self.box_size = np.asarray(cfg.CENTROID.BOX_SIZE, np.float64)
        self.max_animals = int(max_animals)
        self.calls = 0

    def input_tensor(self, image):
        """(normalised input [1,3,H,W], scale, offset) of one BGR uint8 frame."""
        height, width = image.shape[:2]
        scale, offset = letterbox((width, height), self.input_size)
        matrix = np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])
        pixels = cv2.warpAffine(image, matrix, self.input_size, flags=cv2.INTER_LINEAR)
        if self.cfg.DATASET.COLOR_RGB:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
        return torch.from_numpy(normalize_image(pixels))[None], scale, offset

    def anchors(self, image):
        """(anchors [M,2] frame pixels, peak values [M]) of one BGR uint8 frame, best first."""
        inputs, scale, offset = self.input_tensor(image)
        heatmap = predict_heatmaps(self.model, inputs.to(self.device), None, False, self.cfg.TEST.AMP,
                                   self.cfg.TEST.CHANNELS_LAST)[0, 0].cpu()
        self.calls += 1
        points, values = find_peaks(heatmap, self.cfg.CENTROID.PEAK_THRESHOLD, self.cfg.CENTROID.MIN_DISTANCE,
                                    self.max_animals)
        return peaks_to_frame(points, self.input_size, self.heatmap_size, scale, offset), values

    def __call__(self, image):
        """(boxes [M,4] x, y, w, h float64, scores [M] float32, category ids [M] int64 (1)), best first."""
        anchors, values = self.anchors(image)
        return anchor_boxes(anchors, self.box_size), values.astype(np.float32), np.ones(len(anchors), np.int64)


# ---------------------------------------------------------------- command line
def add_centroid_arguments(parser):
    group = parser.add_argument_group("centroid detection stage (boxes from a model trained on your labels)")
    group.add_argument("--centroid-cfg", default="", metavar="YAML",
                       help="the centroid YAML import_labels wrote (<name>_centroid.yaml)")
    group.add_argument("--centroid-checkpoint", default="", metavar="PTH",
                       help="its trained weights (e.g. output/custom/centroid_hrnet/<name>_centroid/model_best.pth); "
                       "at most --max-animals boxes per frame when given")


def centroid_detector_from_args(args, device):
    """The CentroidDetector the --centroid-* arguments ask for, or None without them."""
    if not args.centroid_cfg and not args.centroid_checkpoint:
        return None
    if not args.centroid_cfg or not args.centroid_checkpoint:
        raise DetectorError("--centroid-cfg and --centroid-checkpoint go together: give both")
    cfg = load_config(args.centroid_cfg)
    detector = CentroidDetector(cfg, args.centroid_checkpoint, device, getattr(args, "max_animals", 0),
                                source=args.centroid_cfg)
    logger.info("centroid stage %s (%s): input %dx%d, boxes %gx%g", args.centroid_checkpoint, args.centroid_cfg,
                *detector.input_size, *detector.box_size)
    return detector
