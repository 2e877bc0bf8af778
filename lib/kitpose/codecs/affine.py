"""Top-down box geometry and the published crop transform.

A box is described by its centre and a ``scale`` in units of ``pixel_std``
(200 px), after the box has been widened or heightened to the network's input
aspect ratio and padded by 1.25.

The crop transform is the published one (docs/published_behaviour.md): a
similarity that maps the box centre to ((w - 1) / 2, (h - 1) / 2) of a w x h
output and zooms by (w - 1) / (scale[0] * pixel_std - 1), i.e. it aligns pixel
centres of the first and last columns rather than pixel edges (HRNet's w / 2,
w / S). It is built from three float32 points, as published, and solved in
float64; the same construction at the heatmap size places joints on the
heatmap, and its inverse back-projects predictions.

Box conventions differ between the published loaders (see ``BoxConvention``);
they are dataset facts and come from the metainfo file.
"""
from dataclasses import dataclass

import numpy as np

PIXEL_STD = 200.0
BOX_PADDING = 1.25

__all__ = ["PIXEL_STD", "BOX_PADDING", "BoxConvention", "box_to_center_scale", "box_area", "box_corners",
           "xywh_to_corners", "clean_boxes", "get_affine_transform", "affine_transform_points", "fliplr_joints",
           "transform_preds"]


@dataclass(frozen=True)
class BoxConvention:
    """How a published loader turns an annotation box (x, y, w, h) into centre and scale.

    ``size_plus_one``: the clean ground-truth box is x2 - x1 + 1 wide (COCO, AnimalKingdom
    loaders) instead of x2 - x1 (AP-10K, AnimalPose), where x2 = min(W - 1, x1 + max(0, w - 1)).
    ``center_minus_one``: the centre is x + (w - 1) / 2 (COCO loader) instead of x + w / 2;
    this applies to detector boxes too.
    """
    size_plus_one: bool = False
    center_minus_one: bool = False


def box_to_center_scale(box_xywh, aspect_ratio, convention=BoxConvention(), padding=BOX_PADDING,
                        pixel_std=PIXEL_STD):
    """Centre (float32 [2]) and scale (float32 [2]) of a box (x, y, w, h) fixed to ``aspect_ratio`` (w / h).

    Arithmetic as published: centre and aspect fix in float64, the unpadded scale
    rounded to float32, then padded in float32.
    """
    x, y, w, h = (float(v) for v in box_xywh[:4])
    offset = 1.0 if convention.center_minus_one else 0.0
    center = np.array([x + (w - offset) * 0.5, y + (h - offset) * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / pixel_std, h / pixel_std], dtype=np.float32) * np.float32(padding)
    return center, scale


def box_area(scale, pixel_std=PIXEL_STD):
    """Area in pixels [...] of the padded box of ``scale`` [..., 2]: the OKS scale of an instance
    (float32 for a float32 scale)."""
    return np.prod(np.asarray(scale) * pixel_std, axis=-1)


def box_corners(center, scale, padding=BOX_PADDING, pixel_std=PIXEL_STD):
    """Corners (x1, y1, x2, y2) [..., 4] of the box a centre [..., 2] and scale [..., 2] describe, without
    the padding (the aspect-ratio fix stays)."""
    center = np.asarray(center)
    half_size = np.asarray(scale) * pixel_std / padding / 2.0
    return np.concatenate([center - half_size, center + half_size], axis=-1)


def xywh_to_corners(boxes):
    """Boxes (x, y, w, h) -> corners (x1, y1, x2, y2), float64 [N, 4]."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def clean_boxes(boxes, image_sizes, convention=BoxConvention()):
    """Ground-truth boxes [N, 4] clipped to their images [N, 2] (width, height) as the published loaders do.

    x1 = max(0, x), x2 = min(W - 1, x1 + max(0, w - 1)) (same for y): the far corner is
    measured from the clipped near corner. Returns (clean boxes [N, 4] x1, y1, w, h with
    w = x2 - x1 (+ 1 under ``convention.size_plus_one``), valid [N] where x2 >= x1 and y2 >= y1).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    near = np.maximum(boxes[:, :2], 0.0)
    far = np.minimum(sizes - 1.0, near + np.maximum(boxes[:, 2:] - 1.0, 0.0))
    valid = (far >= near).all(axis=1)
    extent = far - near + (1.0 if convention.size_plus_one else 0.0)
    return np.concatenate([near, extent], axis=1), valid


def _third_point(a, b):
    """The point completing a right angle at ``b`` (float32, as published)."""
    direction = a - b
    return b + np.stack([-direction[..., 1], direction[..., 0]], axis=-1)


def get_affine_transform(center, scale, rotation, output_size, shift=(0.0, 0.0), inverse=False,
                         pixel_std=PIXEL_STD):
    """2x3 matrix mapping source pixels to the ``output_size`` (w, h) crop (published construction).

    Batched: ``center`` / ``scale`` [..., 2] and ``rotation`` (degrees, scalar or [...]) give
    matrices [..., 2, 3]. Only ``scale[..., 0]`` sets the zoom (the height follows from the
    aspect fix). ``shift`` moves the source centre by a fraction of the box size.
    ``inverse=True`` maps crop pixels back to the source image.
    """
    center = np.asarray(center, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    if scale.ndim == 0:
        scale = np.stack([scale, scale])
    batch_shape = np.broadcast_shapes(center.shape[:-1], scale.shape[:-1], np.shape(rotation))
    center = np.broadcast_to(center, batch_shape + (2,))
    scale = np.broadcast_to(scale, batch_shape + (2,))
    box = scale * np.float32(pixel_std)
    shift_px = box * np.asarray(shift, dtype=np.float32)
    # the "up" vector of half the box width (less half a pixel), rotated: float64 from float32 inputs
    half_width = (box[..., 0] - np.float32(1)) * np.float32(-0.5)
    angle = np.pi * np.broadcast_to(np.asarray(rotation, dtype=np.float64), batch_shape) / 180.0
    up = np.stack([-(half_width.astype(np.float64) * np.sin(angle)),
                   half_width.astype(np.float64) * np.cos(angle)], axis=-1)
    src = np.empty(batch_shape + (3, 2), dtype=np.float32)
    src[..., 0, :] = center + shift_px
    src[..., 1, :] = (center.astype(np.float64) + up) + shift_px
    src[..., 2, :] = _third_point(src[..., 0, :], src[..., 1, :])

    out_w, out_h = float(output_size[0]), float(output_size[1])
    dst = np.empty(batch_shape + (3, 2), dtype=np.float32)
    dst[..., 0, :] = [(out_w - 1) * 0.5, (out_h - 1) * 0.5]
    dst[..., 1, :] = np.array([(out_w - 1) * 0.5, (out_h - 1) * 0.5]) + np.array([0.0, (out_w - 1) * -0.5],
                                                                                 dtype=np.float32)
    dst[..., 2, :] = _third_point(dst[..., 0, :], dst[..., 1, :])
    if inverse:
        src, dst = dst, src
    return _affine_from_points(src.astype(np.float64), dst.astype(np.float64))


def _affine_from_points(src, dst):
    """The affine map [..., 2, 3] taking the three points ``src`` [..., 3, 2] to ``dst`` [..., 3, 2]."""
    ones = np.ones(src.shape[:-1] + (1,))
    # rows [x, y, 1] of the source points; solve S @ M^T = D for each batch element
    solved = np.linalg.solve(np.concatenate([src, ones], axis=-1), dst)
    return np.swapaxes(solved, -1, -2)


def affine_transform_points(points, matrix):
    """Apply a 2x3 affine ``matrix`` to ``points`` [N, 2] (or matrices [B, 2, 3] to points [B, N, 2])."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ np.swapaxes(matrix[..., :2], -1, -2) + matrix[..., None, :, 2]


def fliplr_joints(joints, width, flip_pairs):
    """Mirror joints [K, 3] (x, y, visibility) in an image of ``width`` px and swap left/right ids.

    As published, the coordinates of invisible joints become 0.
    """
    flipped = np.array(joints, dtype=np.float64, copy=True)
    flipped[:, 0] = width - flipped[:, 0] - 1
    pairs = np.asarray(flip_pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        left, right = pairs[:, 0], pairs[:, 1]
        flipped[np.concatenate([left, right])] = flipped[np.concatenate([right, left])]
    flipped[:, :2] *= flipped[:, 2:3]
    return flipped


def transform_preds(coords, center, scale, heatmap_size):
    """Heatmap coordinates [..., K, 2] back to source-image pixels (inverse crop transform, no rotation).

    Batched over leading dimensions of ``center`` / ``scale`` [..., 2].
    """
    matrix = get_affine_transform(center, scale, 0.0, heatmap_size, inverse=True)
    return affine_transform_points(coords, matrix)
