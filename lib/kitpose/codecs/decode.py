"""Heatmap decoding: arg-max, flip-test fusion, DARK refinement, back-projection (published arithmetic)."""
import numpy as np
import torch
from scipy.ndimage import correlate1d
import cv2

from .affine import transform_preds

__all__ = ["get_max_preds", "flip_back", "fuse_flip_heatmaps", "dark_refine", "get_final_preds",
           "transform_preds"]


def _flip_permutation(num_joints, flip_pairs):
    permutation = np.arange(num_joints)
    pairs = np.asarray(flip_pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        if pairs.max() >= num_joints or pairs.min() < 0:
            raise ValueError(f"flip pair index out of range for {num_joints} joints: {pairs.tolist()}")
        permutation[pairs[:, 0]] = pairs[:, 1]
        permutation[pairs[:, 1]] = pairs[:, 0]
    return permutation


def flip_back(heatmaps, flip_pairs):
    """Heatmaps of a horizontally flipped image [N, K, h, w] -> heatmaps of the original.

    Mirrors the maps and swaps left/right joints. Accepts numpy arrays or torch
    tensors and returns the same kind (a new array).
    """
    permutation = _flip_permutation(heatmaps.shape[1], flip_pairs)
    if isinstance(heatmaps, torch.Tensor):
        index = torch.as_tensor(permutation, device=heatmaps.device)
        return torch.flip(heatmaps, dims=[3]).index_select(1, index)
    return np.ascontiguousarray(heatmaps[:, permutation, :, ::-1])


def fuse_flip_heatmaps(heatmaps, flipped_heatmaps, flip_pairs, shift_heatmap=False):
    """Flip test: average ``heatmaps`` with the flipped-back ``flipped_heatmaps`` (torch).

    The published validation averages them as they are (``shift_heatmap`` False). With
    ``shift_heatmap`` the flipped-back maps move one pixel right first (HRNet's correction
    for its w / 2 crop centre; column 0 keeps its value).
    """
    restored = flip_back(flipped_heatmaps, flip_pairs)
    if shift_heatmap:
        restored = torch.cat([restored[..., :1], restored[..., :-1]], dim=-1)
    return (heatmaps + restored) * 0.5


def get_max_preds(heatmaps):
    """Arg-max location (x, y) [N, K, 2] and value [N, K, 1] of each map; (0, 0) where the max is <= 0."""
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 4:
        raise ValueError(f"get_max_preds expects heatmaps [N, K, h, w], got shape {heatmaps.shape}")
    num, joints, _, width = heatmaps.shape
    flat = heatmaps.reshape(num, joints, -1)
    index = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, index[..., None], axis=2).astype(np.float32)
    coords = np.stack([index % width, index // width], axis=-1).astype(np.float32)
    coords *= (maxvals > 0.0)
    return coords, maxvals


def _blur_keep_max(heatmaps, kernel_size):
    """DARK's modulation as published: zero-pad, Gaussian blur in float64 (OpenCV's kernel and
    reflect-101 border), crop, store as float32, rescale to the old maximum in float32."""
    border = (kernel_size - 1) // 2
    kernel = cv2.getGaussianKernel(kernel_size, 0).ravel()
    padded = np.pad(heatmaps.astype(np.float64), [(0, 0), (0, 0), (border, border), (border, border)])
    blurred = correlate1d(padded, kernel, axis=2, mode="mirror")
    blurred = correlate1d(blurred, kernel, axis=3, mode="mirror")
    height, width = heatmaps.shape[2:]
    blurred = blurred[:, :, border:border + height, border:border + width].astype(np.float32)
    old_max = heatmaps.max(axis=(2, 3), keepdims=True).astype(np.float32)
    new_max = blurred.max(axis=(2, 3), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a map without a positive maximum decodes to (0, 0) before this matters
        return blurred * (old_max / new_max)


def dark_refine(heatmaps, coords, blur_kernel=11):
    """DARK sub-pixel refinement of integer arg-max ``coords`` [N, K, 2] (heatmap pixels).

    Blurs each map (keeping its maximum), takes the float32 log and moves each location by
    one Newton step on the log-likelihood, -H^-1 * grad, with central differences in float64.
    Locations with x or y within 2 px of the border (the step needs 1 < p < size - 2) or with
    a singular Hessian are unchanged.
    """
    heatmaps = np.asarray(heatmaps)
    num, joints, height, width = heatmaps.shape
    with np.errstate(invalid="ignore"):
        log_maps = np.log(np.maximum(_blur_keep_max(heatmaps, blur_kernel), np.float32(1e-10)))
    px = coords[..., 0].astype(np.int64)
    py = coords[..., 1].astype(np.int64)
    inside = (px > 1) & (px < width - 2) & (py > 1) & (py < height - 2)
    px = np.where(inside, px, 2)
    py = np.where(inside, py, 2)
    flat = log_maps.reshape(num, joints, -1)

    def at(dx, dy):
        return np.take_along_axis(flat, ((py + dy) * width + px + dx)[..., None], axis=2)[..., 0].astype(np.float64)

    center = at(0, 0)
    grad_x = 0.5 * (at(1, 0) - at(-1, 0))
    grad_y = 0.5 * (at(0, 1) - at(0, -1))
    dxx = 0.25 * (at(2, 0) - 2 * center + at(-2, 0))
    dyy = 0.25 * (at(0, 2) - 2 * center + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy ** 2
    usable = inside & (det != 0) & np.isfinite(det)
    safe_det = np.where(usable, det, 1.0)
    offset_x = -(dyy * grad_x - dxy * grad_y) / safe_det
    offset_y = -(dxx * grad_y - dxy * grad_x) / safe_det
    offset = np.stack([offset_x, offset_y], axis=-1) * usable[..., None]
    return (coords + offset).astype(np.float32)


def get_final_preds(heatmaps, centers, scales, post_process=True, blur_kernel=11):
    """Image-coordinate keypoints [N, K, 2] (float32) and heatmap maxima [N, K, 1].

    ``post_process`` applies DARK (always on in the published test path).
    """
    heatmaps = np.asarray(heatmaps)
    coords, maxvals = get_max_preds(heatmaps)
    if post_process:
        coords = dark_refine(heatmaps, coords, blur_kernel)
    heatmap_size = (heatmaps.shape[3], heatmaps.shape[2])
    preds = transform_preds(coords, np.asarray(centers).reshape(-1, 2), np.asarray(scales).reshape(-1, 2),
                            heatmap_size)
    return preds.astype(np.float32), maxvals
