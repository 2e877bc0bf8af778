"""Top-down sample transforms: image reading, augmentation geometry, normalisation.

Geometry and pixels are kept apart: `TopDownAugmentation` only decides the crop
(centre, scale, rotation, flip) and moves the joints; the dataset then warps the
image once with the resulting affine matrix.
"""
import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from kitpose.codecs import PIXEL_STD, fliplr_joints

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageReadError", "read_image", "normalize_image",
           "half_body_center_scale", "TopDownAugmentation", "flip_matrix"]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class ImageReadError(ValueError):
    """An image file exists but cannot be decoded."""


def read_image(path, color_rgb=True):
    """uint8 [H, W, 3] image, RGB when ``color_rgb`` else BGR (OpenCV order)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ImageReadError(f"cannot decode image file (corrupt or not an image): {path}")
    if color_rgb:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def normalize_image(image):
    """uint8 [H, W, 3] -> float32 [3, H, W]: / 255 then ImageNet mean/std (the same means for BGR input).

    Plain float32 division, bit-equal to torchvision's ToTensor + Normalize of the published loaders.
    """
    normalized = (image.astype(np.float32) / np.float32(255.0) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalized.transpose(2, 0, 1))


def flip_matrix(width):
    """3x3 homogeneous mirror x -> width - 1 - x (HRNet's pixel-index flip)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def half_body_center_scale(joints, upper_body_mask, aspect_ratio, rng, pixel_std=PIXEL_STD):
    """Crop around the visible upper or lower body joints; None when fewer than 2 are available.

    ``joints`` is [K, 3] (x, y, visibility). Joints outside ``upper_body_mask``
    count as lower body, so a keypoint listed in neither half joins the lower one.
    """
    visible = joints[:, 2] > 0
    upper = joints[visible & upper_body_mask, :2]
    lower = joints[visible & ~upper_body_mask, :2]
    # quirk: a *normal* draw is compared with 0.5, so the upper body is picked ~69% of the time
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    else:
        selected = lower if len(lower) > 2 else upper
    if len(selected) < 2:
        return None
    selected = selected.astype(np.float32)
    center = selected.mean(axis=0)
    # quirk: the published box adds 1 px to the joints' extent (float32 extent, float64 sum)
    width, height = (selected.max(axis=0) - selected.min(axis=0)).astype(np.float64) + 1.0
    if width > aspect_ratio * height:
        height = width / aspect_ratio
    elif width < aspect_ratio * height:
        width = height * aspect_ratio
    # half-body crops are padded by 1.5 instead of the 1.25 of whole boxes
    scale = np.array([width / pixel_std, height / pixel_std], dtype=np.float32) * np.float32(1.5)
    return center, scale


class ProcessRandomSource:
    """A dataset's augmentation stream, one per process.

    `set_random_seed` fixes it in this process (any numpy seed: int or sequence of ints);
    DataLoader worker processes do not inherit it: torch gives every worker its own initial seed
    (fresh each epoch unless persistent), so a generator created lazily per process never repeats
    another worker's augmentation.
    """
    _rng = None
    _rng_pid = None

    def set_random_seed(self, seed):
        self.set_random_source(np.random.default_rng(seed))

    def set_random_source(self, rng):
        """Draw the augmentation from ``rng`` in this process: any object with ``random()`` and
        ``standard_normal()`` (a numpy Generator, or scripted draws; see TopDownAugmentation)."""
        self._rng = rng
        self._rng_pid = os.getpid()

    def _generator(self):
        if self._rng is None or self._rng_pid != os.getpid():
            self.set_random_seed(torch.initial_seed())
        return self._rng


@dataclass
class TopDownAugmentation:
    """Random half-body crop, scale, rotation and horizontal flip of one instance, as published.

    ``rng`` is any object with ``random()`` (uniform [0, 1)) and ``standard_normal()``
    (a numpy Generator, or scripted draws). They are consumed in the published order:
    half-body test (uniform; only when more than ``num_joints_half_body`` joints are
    visible), upper/lower choice (normal; only for a half-body crop), scale (normal),
    rotation test (uniform), angle (normal; only when rotating), flip test (uniform;
    only when ``flip``).
    """
    aspect_ratio: float
    flip_pairs: list
    upper_body_mask: np.ndarray       # bool [K]
    scale_factor: float = 0.25
    rotation_factor: float = 30.0
    flip: bool = True
    prob_half_body: float = 0.0
    num_joints_half_body: int = 8
    rotation_prob: float = 0.6
    flip_prob: float = 0.5

    def __call__(self, joints, center, scale, image_width, rng):
        """Returns (joints [K, 3], center, scale, rotation_deg, flipped) for an image ``image_width`` wide."""
        joints = joints.copy()
        center = center.copy()
        scale = scale.copy()
        if (joints[:, 2].sum() > self.num_joints_half_body and rng.random() < self.prob_half_body):
            half_body = half_body_center_scale(joints, self.upper_body_mask, self.aspect_ratio, rng)
            if half_body is not None:
                center, scale = half_body
        sf, rf = self.scale_factor, self.rotation_factor
        # the scale draw is clipped to 1 +/- sf (one sigma), the rotation draw to +/- 2 rf
        scale = scale * np.float32(np.clip(rng.standard_normal() * sf + 1.0, 1.0 - sf, 1.0 + sf))
        rotation = 0.0
        if rng.random() <= self.rotation_prob:
            rotation = float(np.clip(rng.standard_normal() * rf, -2.0 * rf, 2.0 * rf))
        flipped = bool(self.flip and rng.random() <= self.flip_prob)
        if flipped:
            joints = fliplr_joints(joints, image_width, self.flip_pairs)
            center[0] = image_width - center[0] - 1
        return joints, center, scale, rotation, flipped
