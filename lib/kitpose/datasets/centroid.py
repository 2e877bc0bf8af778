"""Whole frames of a COCO-format keypoint file for the centroid detection stage (MODEL.NAME centroid_hrnet).

One sample per image (every image of the file, those without animals included: they teach the map
to stay flat), letterboxed into the input (`kitpose.codecs.centroid.letterbox`); training adds a
random scale, rotation and horizontal flip about the input's centre. The target is one Gaussian per
animal at its anchor (`anchor_points`), the maximum over the animals. Annotations that are crowds or
have no labelled keypoint give no anchor (counted and logged).
"""
import logging
import os

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from kitpose.codecs.centroid import anchor_points, centroid_target, letterbox

from .topdown import AnnotationError, _check_keys, read_coco_keypoint_file
from .transforms import ProcessRandomSource, normalize_image, read_image

logger = logging.getLogger(__name__)

__all__ = ["CentroidDataset", "CentroidAugmentation"]


class CentroidAugmentation:
    """Random scale (clip(1 + N(0,1) sf, 1 - sf, 1 + sf)), rotation (clip(N(0,1) rf, -2 rf, 2 rf) degrees with
    probability `rotation_prob`) and horizontal flip (p 0.5) about the input's centre, as a 3x3 matrix."""

    def __init__(self, scale_factor, rotation_factor, rotation_prob, flip):
        self.scale_factor = float(scale_factor)
        self.rotation_factor = float(rotation_factor)
        self.rotation_prob = float(rotation_prob)
        self.flip = bool(flip)

    def __call__(self, input_size, rng):
        sf, rf = self.scale_factor, self.rotation_factor
        scale = float(np.clip(1 + rng.standard_normal() * sf, 1 - sf, 1 + sf))
        rotation = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf)) if rng.random() < self.rotation_prob \
            else 0.0
        flipped = self.flip and rng.random() < 0.5
        centre = (np.asarray(input_size, np.float64) - 1) / 2.0
        matrix = np.eye(3)
        matrix[:2] = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), rotation, scale)
        if flipped:
            matrix = np.array([[-1.0, 0.0, input_size[0] - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ matrix
        return matrix


class CentroidDataset(ProcessRandomSource, Dataset):
    """``ds[i] -> (image [3,H,W] normalised, target [1,h,w], target_weight [1,1], meta dict)``; meta holds
    image_file, image_id, index, scale and offset (the letterbox of the untransformed frame).

    `anchors[i]` [N,2] and `box_sizes[i]` [N] (the longer side of each annotation box) are the labels
    of image i in frame pixels, for the validation metric."""

    def __init__(self, ann_file, image_dir, input_size, heatmap_size, sigma, anchor_index=None, is_train=False,
                 augmentation=None, color_rgb=True, image_set="", expected_layout="", meta=None):
        self.meta = meta   # the run's DatasetMeta (keypoint names), when known
        self.ann_file = str(ann_file)
        self.image_dir = str(image_dir)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        self.is_train = bool(is_train)
        if self.is_train and augmentation is None:
            raise ValueError("CentroidDataset: is_train=True needs a CentroidAugmentation")
        self.augmentation = augmentation
        self.color_rgb = color_rgb
        self.image_set = image_set

        coco = read_coco_keypoint_file(self.ann_file, self.image_dir, expected_layout)
        _check_keys(coco["annotations"], ("id", "image_id"), "annotation", self.ann_file)
        position = {image["id"]: i for i, image in enumerate(coco["images"])}
        self.image_ids = np.array([image["id"] for image in coco["images"]], dtype=np.int64)
        self.image_files = [os.path.join(self.image_dir, image["file_name"]) for image in coco["images"]]
        anchors = [[] for _ in coco["images"]]
        sizes = [[] for _ in coco["images"]]
        skipped = 0
        for ann in coco["annotations"]:
            if ann["image_id"] not in position:
                raise AnnotationError(f"{self.ann_file}: annotation id {ann['id']} refers to image_id "
                                      f"{ann['image_id']}, which is not in 'images'")
            keypoints = np.asarray(ann.get("keypoints", []), np.float64)
            if ann.get("iscrowd", 0) or keypoints.size == 0 or keypoints.size % 3:
                skipped += 1
                continue
            point, valid = anchor_points(keypoints.reshape(1, -1, 3), anchor_index)
            if not valid[0]:
                skipped += 1
                continue
            box = ann.get("bbox") or [0, 0, 0, 0]
            anchors[position[ann["image_id"]]].append(point[0])
            sizes[position[ann["image_id"]]].append(max(float(box[2]), float(box[3])))
        if skipped:
            logger.warning("%s: %d annotation(s) without an anchor (crowd or no labelled keypoint) skipped",
                           self.ann_file, skipped)
        self.anchors = [np.asarray(points, np.float64).reshape(-1, 2) for points in anchors]
        self.box_sizes = [np.asarray(values, np.float64) for values in sizes]
        logger.info("%s: %d images with %d anchored animals (centroid stage)", self.ann_file, len(self.image_ids),
                    sum(len(points) for points in self.anchors))

    def __len__(self):
        return len(self.image_ids)

    def __getitem__(self, index):
        image = read_image(self.image_files[index], self.color_rgb)
        height, width = image.shape[:2]
        scale, offset = letterbox((width, height), self.input_size)
        matrix = np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]], [0.0, 0.0, 1.0]])
        if self.is_train:
            matrix = self.augmentation(self.input_size, self._generator()) @ matrix
        pixels = cv2.warpAffine(image, matrix[:2], self.input_size, flags=cv2.INTER_LINEAR)
        points = self.anchors[index] @ matrix[:2, :2].T + matrix[:2, 2]
        stride = np.asarray(self.input_size, np.float64) / np.asarray(self.heatmap_size, np.float64)
        target = centroid_target(points / stride, self.heatmap_size, self.sigma)
        meta = {"image_file": self.image_files[index], "image_id": int(self.image_ids[index]), "index": index,
                "scale": np.float64(scale), "offset": offset}
        return (torch.from_numpy(normalize_image(pixels)), torch.from_numpy(target), torch.ones(1, 1), meta)
