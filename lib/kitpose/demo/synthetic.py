"""Synthetic quadrupeds in the AP-10K keypoint schema: the embedded default data set.

No public animal data set is reachable on the project's machines, so `make demo` trains on
pictures made here. Output is COCO keypoint format in the AP-10K folder layout::

    <root>/annotations/ap10k-{train,val,test}-split1.json
    <root>/data/<image id, 12 digits>.jpg
    <root>/synthetic_manifest.json     (parameters; a rerun with the same ones is skipped)

Every animal is a small 3-D puppet (ellipsoid torso and head, tapered capsule neck, two-segment
legs, segmented tail) posed with random joint angles, turned by a random yaw around a side view,
seen from a random camera elevation, projected orthographically, rolled, scaled and placed.

Left and right: the body frame is x forward, y up, z toward the animal's right; world Z points at
the viewer. An animal facing image-right thus shows its right side and its left limbs are the
far ones: drawn behind the torso and darker, as in a photograph. A mirror image of such a picture
is again a physically valid picture with L and R exchanged, so flip augmentation and flip testing
with the metainfo flip pairs stay consistent (a fixed colour per side would break that).

Visibility follows AP-10K/COCO: 2 visible, 1 inside the image but hidden (by the animal's own
body, another animal or an occluder), 0 outside the image (stored as 0, 0, 0). Hidden/visible is
read from a part-id buffer rendered along with the picture: a keypoint is visible when the pixel
under it belongs to one of the parts it sits on. Boxes are tight around the whole (amodal)
silhouette, clipped to the image; area is box w x h, as in AP-10K.

Each image has its own random stream seeded by (seed, split, index), so image i of a split is
the same whatever the split sizes, and the same seed gives byte-identical files.
"""
import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import time

import cv2
import numpy as np

from kitpose.jsonio import write_json

logger = logging.getLogger(__name__)

__all__ = ["AnimalSpec", "sample_animal", "animal_geometry", "draw_animal", "labelled_keypoints", "render_scene",
           "render_image", "generate_split", "generate_synthetic_dataset", "annotation_path", "SPLITS"]

# Bump when the pictures or annotations change, so cached data sets are regenerated.
GENERATOR_VERSION = 2
SPLITS = ("train", "val", "test")
SPLIT_CODES = {"train": 1, "val": 2, "test": 3}
IMAGE_ID_STRIDE = 10_000_000          # image id = split code * stride + index + 1
MANIFEST_NAME = "synthetic_manifest.json"
CATEGORY = {"id": 1, "name": "synthetic_quadruped", "supercategory": "Synthetic"}
JPEG_QUALITY = 92
IMAGE_SIDE_RANGE = (192, 256)         # width and height, multiples of 16
MIN_LABELLED_KEYPOINTS = 8            # keypoints inside the image for an animal to be placed

SUBPIXEL_BITS = 4                     # cv2 drawing in 1/16 pixel fixed point
SUBPIXEL = float(1 << SUBPIXEL_BITS)
OCCLUDER_ID = 65535                   # part-id buffer value of foreground occluders
PARTS_PER_ANIMAL = 32                 # id stride between animals in the part-id buffer

# Legs in the order of every per-leg array: (name prefix, keypoints top to bottom, side, front).
# side: +1 the animal's right (body +z), -1 its left.
LEGS = (("L_F", ("L_Shoulder", "L_Elbow", "L_F_Paw"), -1.0, True),
        ("R_F", ("R_Shoulder", "R_Elbow", "R_F_Paw"), 1.0, True),
        ("L_B", ("L_Hip", "L_Knee", "L_B_Paw"), -1.0, False),
        ("R_B", ("R_Hip", "R_Knee", "R_B_Paw"), 1.0, False))
LEG_SIDE = np.array([leg[2] for leg in LEGS])
LEG_FRONT = np.array([leg[3] for leg in LEGS])
TAIL_SEGMENTS = 5

# Parts a keypoint lies on: it is visible when the pixel under it shows one of them.
KEYPOINT_OWNERS = {
    "L_Eye": ("L_Eye",), "R_Eye": ("R_Eye",), "Nose": ("Nose", "head"),
    "Neck": ("neck", "torso", "head"),
    "Root of tail": ("torso",) + tuple(f"tail{i}" for i in range(TAIL_SEGMENTS)),  # a short tail curls over it
    **{kp: (f"{prefix}_upper",) for prefix, (kp, _, _), _, _ in LEGS},
    **{kp: (f"{prefix}_upper", f"{prefix}_lower") for prefix, (_, kp, _), _, _ in LEGS},
    **{kp: (f"{prefix}_lower", f"{prefix}_paw") for prefix, (_, _, kp), _, _ in LEGS},
}
MAX_OWNERS = max(len(owners) for owners in KEYPOINT_OWNERS.values())


@dataclasses.dataclass
class AnimalSpec:
    """Shape, pose, view and colours of one animal. Lengths are in torso lengths; angles in radians.

    Per-leg arrays follow LEGS (L_F, R_F, L_B, R_B). Leg angles are in the body's sagittal plane,
    measured from straight down, positive swinging forward; ``leg_bend`` is the lower segment's
    angle relative to the upper one.
    """
    torso_half_height: float
    torso_half_width: float
    leg_length: float
    upper_fraction: float
    limb_thickness: float
    leg_swing: np.ndarray
    leg_bend: np.ndarray
    leg_splay: np.ndarray
    neck_length: float
    neck_elevation: float
    head_half_length: float
    head_height_ratio: float
    head_pitch: float
    head_turn: float
    tail_length: float
    tail_angle: float
    tail_curl: float
    tail_thickness: float
    yaw: float                # 0 faces image-right (right side toward the viewer), pi faces left
    elevation: float          # camera above the animal (> 0) looks down on its back
    roll: float               # in-image rotation
    body_colour: np.ndarray   # BGR
    near_shade: float         # colour factor of near-side legs
    far_shade: float          # colour factor of far-side legs
    head_shade: float
    paw_colour: np.ndarray
    sclera_colour: np.ndarray


def _uniform_deg(rng, low, high, size=None):
    return np.deg2rad(rng.uniform(low, high, size))


def _hsv_colour(hue, saturation, value):
    pixel = np.array([[[hue, saturation, value]]], dtype=np.uint8)
    return cv2.cvtColor(pixel, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def _sample_body_colour(rng):
    kind = rng.random()
    if kind < 0.65:     # browns, tans, oranges
        return _hsv_colour(rng.uniform(4, 24), rng.uniform(60, 210), rng.uniform(60, 225))
    if kind < 0.9:      # greys, black, white
        return _hsv_colour(rng.uniform(0, 180), rng.uniform(0, 30), rng.uniform(35, 235))
    return _hsv_colour(rng.uniform(0, 180), rng.uniform(80, 220), rng.uniform(80, 220))


def sample_animal(rng):
    """A random AnimalSpec: mostly side views (yaw within 55 degrees of one), either facing."""
    facing = np.pi * rng.integers(0, 2)
    grazing = rng.random() < 0.15
    return AnimalSpec(
        torso_half_height=rng.uniform(0.16, 0.23),
        torso_half_width=rng.uniform(0.12, 0.17),
        leg_length=rng.uniform(0.45, 0.85),
        upper_fraction=rng.uniform(0.45, 0.55),
        limb_thickness=rng.uniform(0.8, 1.25),
        leg_swing=np.where(LEG_FRONT, _uniform_deg(rng, -35, 35, 4), _uniform_deg(rng, -20, 45, 4)),
        leg_bend=np.where(LEG_FRONT, _uniform_deg(rng, -60, 5, 4), _uniform_deg(rng, -70, 0, 4)),
        leg_splay=rng.uniform(-0.05, 0.05, 4),
        neck_length=rng.uniform(0.25, 0.5),
        neck_elevation=_uniform_deg(rng, -50, -15) if grazing else _uniform_deg(rng, 10, 70),
        head_half_length=rng.uniform(0.11, 0.17),
        head_height_ratio=rng.uniform(0.45, 0.65),
        head_pitch=_uniform_deg(rng, -95, -55) if grazing else _uniform_deg(rng, -65, 10),
        head_turn=_uniform_deg(rng, -25, 25),
        tail_length=rng.uniform(0.12, 0.6),
        tail_angle=_uniform_deg(rng, -100, 30),
        tail_curl=_uniform_deg(rng, -20, 20),
        tail_thickness=rng.uniform(0.7, 1.6),
        yaw=facing + _uniform_deg(rng, -55, 55),
        elevation=_uniform_deg(rng, -5, 30),
        roll=float(np.clip(rng.normal(0.0, np.deg2rad(12)), -np.deg2rad(35), np.deg2rad(35))),
        body_colour=_sample_body_colour(rng),
        near_shade=rng.uniform(0.92, 1.08),
        far_shade=rng.uniform(0.55, 0.7),
        head_shade=rng.uniform(0.9, 1.1),
        paw_colour=rng.uniform(15, 60, 3),
        sclera_colour=rng.uniform(170, 240, 3),
    )


# ----------------------------------------------------------------------------- geometry
def _rotation(spec):
    """Body frame -> world: yaw about the vertical, then the camera elevation about world X."""
    cy, sy = np.cos(spec.yaw), np.sin(spec.yaw)
    ce, se = np.cos(spec.elevation), np.sin(spec.elevation)
    yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    elevation = np.array([[1.0, 0.0, 0.0], [0.0, ce, -se], [0.0, se, ce]])
    return elevation @ yaw


def _image_transform(spec):
    """World (X, Y) -> image (u, v): v grows downward, then the in-image roll."""
    cr, sr = np.cos(spec.roll), np.sin(spec.roll)
    return np.array([[cr, -sr], [sr, cr]]) @ np.diag([1.0, -1.0])


def _ellipse_polygon(center, covariance, points=40):
    """Polygon of the ellipse {x: (x-c)^T C^-1 (x-c) <= 1}."""
    values, vectors = np.linalg.eigh(covariance)
    angles = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)])
    return center + ((vectors * np.sqrt(np.maximum(values, 1e-12))) @ circle).T


def _capsule_polygon(start, end, start_radius, end_radius, points=12):
    """Convex hull of two discs: a tapered limb segment, exact under any foreshortening."""
    angles = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    discs = np.concatenate([start + start_radius * circle, end + end_radius * circle]).astype(np.float32)
    return cv2.convexHull(discs)[:, 0, :].astype(np.float64)


@dataclasses.dataclass
class AnimalGeometry:
    """An animal in unit image coordinates (one torso length = 1, torso centre at the origin)."""
    keypoints: dict           # keypoint name -> (2,) position
    parts: list               # (part name, polygon [N, 2], BGR colour, outlined) in drawing order

    def bounds(self):
        points = np.concatenate([polygon for _, polygon, _, _ in self.parts])
        return points.min(axis=0), points.max(axis=0)


def animal_geometry(spec):
    """Project an AnimalSpec: named 2-D keypoints and depth-ordered part polygons."""
    rotation = _rotation(spec)
    to_image = _image_transform(spec)

    def project(points):
        return (np.atleast_2d(points) @ rotation.T)[:, :2] @ to_image.T

    def project_ellipsoid(center, axes, half_lengths):
        covariance = rotation @ axes @ np.diag(np.square(half_lengths)) @ axes.T @ rotation.T
        return _ellipse_polygon(project(center)[0], to_image @ covariance[:2, :2] @ to_image.T)

    def depth(direction):        # world Z (toward the viewer) of a body-frame direction
        return float(rotation[2] @ direction)

    half_length, half_height, half_width = 0.5, spec.torso_half_height, spec.torso_half_width
    thickness = spec.limb_thickness

    # legs: attachment inside the torso, two segments in the sagittal plane plus a little splay
    attach = np.stack([np.where(LEG_FRONT, 0.62, -0.62) * half_length,
                       np.where(LEG_FRONT, -0.2, -0.1) * half_height,
                       LEG_SIDE * 0.7 * half_width], axis=1)
    upper_length = spec.leg_length * spec.upper_fraction
    lower_length = spec.leg_length - upper_length
    lower_angle = spec.leg_swing + spec.leg_bend
    upper_dir = np.stack([np.sin(spec.leg_swing), -np.cos(spec.leg_swing), LEG_SIDE * spec.leg_splay], axis=1)
    lower_dir = np.stack([np.sin(lower_angle), -np.cos(lower_angle), LEG_SIDE * spec.leg_splay], axis=1)
    knee = attach + upper_length * upper_dir
    paw = knee + lower_length * lower_dir
    leg_points = project(np.concatenate([attach, knee, paw])).reshape(3, 4, 2)
    top_radius = np.where(LEG_FRONT, 0.075, 0.1) * thickness
    joint_radius, paw_radius, paw_mark_radius = 0.045 * thickness, 0.033 * thickness, 0.048 * thickness

    # neck from the front-top of the torso; head at its end, pointing forward-down
    neck_base = np.array([0.78 * half_length, 0.4 * half_height, 0.0])
    cos_turn, sin_turn = np.cos(spec.head_turn), np.sin(spec.head_turn)
    neck_dir = np.array([np.cos(spec.neck_elevation) * cos_turn, np.sin(spec.neck_elevation),
                         np.cos(spec.neck_elevation) * sin_turn])
    neck_end = neck_base + spec.neck_length * neck_dir
    head_dir = np.array([np.cos(spec.head_pitch) * cos_turn, np.sin(spec.head_pitch),
                         np.cos(spec.head_pitch) * sin_turn])
    head_up = np.array([0.0, 1.0, 0.0]) - head_dir[1] * head_dir
    head_up /= np.linalg.norm(head_up)
    head_side = np.cross(head_dir, head_up)          # toward the animal's right
    head_lengths = spec.head_half_length * np.array([1.0, spec.head_height_ratio, 0.85 * spec.head_height_ratio])
    head_center = neck_end + 0.35 * head_lengths[0] * head_dir
    head_axes = np.stack([head_dir, head_up, head_side], axis=1)
    nose = head_center + 0.92 * head_lengths[0] * head_dir
    eye_sides = np.array([-1.0, 1.0])                  # L_Eye, R_Eye
    eyes = (head_center + 0.2 * head_lengths[0] * head_dir + 0.35 * head_lengths[1] * head_up
            + 0.85 * head_lengths[2] * eye_sides[:, None] * head_side)
    eye_normals = eye_sides[:, None] * head_side + 0.4 * head_dir + 0.3 * head_up
    eye_drawn = (eye_normals @ rotation[2]) > 0.1      # faces the viewer
    nose_drawn = depth(head_dir) > -0.5

    # tail: a chain of segments from the rear-top of the torso outline, curling as it goes
    tail_root = np.array([-0.95 * half_length, np.sqrt(1.0 - 0.95 ** 2) * half_height, 0.0])
    tail_angles = spec.tail_angle + spec.tail_curl * np.arange(TAIL_SEGMENTS)
    tail_steps = (spec.tail_length / TAIL_SEGMENTS) * np.stack(
        [-np.cos(tail_angles), np.sin(tail_angles), np.zeros(TAIL_SEGMENTS)], axis=1)
    tail = project(tail_root + np.concatenate([np.zeros((1, 3)), np.cumsum(tail_steps, axis=0)]))
    tail_radius = spec.tail_thickness * np.linspace(0.045, 0.015, TAIL_SEGMENTS + 1)

    keypoints = {"Nose": project(nose)[0], "Neck": project(neck_base)[0], "Root of tail": tail[0]}
    keypoints.update(zip(("L_Eye", "R_Eye"), project(eyes)))
    for leg_index, (_, names, _, _) in enumerate(LEGS):
        keypoints.update(zip(names, leg_points[:, leg_index]))

    body = spec.body_colour
    leg_near = depth(np.array([0.0, 0.0, 1.0])) > 0            # right side toward the viewer
    legs_back_to_front = np.argsort((attach + paw) / 2 @ rotation[2])

    def leg_parts(leg_index):
        prefix, _, side, _ = LEGS[leg_index]
        near = (side > 0) == leg_near
        colour = np.clip(body * (spec.near_shade if near else spec.far_shade), 0, 255)
        top, joint, end = leg_points[:, leg_index]
        return [(f"{prefix}_upper", _capsule_polygon(top, joint, top_radius[leg_index], joint_radius), colour, True),
                (f"{prefix}_lower", _capsule_polygon(joint, end, joint_radius, paw_radius), colour, True),
                (f"{prefix}_paw", _ellipse_polygon(end, np.eye(2) * paw_mark_radius ** 2, 16),
                 spec.paw_colour, False)]

    head_colour = np.clip(body * spec.head_shade, 0, 255)
    neck_radius = 0.09 * thickness
    head_group = [("neck", _capsule_polygon(*project(np.stack([neck_base, neck_end])), neck_radius,
                                            0.7 * neck_radius, points=16), body, True),
                  ("head", project_ellipsoid(head_center, head_axes, head_lengths), head_colour, True)]
    eye_radius = 0.026
    eye_order = np.argsort(eye_normals @ rotation[2])      # the nearer eye is drawn last
    for name, eye, drawn in zip(np.array(["L_Eye", "R_Eye"])[eye_order], project(eyes)[eye_order],
                                eye_drawn[eye_order]):
        if drawn:
            head_group += [(name, _ellipse_polygon(eye, np.eye(2) * (1.7 * eye_radius) ** 2, 12),
                            spec.sclera_colour, False),
                           (name, _ellipse_polygon(eye, np.eye(2) * eye_radius ** 2, 12), np.full(3, 20.0), False)]
    if nose_drawn:
        head_group.append(("Nose", _ellipse_polygon(project(nose)[0], np.eye(2) * 0.032 ** 2, 12),
                           np.full(3, 30.0), False))
    tail_group = [(f"tail{i}", _capsule_polygon(tail[i], tail[i + 1], tail_radius[i], tail_radius[i + 1]),
                   np.clip(body * 0.85, 0, 255), False) for i in range(TAIL_SEGMENTS)]
    torso = [("torso", project_ellipsoid(np.zeros(3), np.eye(3), np.array([half_length, half_height, half_width])),
              body, True)]

    # painter's order: far legs, the end of the body turned away, torso, the end turned toward us, near legs
    facing_viewer = depth(np.array([1.0, 0.0, 0.0])) > 0
    far_legs = [i for i in legs_back_to_front if (LEG_SIDE[i] > 0) != leg_near]
    near_legs = [i for i in legs_back_to_front if (LEG_SIDE[i] > 0) == leg_near]
    behind, in_front = (tail_group, head_group) if facing_viewer else (head_group, tail_group)
    parts = [part for i in far_legs for part in leg_parts(i)] + behind + torso + in_front
    parts += [part for i in near_legs for part in leg_parts(i)]
    return AnimalGeometry(keypoints=keypoints, parts=parts)


# ----------------------------------------------------------------------------- drawing
def _fill(image, part_ids, polygon, colour, part_id, outline=None):
    points = np.round(polygon * SUBPIXEL).astype(np.int32)
    cv2.fillPoly(image, [points], tuple(float(c) for c in colour), cv2.LINE_AA, SUBPIXEL_BITS)
    if outline is not None:
        cv2.polylines(image, [points], True, tuple(float(c) for c in outline), 1, cv2.LINE_AA, SUBPIXEL_BITS)
    if part_ids is not None:
        cv2.fillPoly(part_ids, [points], int(part_id), cv2.LINE_8, SUBPIXEL_BITS)


def _random_shape(rng, center, size):
    """Polygons of a random clutter/occluder shape: rock, slab, stick or bush."""
    kind = rng.integers(0, 4)
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        axes = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        lengths = size * np.array([1.0, rng.uniform(0.35, 1.0)])
        return [_ellipse_polygon(center, axes @ np.diag(lengths ** 2) @ axes.T, 32)]
    if kind == 1:
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 8)))
        radii = size * rng.uniform(0.5, 1.0, len(angles))
        return [center + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)]
    if kind == 2:
        direction = rng.normal(size=2)
        direction *= size / np.linalg.norm(direction)
        radius = rng.uniform(0.06, 0.18) * size
        return [_capsule_polygon(center - direction, center + direction, radius, radius * rng.uniform(0.5, 1.0))]
    offsets = rng.normal(0.0, 0.45 * size, (rng.integers(3, 7), 2))
    radii = size * rng.uniform(0.3, 0.6, len(offsets))
    return [_ellipse_polygon(center + offset, np.eye(2) * radius ** 2, 20) for offset, radius in zip(offsets, radii)]


def _smooth_noise(rng, height, width, cell, channels):
    coarse = rng.normal(0.0, 1.0, (height // cell + 2, width // cell + 2, channels)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return field.reshape(height, width, channels)


def _background(rng, height, width):
    """Smooth colour field, optional horizon, mid-frequency texture, then clutter shapes."""
    grid = rng.integers(2, 5)
    tone = rng.uniform(40, 200, 3)
    corners = (0.35 * rng.uniform(20, 235, (grid, grid, 3)) + 0.65 * tone).astype(np.float32)
    image = cv2.resize(corners, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        horizon = rng.uniform(0.15, 0.7) * height
        softness = rng.uniform(1.5, 12.0)
        sky = (_hsv_colour(rng.uniform(90, 125), rng.uniform(10, 120), rng.uniform(150, 250))
               if rng.random() < 0.6 else rng.uniform(60, 240, 3))
        ground = 0.5 + 0.5 * np.tanh((np.arange(height, dtype=np.float32) - horizon) / (2.0 * softness))
        image = image * ground[:, None, None] + sky.astype(np.float32) * (1.0 - ground[:, None, None])
    image += _smooth_noise(rng, height, width, 8, 3) * rng.uniform(4, 18)
    image += _smooth_noise(rng, height, width, 2, 1) * rng.uniform(0, 10)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 13)):
        center = rng.uniform([0, 0], [width, height])
        colour = np.clip(tone + rng.normal(0, 50, 3), 0, 255) if rng.random() < 0.6 else rng.uniform(0, 255, 3)
        for polygon in _random_shape(rng, center, rng.uniform(4, 0.25 * min(width, height))):
            _fill(image, None, polygon, colour, 0)
    return image


def _box_iou(box, others):
    if not others:
        return 0.0
    others = np.asarray(others)
    low = np.maximum(box[:2], others[:, :2])
    high = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    areas = np.prod(box[2:] - box[:2]) + np.prod(others[:, 2:] - others[:, :2], axis=1)
    return float((inter / (areas - inter)).max())


def _place(rng, geometry, width, height, size_range, placed_boxes):
    """(scale, offset) placing the animal mostly inside the image, or None when it does not fit."""
    low, high = geometry.bounds()
    extent = high - low
    scale = rng.uniform(*size_range) * min(width, height) / extent.max()
    image_size = np.array([width, height], dtype=np.float64)
    keypoints = np.stack(list(geometry.keypoints.values()))
    for _ in range(20):
        if rng.random() < 0.2:    # truncated: centre anywhere in the image
            offset = rng.uniform([0, 0], image_size) - scale * (low + high) / 2
        else:
            offset = rng.uniform(-scale * low, np.maximum(image_size - 1 - scale * high, -scale * low))
        box = np.concatenate([scale * low + offset, scale * high + offset])
        points = scale * keypoints + offset
        inside = ((points >= 0) & (points <= image_size - 1)).all(axis=1).sum()
        if inside >= MIN_LABELLED_KEYPOINTS and _box_iou(box, placed_boxes) < 0.3:
            return scale, offset, box
    return None


def render_scene(rng, width, height, keypoint_names, animals=None, occluders=True):
    """Render one picture.

    animals: AnimalSpecs to place (default: 1 to 3 random ones). occluders: draw foreground objects.
    Returns (image uint8 [H, W, 3] BGR, list of (keypoints float64 [K, 3] (x, y, v), box xyxy float64 [4])),
    keypoints in ``keypoint_names`` order.
    """
    if animals is None:
        animals = [sample_animal(rng) for _ in range(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))]
    size_range = (0.5, 0.92) if len(animals) == 1 else (0.32, 0.58)
    placed = []
    for spec in animals:
        geometry = animal_geometry(spec)
        placement = _place(rng, geometry, width, height, size_range, [box for *_, box in placed])
        if placement is not None:
            placed.append((geometry, *placement))
    placed.sort(key=lambda item: item[3][3])   # lower in the picture = nearer = drawn later

    image = _background(rng, height, width)
    part_ids = np.zeros((height, width), dtype=np.uint16)
    instances = []
    for animal_index, (geometry, scale, offset, box) in enumerate(placed):
        points, owners = draw_animal(image, part_ids, geometry, scale, offset, animal_index, keypoint_names)
        instances.append((points, owners, box))

    animal_pixels = part_ids > 0
    texture = 1.0 + rng.uniform(0.0, 0.2) * _smooth_noise(rng, height, width, 12, 1)[..., 0]
    image[animal_pixels] = np.clip(image[animal_pixels] * texture[animal_pixels, None], 0, 255).astype(np.uint8)

    if occluders:
        for *_, box in instances:
            if rng.random() < 0.4:
                box_size = box[2:] - box[:2]
                center = box[:2] + rng.uniform(0.1, 0.9, 2) * box_size
                colour = rng.uniform(20, 235, 3)
                for polygon in _random_shape(rng, center, rng.uniform(0.12, 0.3) * box_size.mean()):
                    _fill(image, part_ids, polygon, colour, OCCLUDER_ID, 0.6 * colour)

    noisy = image.astype(np.float32) + rng.normal(0.0, rng.uniform(1.0, 5.0), image.shape).astype(np.float32)
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        image = cv2.GaussianBlur(image, (3, 3), 0)

    image_size = np.array([width, height], dtype=np.float64)
    results = []
    for points, owners, box in instances:
        clipped_box = np.concatenate([np.maximum(box[:2], 0.0), np.minimum(box[2:], image_size - 1)])
        results.append((labelled_keypoints(points, owners, part_ids), clipped_box))
    return image, results


def draw_animal(image, part_ids, geometry, scale, offset, animal_index, keypoint_names):
    """Draw a posed animal at `scale` (pixels per torso length) and `offset` (pixels); returns its
    keypoints [K, 2] and the part ids [K, MAX_OWNERS] each keypoint may show (-1: none)."""
    part_id = {}
    for name, polygon, colour, outlined in geometry.parts:
        part_id.setdefault(name, animal_index * PARTS_PER_ANIMAL + len(part_id) + 1)
        _fill(image, part_ids, scale * polygon + offset, colour, part_id[name], 0.55 * colour if outlined else None)
    owners = np.array([[part_id.get(owner, -1) for owner in KEYPOINT_OWNERS[name]]
                       + [-1] * (MAX_OWNERS - len(KEYPOINT_OWNERS[name])) for name in keypoint_names])
    return scale * np.stack([geometry.keypoints[name] for name in keypoint_names]) + offset, owners


def labelled_keypoints(points, owners, part_ids):
    """Keypoints [K, 3] (x, y, v) with AP-10K visibility read from the part-id buffer."""
    height, width = part_ids.shape
    image_size = np.array([width, height], dtype=np.float64)
    inside = ((points >= 0) & (points <= image_size - 1)).all(axis=1)
    pixels = np.clip(np.rint(points).astype(np.int64), 0, image_size.astype(np.int64) - 1)
    under = part_ids[pixels[:, 1], pixels[:, 0]].astype(np.int64)
    visible = (owners == under[:, None]).any(axis=1)
    flags = np.where(inside, np.where(visible, 2.0, 1.0), 0.0)
    return np.concatenate([np.where(inside[:, None], points, 0.0), flags[:, None]], axis=1)


def _image_rng(seed, split, index):
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_CODES[split], int(index)]))


def render_image(seed, split, index, keypoint_names, image_size=None):
    """Picture ``index`` of ``split``: (image, instances, width, height), a pure function of its arguments.

    ``image_size`` (w, h) fixes the size; by default each side is drawn from IMAGE_SIDE_RANGE.
    """
    rng = _image_rng(seed, split, index)
    low, high = IMAGE_SIDE_RANGE
    drawn = 16 * rng.integers(low // 16, high // 16 + 1, 2)
    width, height = image_size if image_size is not None else drawn
    image, instances = render_scene(rng, int(width), int(height), keypoint_names)
    return image, instances, int(width), int(height)


# ----------------------------------------------------------------------------- files
def annotation_path(root, split):
    return os.path.join(root, "annotations", f"ap10k-{split}-split1.json")


def _round(values):
    return np.round(np.asarray(values, dtype=np.float64), 2).tolist()


def _render_encoded(task):
    """Picture ``index`` of ``split`` as (instances, width, height, JPEG bytes); what worker processes run."""
    seed, split, index, keypoint_names, image_size = task
    image, instances, width, height = render_image(seed, split, index, keypoint_names, image_size)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for picture {index} of split {split!r}")
    return instances, width, height, encoded.tobytes()


def _single_threaded_worker():
    # one rendering process per core: OpenCV's own thread pool in each would oversubscribe them
    cv2.setNumThreads(1)


def generate_split(root, split, count, seed, meta, image_size=None, pool=None):
    """Write ``count`` pictures of ``split`` to <root>/data and their annotation file; returns the COCO dict.

    ``pool`` (a multiprocessing pool) renders the pictures in its processes; the files are
    byte-identical to one process's, since every picture has its own random stream.
    """
    image_dir = os.path.join(root, "data")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    tasks = [(seed, split, index, tuple(meta.keypoints), image_size) for index in range(count)]
    rendered = pool.imap(_render_encoded, tasks, chunksize=16) if pool else map(_render_encoded, tasks)
    images, annotations = [], []
    for index, (instances, width, height, encoded) in enumerate(rendered):
        image_id = SPLIT_CODES[split] * IMAGE_ID_STRIDE + index + 1
        file_name = f"{image_id:012d}.jpg"
        with open(os.path.join(image_dir, file_name), "wb") as f:
            f.write(encoded)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for instance_index, (keypoints, box) in enumerate(instances):
            box_xywh = _round(np.concatenate([box[:2], box[2:] - box[:2]]))
            annotations.append({
                "id": image_id * 10 + instance_index + 1,
                "image_id": image_id, "category_id": CATEGORY["id"],
                "bbox": box_xywh, "area": round(box_xywh[2] * box_xywh[3], 2), "iscrowd": 0,
                "num_keypoints": int((keypoints[:, 2] > 0).sum()),
                "keypoints": _round(keypoints.reshape(-1)),
            })
    coco = {
        "info": {"description": "Synthetic quadrupeds in the AP-10K keypoint schema (kitpose.demo.synthetic)",
                 "version": str(GENERATOR_VERSION), "seed": int(seed), "split": split},
        "images": images,
        "annotations": annotations,
        # COCO files number skeleton joints from 1
        "categories": [{**CATEGORY, "keypoints": list(meta.keypoints),
                        "skeleton": [[a + 1, b + 1] for a, b in meta.skeleton]}],
    }
    write_json(annotation_path(root, split), coco, separators=(",", ":"))
    return coco


def _manifest(counts, seed, image_size):
    manifest = {"generator": "kitpose.demo.synthetic", "version": GENERATOR_VERSION, "seed": int(seed),
                "counts": {split: int(counts[split]) for split in SPLITS}}
    if image_size is not None:
        manifest["image_size"] = [int(side) for side in image_size]
    return manifest


def _read_manifest(root):
    path = os.path.join(root, MANIFEST_NAME)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError:
            return None


def _complete(root, manifest):
    if not all(os.path.isfile(annotation_path(root, split)) for split in SPLITS):
        return False
    image_dir = os.path.join(root, "data")
    return os.path.isdir(image_dir) and len(os.listdir(image_dir)) == sum(manifest["counts"].values())


def generate_synthetic_dataset(root, train, val, test, seed=0, force=False, image_size=None, workers=1):
    """Generate the three splits under ``root``; returns False when an identical set is already there.

    ``image_size`` (w, h) fixes every picture's size (default: sides drawn from IMAGE_SIDE_RANGE).
    ``workers`` processes render the pictures (the files do not depend on it).

    Generation goes to ``<root>.partial`` and is renamed into place at the end, so an interrupted
    run never leaves a half-written set that looks complete. An existing non-empty ``root`` without
    a synthetic manifest is refused rather than overwritten.
    """
    root = os.path.normpath(root)
    counts = {"train": train, "val": val, "test": test}
    for split, count in counts.items():
        if int(count) < 0:
            raise ValueError(f"--{split} must be >= 0, got {count}")
    if int(workers) < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    wanted = _manifest(counts, seed, image_size)
    existing = _read_manifest(root)
    if not force and existing == wanted and _complete(root, wanted):
        logger.info("%s already holds the synthetic set %s; skipping generation", root, wanted["counts"])
        return False
    if os.path.isdir(root) and os.listdir(root) and existing is None:
        raise FileExistsError(f"{root} exists and holds no {MANIFEST_NAME}; refusing to overwrite it "
                              "(choose another --out or remove it)")

    # imported here, not at the top: the spawned rendering processes import this module, and
    # kitpose.datasets would load torch into each of them (1.7 s) for nothing
    from kitpose.datasets import load_metainfo
    meta = load_metainfo("ap10k")
    partial = root + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    start = time.perf_counter()
    instances = 0
    # spawn, not fork: a forked child of a process that has run OpenCV or torch thread pools can hang
    pool = (multiprocessing.get_context("spawn").Pool(workers, initializer=_single_threaded_worker)
            if workers > 1 else None)
    try:
        for split in SPLITS:
            coco = generate_split(partial, split, counts[split], seed, meta, image_size, pool)
            instances += len(coco["annotations"])
            logger.info("%s: %d images, %d animals", split, len(coco["images"]), len(coco["annotations"]))
    finally:
        if pool:
            pool.close()
            pool.join()
    write_json(os.path.join(partial, MANIFEST_NAME), wanted, indent=1)
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.replace(partial, root)
    logger.info("wrote %d images with %d animals to %s in %.1f s", sum(counts.values()), instances, root,
                time.perf_counter() - start)
    return True
