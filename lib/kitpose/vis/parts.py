"""Pictures of what a KITPose model formed: per-keypoint heatmaps and the k-medoids body parts.

`part_cluster_figure` lays out one crop as a single BGR picture:

    [ crop, keypoints coloured by part ] [ part maps ... ] [ legend: part -> keypoint names ]
    [ heatmap tile per keypoint, its bar coloured by the keypoint's part, name on it  ... ]
"""
import cv2
import numpy as np

from .draw import limb_colors
from .heatmaps import heatmap_overlay, image_grid

__all__ = ["part_colors", "scale_to_peak", "draw_keypoints_by_part", "labelled_tile", "text_panel", "wrap_words",
           "part_cluster_figure"]

FONT = cv2.FONT_HERSHEY_SIMPLEX
BACKGROUND = 32
NO_PART_COLOR = (200, 200, 200)
LINE_HEIGHT = 20


def part_colors(num_parts):
    """One distinct BGR colour per body part (hues spread as for limbs)."""
    return limb_colors(num_parts)


def scale_to_peak(maps):
    """Maps [N,h,w] each divided by its own positive maximum (negative values to 0), for display."""
    maps = np.maximum(np.asarray(maps, dtype=np.float32), 0.0)
    peaks = maps.reshape(len(maps), -1).max(axis=1) if len(maps) else np.zeros(0, np.float32)
    return maps / np.maximum(peaks, 1e-12)[:, None, None]


def _fit_text(text, width, scale=0.45, thickness=1):
    """Largest scale <= `scale` at which `text` fits in `width` px."""
    text_width = cv2.getTextSize(text, FONT, scale, thickness)[0][0]
    return scale if text_width <= width else max(0.25, scale * width / text_width)


def draw_keypoints_by_part(image, keypoints, assign, skeleton, radius=5):
    """Copy of `image` with the limbs thin and grey and keypoint i a dot of its part's colour, labelled i.

    keypoints [K,2] in `image` pixels; assign [K] part ids (None: every dot grey)."""
    canvas = np.ascontiguousarray(image).copy()
    points = np.round(np.asarray(keypoints, dtype=np.float64)[:, :2]).astype(np.int64)
    num_parts = int(np.max(assign)) + 1 if assign is not None and len(assign) else 0
    colors = part_colors(num_parts)
    for a, b in np.asarray(skeleton, dtype=np.int64).reshape(-1, 2).tolist():
        cv2.line(canvas, tuple(points[a].tolist()), tuple(points[b].tolist()), (160, 160, 160), 1, cv2.LINE_AA)
    for index, (x, y) in enumerate(points.tolist()):
        color = colors[int(assign[index])] if num_parts else NO_PART_COLOR
        cv2.circle(canvas, (x, y), radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(canvas, (x, y), radius, color, -1, cv2.LINE_AA)
        cv2.putText(canvas, str(index), (x + radius + 1, y - radius), FONT, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, str(index), (x + radius + 1, y - radius), FONT, 0.4, color, 1, cv2.LINE_AA)
    return canvas


def labelled_tile(image, label, color, size, bar=18):
    """`image` resized to size x size under a bar of `color` carrying `label` (dark text)."""
    tile = cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST if image.shape[0] < size // 2
                      else cv2.INTER_LINEAR)
    header = np.empty((bar, size, 3), np.uint8)
    header[:] = color
    scale = _fit_text(label, size - 6)
    cv2.putText(header, label, (3, bar - 5), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, tile], axis=0)


def text_panel(lines, width, height, line_height=None):
    """Dark panel with one (text, BGR colour) per line, shrunk to fit the width."""
    line_height = line_height or LINE_HEIGHT
    panel = np.full((height, width, 3), BACKGROUND, np.uint8)
    for row, (text, color) in enumerate(lines):
        y = (row + 1) * line_height
        if y > height - 4:
            break
        cv2.putText(panel, text, (8, y), FONT, _fit_text(text, width - 16), color, 1, cv2.LINE_AA)
    return panel


def wrap_words(words, width, prefix="   ", scale=0.45):
    """Join `words` with ', ' into lines no wider than `width` px at font `scale`."""
    lines, current = [], ""
    for word in words:
        candidate = f"{current}, {word}" if current else prefix + word
        if current and cv2.getTextSize(candidate, FONT, scale, 1)[0][0] > width - 16:
            lines.append(current + ",")
            candidate = prefix + word
        current = candidate
    return lines + ([current] if current else [])


def _pad_to(image, height, width):
    out = np.full((height, width, 3), BACKGROUND, np.uint8)
    out[:image.shape[0], :image.shape[1]] = image
    return out


def part_cluster_figure(crop, heatmaps, keypoints, names, skeleton, assign=None, medoids=None, part_maps=None,
                        tile=160, columns=6, title=""):
    """One BGR picture of a crop's heatmaps and body-part clusters.

    crop uint8 [H,W,3] (BGR, the network input); heatmaps [K,h,w]; keypoints [K,2] in crop
    pixels; names K strings; assign [K] part of each keypoint and medoids [P] (keypoint
    index of each part's medoid), or None for a model without part prompts; part_maps
    [P,h,w] the model's part outputs (optional). Each map is shown scaled to its own peak.
    """
    num_keypoints = len(names)
    num_parts = len(medoids) if medoids is not None else 0
    colors = part_colors(num_parts)

    big = 2 * tile
    zoom = big / crop.shape[1]
    crop_big = cv2.resize(crop, (big, int(round(crop.shape[0] * zoom))), interpolation=cv2.INTER_LINEAR)
    marked = draw_keypoints_by_part(crop_big, np.asarray(keypoints, np.float64)[:, :2] * zoom, assign, skeleton)
    header_tiles = [labelled_tile(marked, title or "keypoints coloured by part", (220, 220, 220), big)]

    if part_maps is not None and num_parts:
        shown = scale_to_peak(part_maps)
        part_tiles = [labelled_tile(heatmap_overlay(crop, shown[p:p + 1], alpha=0.7, rgb=False),
                                    f"part {p} map", colors[p], tile) for p in range(num_parts)]
        header_tiles.append(image_grid(part_tiles, columns=max(1, -(-num_parts // 2)), pad=0, fill=BACKGROUND))

    header_height = max(t.shape[0] for t in header_tiles)
    header = np.concatenate([_pad_to(t, header_height, t.shape[1]) for t in header_tiles], axis=1)
    shown = scale_to_peak(heatmaps)
    keypoint_tiles = []
    for k in range(num_keypoints):
        color = colors[int(assign[k])] if num_parts else NO_PART_COLOR
        keypoint_tiles.append(labelled_tile(heatmap_overlay(crop, shown[k:k + 1], alpha=0.7, rgb=False),
                                            f"{k} {names[k]}", color, tile))
    grid = image_grid(keypoint_tiles, columns=columns, pad=4, fill=BACKGROUND)
    width = max(header.shape[1] + 2 * tile, grid.shape[1])
    legend_width = width - header.shape[1]

    legend = [("body parts (k-medoids of the keypoint maps):", (255, 255, 255))]
    if num_parts:
        for part in range(num_parts):
            members = [f"{i} {names[i]}" for i in np.flatnonzero(np.asarray(assign) == part)]
            legend.append((f"part {part} (medoid {names[int(medoids[part])]}):", colors[part]))
            legend += [(line, colors[part]) for line in wrap_words(members, legend_width)]
    else:
        legend.append(("none: this model has no part prompts", NO_PART_COLOR))
    top_height = max(header_height, LINE_HEIGHT * (len(legend) + 1))
    legend_panel = text_panel(legend, legend_width, top_height)
    top = np.concatenate([_pad_to(header, top_height, header.shape[1]), legend_panel], axis=1)
    return np.concatenate([_pad_to(top, top.shape[0], width), _pad_to(grid, grid.shape[0], width)], axis=0)
