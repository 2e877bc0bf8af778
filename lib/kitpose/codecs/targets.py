"""Gaussian heatmap targets (HRNet convention), vectorised over joints."""
import numpy as np


def generate_gaussian_targets(joints, visibility, image_size, heatmap_size, sigma):
    """Unnormalised Gaussian (peak 1) per joint on the heatmap grid.

    joints [K, 2] are input-image pixels; image_size and heatmap_size are (w, h).
    Each joint is rounded to the heatmap pixel ``int(joint / stride + 0.5)`` and
    drawn inside a window of radius ``3 * sigma``. A joint that is not visible,
    or whose window lies entirely outside the heatmap, gets weight 0 and an
    empty map. Returns (target float32 [K, h, w], target_weight float32 [K, 1]).
    """
    joints = np.asarray(joints, dtype=np.float64).reshape(-1, 2)
    visible = np.asarray(visibility, dtype=np.float64).reshape(-1) > 0.5
    if len(visible) != len(joints):
        raise ValueError(f"generate_gaussian_targets: {len(joints)} joints but {len(visible)} visibility values")
    heatmap_w, heatmap_h = int(heatmap_size[0]), int(heatmap_size[1])
    stride = np.asarray(image_size, dtype=np.float64) / np.asarray([heatmap_w, heatmap_h], dtype=np.float64)
    radius = sigma * 3

    # int() truncation toward zero as in HRNet, also for the window corners
    mu = np.trunc(joints / stride + 0.5)
    upper_left = np.trunc(mu - radius)
    bottom_right = np.trunc(mu + radius + 1)
    outside = ((upper_left[:, 0] >= heatmap_w) | (upper_left[:, 1] >= heatmap_h)
               | (bottom_right[:, 0] < 0) | (bottom_right[:, 1] < 0))
    drawn = visible & ~outside
    # HRNet's patch peaks at index floor((2 * radius + 1) / 2) from upper_left: that is mu for a
    # whole 3 * sigma (published sigmas 2, 3); other sigmas can land a pixel off, as published
    peak = upper_left + np.floor((2 * radius + 1) / 2)

    xs = np.arange(heatmap_w, dtype=np.float32)
    ys = np.arange(heatmap_h, dtype=np.float32)
    dx = xs[None, :] - peak[:, 0:1].astype(np.float32)
    dy = ys[None, :] - peak[:, 1:2].astype(np.float32)
    in_x = (xs[None, :] >= upper_left[:, 0:1]) & (xs[None, :] < bottom_right[:, 0:1])
    in_y = (ys[None, :] >= upper_left[:, 1:2]) & (ys[None, :] < bottom_right[:, 1:2])
    squared = dx[:, None, :] ** 2 + dy[:, :, None] ** 2
    target = np.exp(-squared / np.float32(2 * sigma ** 2)).astype(np.float32)
    mask = in_y[:, :, None] & in_x[:, None, :] & drawn[:, None, None]
    target = np.where(mask, target, np.float32(0.0))
    target_weight = drawn.astype(np.float32)[:, None]
    return target, target_weight
