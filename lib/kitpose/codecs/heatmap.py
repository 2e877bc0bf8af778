"""The heatmap codec: crops, keypoint -> heatmap targets and heatmaps -> keypoints, built once from the config."""
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from .affine import (PIXEL_STD, BoxConvention, affine_transform_points, box_to_center_scale,
                     get_affine_transform)
from .decode import get_final_preds
from .targets import generate_gaussian_targets

__all__ = ["EncodedJoints", "HeatmapCodec"]


class EncodedJoints(NamedTuple):
    """What `HeatmapCodec.encode` makes of one instance's joints [K, 3] (x, y, visibility).

    input_joints [K, 3]: visible joints mapped into the network input crop (the others as given);
    heatmap_joints [K, 2]: the same joints on the heatmap; target float32 [K, h, w]: the Gaussian
    heatmaps; target_weight float32 [K, 1]: the visibility, 0 where the joint's Gaussian misses the map.
    """
    input_joints: np.ndarray
    heatmap_joints: np.ndarray
    target: np.ndarray
    target_weight: np.ndarray


@dataclass(frozen=True)
class HeatmapCodec:
    """Everything that maps between image pixels, network crops and heatmaps, with the published conventions.

    ``image_size`` and ``heatmap_size`` are (w, h) (MODEL.IMAGE_SIZE, MODEL.HEATMAP_SIZE);
    ``sigma`` is MODEL.SIGMA; ``post_process`` (TEST.POST_PROCESS) turns DARK decoding on,
    with ``blur_kernel`` (TEST.BLUR_KERNEL).
    """
    image_size: tuple
    heatmap_size: tuple
    sigma: float
    post_process: bool = True
    blur_kernel: int = 11

    @classmethod
    def from_config(cls, cfg):
        return cls(image_size=tuple(int(v) for v in cfg.MODEL.IMAGE_SIZE),
                   heatmap_size=tuple(int(v) for v in cfg.MODEL.HEATMAP_SIZE),
                   sigma=float(cfg.MODEL.SIGMA), post_process=bool(cfg.TEST.POST_PROCESS),
                   blur_kernel=int(cfg.TEST.BLUR_KERNEL))

    @property
    def aspect_ratio(self):
        return self.image_size[0] / self.image_size[1]

    # ------------------------------------------------------------ boxes and crops
    def center_scale(self, box_xywh, convention=BoxConvention()):
        """Centre and scale (float32 [2] each) of a box (x, y, w, h) for this input size."""
        return box_to_center_scale(box_xywh, self.aspect_ratio, convention)

    def input_transform(self, center, scale, rotation=0.0):
        """Source pixels -> network input pixels (batched like ``get_affine_transform``)."""
        return get_affine_transform(center, scale, rotation, self.image_size)

    def heatmap_transform(self, center, scale, rotation=0.0):
        """Source pixels -> heatmap pixels: the same construction at the heatmap size (not input / stride)."""
        return get_affine_transform(center, scale, rotation, self.heatmap_size)

    def crop(self, image, center, scale, rotation=0.0):
        """The network input crop of ``image`` (uint8 [H, W, C]), bilinear."""
        return cv2.warpAffine(np.ascontiguousarray(image), self.input_transform(center, scale, rotation),
                              self.image_size, flags=cv2.INTER_LINEAR)

    def crop_frame(self):
        """(centre [1, 2], scale [1, 2]) of the network input itself: decoding with them gives
        keypoints in input-crop pixels."""
        width, height = self.image_size
        return (np.array([[(width - 1) / 2.0, (height - 1) / 2.0]]),
                np.array([[width / PIXEL_STD, height / PIXEL_STD]]))

    # ------------------------------------------------------------ targets and decoding
    def encode(self, joints, center, scale, rotation=0.0):
        """Training targets (`EncodedJoints`) of joints [K, 3] (x, y, visibility; source pixels)."""
        joints = np.array(joints, dtype=np.float64, copy=True)
        heatmap_joints = joints[:, :2].copy()
        visible = joints[:, 2] > 0
        joints[visible, :2] = affine_transform_points(joints[visible, :2], self.input_transform(center, scale, rotation))
        heatmap_joints[visible] = affine_transform_points(heatmap_joints[visible],
                                                          self.heatmap_transform(center, scale, rotation))
        target, target_weight = generate_gaussian_targets(heatmap_joints, joints[:, 2], self.heatmap_size, self.sigma)
        return EncodedJoints(joints, heatmap_joints, target, target_weight)

    def decode(self, heatmaps, centers, scales):
        """Keypoints [N, K, 2] (float32, source pixels) and maxima [N, K, 1] of heatmaps [N, K, h, w]."""
        return get_final_preds(heatmaps, centers, scales, self.post_process, self.blur_kernel)
