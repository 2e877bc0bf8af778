"""Top-down box geometry and affine transforms (HRNet conventions).

A box is described by its centre and a ``scale`` in units of ``pixel_std``
(200 px), after the box has been widened or heightened to the network's input
aspect ratio and padded by 1.25. The crop transform is a similarity: rotation
about the centre, uniform zoom (``scale[0] * pixel_std`` source pixels span the
output width) and translation to the output centre.
"""
import numpy as np

PIXEL_STD = 200.0


def box_to_center_scale(box_xywh, aspect_ratio, padding=1.25, pixel_std=PIXEL_STD):
    """Centre and scale of a box (x, y, w, h) fixed to ``aspect_ratio`` (= width / height)."""
    x, y, w, h = (float(v) for v in box_xywh[:4])
    center = np.array([x + 0.5 * w, y + 0.5 * h], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / pixel_std, h / pixel_std], dtype=np.float32) * padding
    return center, scale


def _rotation(angle_rad):
    cos, sin = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[cos, -sin], [sin, cos]], dtype=np.float64)


def get_affine_transform(center, scale, rotation_deg, output_size, shift=(0.0, 0.0), inverse=False,
                         pixel_std=PIXEL_STD):
    """2x3 matrix mapping source-image pixels to the ``output_size`` (w, h) crop.

    Same mapping as HRNet's three-point construction (the source centre goes to
    the output centre, the rotated "up" half-width vector to the output "up"
    half-width vector), written in closed form. ``shift`` moves the source
    centre by a fraction of the box size. ``inverse=True`` maps crop pixels back
    to the source image.
    """
    center = np.asarray(center, dtype=np.float64)
    box_size = np.asarray(scale, dtype=np.float64) * pixel_std
    if box_size.size == 1:
        box_size = np.repeat(box_size.reshape(1), 2)
    output_w, output_h = float(output_size[0]), float(output_size[1])
    src_center = center + box_size * np.asarray(shift, dtype=np.float64)
    dst_center = np.array([0.5 * output_w, 0.5 * output_h])
    # only the box width sets the zoom; the height follows from the aspect fix
    zoom = output_w / box_size[0]
    angle = np.deg2rad(float(rotation_deg))
    if inverse:
        linear = _rotation(angle) / zoom
        translation = src_center - linear @ dst_center
    else:
        linear = zoom * _rotation(-angle)
        translation = dst_center - linear @ src_center
    return np.concatenate([linear, translation[:, None]], axis=1)


def affine_transform_points(points, matrix):
    """Apply a 2x3 affine ``matrix`` to ``points`` [N, 2] (any leading shape)."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def fliplr_joints(joints, width, flip_pairs):
    """Mirror joints [K, >=2] in an image of ``width`` px and swap left/right ids.

    Columns after x, y (e.g. visibility) travel with their joint.
    """
    flipped = np.array(joints, copy=True)
    flipped[:, 0] = width - flipped[:, 0] - 1
    pairs = np.asarray(flip_pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        left, right = pairs[:, 0], pairs[:, 1]
        flipped[np.concatenate([left, right])] = flipped[np.concatenate([right, left])]
    return flipped


def transform_preds(coords, center, scale, heatmap_size):
    """Map heatmap coordinates [K, 2] back to source-image pixels (inverse crop transform)."""
    matrix = get_affine_transform(center, scale, 0.0, heatmap_size, inverse=True)
    return affine_transform_points(coords, matrix)
