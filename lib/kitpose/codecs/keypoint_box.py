"""The box of an animal whose keypoints are known but whose outline is not.

DeepLabCut and SLEAP labels carry no boxes, and the video tracker knows only the keypoints of
the previous frame, so both make the box the same way: the bounding box of the labelled (or
confident) keypoints, each side pushed out by `margin` times the longer side of that bounding
box, clipped to the image. The top-down crop then pads it by another 1.25 (BOX_PADDING).
Fewer than two keypoints give no box (None): one point says nothing about the animal's size.
"""
import numpy as np

__all__ = ["DEFAULT_BOX_MARGIN", "keypoint_box"]

DEFAULT_BOX_MARGIN = 0.15


def keypoint_box(xy, valid, margin=DEFAULT_BOX_MARGIN, image_size=None):
    """(x, y, w, h) float64 around the points xy [K,2] where `valid` [K] is true, or None.

    image_size (width, height) clips the box to the image.
    """
    points = np.asarray(xy, dtype=np.float64).reshape(-1, 2)[np.asarray(valid, dtype=bool).reshape(-1)]
    if len(points) < 2:
        return None
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * float((high - low).max())
    low, high = low - pad, high + pad
    if image_size is not None:
        low = np.maximum(low, 0.0)
        high = np.minimum(high, np.asarray(image_size, dtype=np.float64))
    size = high - low
    if (size <= 0).any():
        return None
    return np.array([low[0], low[1], size[0], size[1]], dtype=np.float64)
