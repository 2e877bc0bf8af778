"""The centroid (anchor-point) codec of the detection stage: whole frames letterboxed to the network
input, one Gaussian per animal at its anchor, local peaks decoded back to frame pixels.

Coordinates: a frame pixel (x, y) maps to the input pixel (s x + ox, s y + oy) (`letterbox`: the
frame scaled by s to fit MODEL.IMAGE_SIZE with its aspect ratio kept, centred with offset
(ox, oy)); an input pixel maps to the heatmap pixel (x / stride_x, y / stride_y), stride =
IMAGE_SIZE / HEATMAP_SIZE. Decoding inverts both steps.
"""
import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["letterbox", "anchor_points", "centroid_target", "find_peaks", "peaks_to_frame", "anchor_boxes"]


def letterbox(frame_size, input_size):
    """(scale s, offset [ox, oy]) that fit a frame (w, h) into the input (w, h) with its aspect ratio kept."""
    frame_w, frame_h = float(frame_size[0]), float(frame_size[1])
    if frame_w <= 0 or frame_h <= 0:
        raise ValueError(f"letterbox: frame size {frame_w:g} x {frame_h:g} is empty")
    input_w, input_h = float(input_size[0]), float(input_size[1])
    scale = min(input_w / frame_w, input_h / frame_h)
    offset = np.array([(input_w - frame_w * scale) / 2.0, (input_h - frame_h * scale) / 2.0])
    return scale, offset


def anchor_points(keypoints, anchor_index=None):
    """(anchors [N,2] frame pixels, valid [N] bool) of instances' keypoints [N,K,3] (x, y, v).

    The anchor is keypoint `anchor_index` where it is labelled (v > 0), else the centre of the box of
    the labelled keypoints; an instance without labelled keypoints has no anchor (valid False)."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(len(keypoints), -1, 3)
    labelled = keypoints[:, :, 2] > 0
    valid = labelled.any(axis=1)
    anchors = np.zeros((len(keypoints), 2))
    for i in np.flatnonzero(valid):
        points = keypoints[i, labelled[i], :2]
        anchors[i] = (points.min(axis=0) + points.max(axis=0)) / 2.0
        if anchor_index is not None and labelled[i, anchor_index]:
            anchors[i] = keypoints[i, anchor_index, :2]
    return anchors, valid


def centroid_target(heatmap_points, heatmap_size, sigma):
    """One map [1,h,w] float32: the maximum over unnormalised Gaussians (peak 1) at `heatmap_points` [N,2]
    (heatmap pixels; points off the map still add their tails); all zero without points."""
    width, height = int(heatmap_size[0]), int(heatmap_size[1])
    target = np.zeros((1, height, width), np.float32)
    points = np.asarray(heatmap_points, dtype=np.float32).reshape(-1, 2)
    if len(points):
        dx = np.arange(width, dtype=np.float32)[None, :] - points[:, 0:1]
        dy = np.arange(height, dtype=np.float32)[None, :] - points[:, 1:2]
        squared = dx[:, None, :] ** 2 + dy[:, :, None] ** 2
        target[0] = np.exp(-squared / np.float32(2 * sigma ** 2)).max(axis=0)
    return target


def find_peaks(heatmap, threshold, min_distance, max_peaks=0):
    """Local maxima of one map [h,w] (tensor or array): (points [M,2] heatmap pixels, values [M]), best first.

    A peak is the maximum of its (2 min_distance + 1)^2 window and above `threshold`; of peaks closer
    than `min_distance` (a plateau) only the best stays; at most `max_peaks` when > 0. Each point is
    moved a quarter pixel towards its higher neighbour in x and in y."""
    heatmap = torch.as_tensor(heatmap, dtype=torch.float32)
    if heatmap.dim() != 2:
        raise ValueError(f"find_peaks: expected one map [h, w], got shape {tuple(heatmap.shape)}")
    radius = max(int(min_distance), 0)
    pooled = F.max_pool2d(heatmap[None, None], 2 * radius + 1, stride=1, padding=radius)[0, 0]
    is_peak = (heatmap == pooled) & (heatmap > threshold)
    ys, xs = torch.nonzero(is_peak, as_tuple=True)
    values = heatmap[ys, xs].numpy()
    order = np.argsort(-values, kind="stable")
    maps = heatmap.numpy()
    height, width = maps.shape
    points, kept_values = [], []
    for index in order:
        x, y = int(xs[index]), int(ys[index])
        if any((x - px) ** 2 + (y - py) ** 2 < max(radius, 1) ** 2 for px, py in points):
            continue
        points.append((x, y))
        kept_values.append(values[index])
        if max_peaks and len(points) == max_peaks:
            break
    refined = np.array(points, dtype=np.float64).reshape(-1, 2)
    for point in refined:
        x, y = int(point[0]), int(point[1])
        if 0 < x < width - 1:
            point[0] += 0.25 * np.sign(maps[y, x + 1] - maps[y, x - 1])
        if 0 < y < height - 1:
            point[1] += 0.25 * np.sign(maps[y + 1, x] - maps[y - 1, x])
    return refined, np.asarray(kept_values, dtype=np.float32)


def peaks_to_frame(points, input_size, heatmap_size, scale, offset):
    """Heatmap pixels [M,2] -> frame pixels of the frame letterboxed with (scale, offset)."""
    stride = np.asarray(input_size, np.float64) / np.asarray(heatmap_size, np.float64)
    return (np.asarray(points, np.float64).reshape(-1, 2) * stride - offset) / scale


def anchor_boxes(anchors, box_size):
    """Boxes [M,4] (x, y, w, h) of size `box_size` (w, h) centred on `anchors` [M,2]."""
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    size = np.broadcast_to(np.asarray(box_size, np.float64), anchors.shape)
    return np.concatenate([anchors - size / 2.0, size], axis=1)
