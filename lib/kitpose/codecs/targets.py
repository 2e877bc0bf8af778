"""Gaussian heatmap targets as published: sub-pixel centres, whole-map Gaussians."""
import numpy as np


def generate_gaussian_targets(heatmap_joints, visibility, heatmap_size, sigma):
    """Unnormalised Gaussian (peak 1 at the exact joint) per joint over the whole heatmap.

    heatmap_joints [K, 2] are heatmap coordinates (the joints mapped by the crop
    transform built at the heatmap size); heatmap_size is (w, h). The map is
    exp(-((x - mu_x)^2 + (y - mu_y)^2) / (2 sigma^2)) at float32 ``mu``, with no
    rounding and no window. A joint gets weight 0 and an empty map when it is not
    visible, or when its 3-sigma window would miss the map; that window test truncates
    toward zero as published (``int(mu - 3 sigma)``, ``int(mu + 3 sigma + 1)``).
    Returns (target float32 [K, h, w], target_weight float32 [K, 1]: the visibility,
    0 where the window misses).
    """
    joints = np.asarray(heatmap_joints, dtype=np.float64).reshape(-1, 2)
    visibility = np.asarray(visibility, dtype=np.float32).reshape(-1)
    if len(visibility) != len(joints):
        raise ValueError(f"generate_gaussian_targets: {len(joints)} joints but {len(visibility)} visibility values")
    heatmap_w, heatmap_h = int(heatmap_size[0]), int(heatmap_size[1])
    radius = sigma * 3
    upper_left = np.trunc(joints - radius)
    bottom_right = np.trunc(joints + radius + 1)
    outside = ((upper_left[:, 0] >= heatmap_w) | (upper_left[:, 1] >= heatmap_h)
               | (bottom_right[:, 0] < 0) | (bottom_right[:, 1] < 0))
    target_weight = np.where(outside, np.float32(0.0), visibility)

    mu = joints.astype(np.float32)
    dx = np.arange(heatmap_w, dtype=np.float32)[None, :] - mu[:, 0:1]
    dy = np.arange(heatmap_h, dtype=np.float32)[None, :] - mu[:, 1:2]
    squared = dx[:, None, :] ** 2 + dy[:, :, None] ** 2
    target = np.exp(-squared / np.float32(2 * sigma ** 2))
    drawn = target_weight > 0.5
    target = np.where(drawn[:, None, None], target, np.float32(0.0)).astype(np.float32)
    return target, target_weight.astype(np.float32)[:, None]
