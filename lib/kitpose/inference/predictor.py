"""Top-down pose prediction on arbitrary images: boxes in, keypoints in image pixels out.

The crops are made exactly as the test pipeline makes them (box -> centre/scale with the
aspect-ratio fix and 1.25 padding, affine warp to MODEL.IMAGE_SIZE, RGB when
DATASET.COLOR_RGB, ImageNet normalisation); the forward pass is `kitpose.runtime.predict_heatmaps`
(TEST.FLIP_TEST, TEST.SHIFT_HEATMAP, TEST.AMP, TEST.CHANNELS_LAST), decoding the codec's
(TEST.POST_PROCESS / TEST.BLUR_KERNEL),
instances are scored and OKS-NMS'ed as in evaluation (TEST.IN_VIS_THRE, TEST.OKS_THRE,
TEST.SOFT_NMS).
"""
import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from kitpose.codecs import BoxConvention, HeatmapCodec, box_area
from kitpose.datasets import config_metainfo
from kitpose.datasets.transforms import normalize_image
from kitpose.evaluation import image_oks_nms, instance_scores
from kitpose.models import build_model, load_model_file
from kitpose.runtime import autocast_context, config_flip_pairs, predict_heatmaps, prepare_for_inference

logger = logging.getLogger(__name__)

__all__ = ["PoseInstances", "PosePredictor", "crop_input", "whole_image_box"]


@dataclass
class PoseInstances:
    """The animals (or people) found in one image, best score first.

    keypoints [N,K,3] (x, y, heatmap maximum; image pixels); boxes [N,4] (x, y, w, h, float64) the
    boxes they were predicted in; box_scores [N]; scores [N] (box score x mean of the
    keypoint maxima above TEST.IN_VIS_THRE); category_ids [N]; track_ids [N] when tracked
    (`kitpose.inference.tracking`), else None.
    """
    keypoints: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray
    track_ids: np.ndarray = None

    def __len__(self):
        return len(self.keypoints)

    @classmethod
    def empty(cls, num_keypoints):
        return cls(np.zeros((0, num_keypoints, 3), np.float32), np.zeros((0, 4), np.float64),
                   np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def whole_image_box(image):
    """The box (x, y, w, h) of the whole image."""
    height, width = image.shape[:2]
    return np.array([0.0, 0.0, width, height], dtype=np.float64)


def crop_input(image, box, codec, color_rgb=True, convention=BoxConvention()):
    """One network input from a BGR uint8 image, as the test pipeline makes it:
    (normalised float32 [3,H,W], centre [2], scale [2]) for box (x, y, w, h), cropped by ``codec``
    with the dataset's box ``convention``."""
    center, scale = codec.center_scale(box, convention)
    pixels = codec.crop(image, center, scale)
    if color_rgb:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return normalize_image(pixels), center, scale


def default_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class PosePredictor:
    """A configured model with its weights, ready to predict on BGR uint8 images (as cv2 reads them).

    `PosePredictor(cfg, checkpoint)` builds MODEL.NAME, loads `checkpoint` strictly and applies the
    TEST.* inference fast paths as tools/test.py does (`kitpose.runtime.prepare_for_inference`).
    With `part_maps` the model also returns its body-part maps (`forward(...).parts`).
    """

    def __init__(self, cfg, checkpoint, device=None, part_maps=False):
        self.cfg = cfg
        self.meta = config_metainfo(cfg)
        self.flip_pairs = config_flip_pairs(cfg, self.meta)
        self.device = torch.device(device) if device is not None else default_device()
        model = build_model(cfg, is_train=False)
        load_model_file(model, checkpoint, source="checkpoint")
        self.model = prepare_for_inference(model, cfg, self.device, part_maps=part_maps)
        self.checkpoint = str(checkpoint)
        self.codec = HeatmapCodec.from_config(cfg)
        self.image_size = self.codec.image_size  # (w, h)
        self.batch_size = max(1, int(cfg.TEST.BATCH_SIZE_PER_GPU))

    # ------------------------------------------------------------ crops
    def crops(self, image, boxes):
        """Network inputs for boxes [N,4] (x, y, w, h) -> (tensor [N,3,H,W], centres [N,2], scales [N,2])."""
        made = [crop_input(image, box, self.codec, self.cfg.DATASET.COLOR_RGB, self.meta.box_convention)
                for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4)]
        width, height = self.image_size
        if not made:
            return torch.zeros(0, 3, height, width), np.zeros((0, 2)), np.zeros((0, 2))
        tensors, centers, scales = zip(*made)
        return torch.from_numpy(np.stack(tensors)), np.stack(centers), np.stack(scales)

    # ------------------------------------------------------------ prediction
    def heatmaps(self, inputs):
        """Flip-tested heatmaps [N,K,h,w] (numpy) of normalised crops [N,3,H,W], TEST.BATCH_SIZE_PER_GPU at a time."""
        outputs = []
        for batch in inputs.split(self.batch_size):
            batch = batch.to(self.device)
            heatmaps = predict_heatmaps(self.model, batch, self.flip_pairs, self.cfg.TEST.SHIFT_HEATMAP,
                                        self.cfg.TEST.AMP, self.cfg.TEST.CHANNELS_LAST)
            outputs.append(heatmaps.cpu().numpy())
        if not outputs:
            width, height = self.cfg.MODEL.HEATMAP_SIZE
            return np.zeros((0, self.meta.num_keypoints, height, width), np.float32)
        return np.concatenate(outputs)

    def predict(self, image, boxes=None, box_scores=None, category_ids=None):
        """PoseInstances of one BGR uint8 image; without `boxes` the whole image is the box."""
        return self.predict_many([(image, boxes, box_scores, category_ids)])[0]

    def predict_many(self, requests):
        """Like `predict` for many (image, boxes, box_scores, category_ids) at once: the crops of all
        images share forward passes. Returns one PoseInstances per request."""
        num_keypoints = self.meta.num_keypoints
        inputs, centers, scales, owners, all_boxes, all_scores, all_categories = [], [], [], [], [], [], []
        for index, (image, boxes, box_scores, category_ids) in enumerate(requests):
            # float64 as the dataset reads boxes: the crop centre must round the same way
            boxes = whole_image_box(image)[None] if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
            count = len(boxes)
            box_scores = np.ones(count, np.float32) if box_scores is None else np.asarray(box_scores, np.float32)
            category_ids = (np.ones(count, np.int64) if category_ids is None
                            else np.asarray(category_ids, np.int64))
            tensor, center, scale = self.crops(image, boxes)
            inputs.append(tensor)
            centers.append(center)
            scales.append(scale)
            owners.append(np.full(count, index))
            all_boxes.append(boxes)
            all_scores.append(box_scores.reshape(count))
            all_categories.append(category_ids.reshape(count))
        owners = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        if not len(owners):
            return [PoseInstances.empty(num_keypoints) for _ in requests]
        heatmaps = self.heatmaps(torch.cat(inputs))
        centers, scales = np.concatenate(centers), np.concatenate(scales)
        coords, maxvals = self.codec.decode(heatmaps, centers, scales)
        keypoints = np.concatenate([coords, maxvals], axis=2).astype(np.float32)
        box_scores = np.concatenate(all_scores)
        scores = instance_scores(maxvals[..., 0], box_scores, self.cfg.TEST.IN_VIS_THRE).astype(np.float32)
        areas = box_area(scales)
        boxes, categories = np.concatenate(all_boxes), np.concatenate(all_categories)
        results = []
        for index in range(len(requests)):
            members = np.flatnonzero(owners == index)
            kept = members[image_oks_nms(keypoints[members], scores[members], areas[members], self.meta.sigmas,
                                         self.cfg.TEST.OKS_THRE, self.cfg.TEST.SOFT_NMS)]
            results.append(PoseInstances(keypoints[kept], boxes[kept], box_scores[kept], scores[kept],
                                         categories[kept]))
        return results

    @torch.no_grad()
    def forward(self, inputs):
        """Plain forward pass (no flip test) of normalised crops -> ModelOutput on the CPU."""
        with torch.inference_mode(), autocast_context(self.cfg.TEST.AMP, self.device, "TEST.AMP"):
            outputs = self.model(inputs.to(self.device))
        return type(outputs)(*(None if t is None else t.float().cpu() for t in outputs))
