"""A synthetic video of several quadrupeds with exact identities (`tools/make_synthetic.py --video`).

Animals from `kitpose.demo.synthetic` (random shape and colours, side view, AP-10K keypoints)
walk back and forth across a fixed background, each in its own lane; the lanes lie closer than an
animal is tall, so animals that pass each other overlap: they cross and touch, and the one lower
in the picture (nearer) hides parts of the other. At the image border each turns round on the spot
over TURN_FRAMES frames (through a view from the front or back). Legs swing in a walking gait and
the head bobs, so the pose changes from frame to frame.

Ground truth per frame and animal: keypoints [K, 3] (x, y, v) with the AP-10K visibility of
`kitpose.demo.synthetic` (2 visible, 1 inside the frame but hidden, 0 outside), and the animal's
identity (its index: track ``animal_<index>``). The same arguments give the same frames.
"""
import dataclasses
import os

import cv2
import numpy as np

from .synthetic import _background, animal_geometry, draw_animal, labelled_keypoints, sample_animal

__all__ = ["SyntheticVideo", "render_multi_animal_video", "write_video"]

GAIT_SWING = np.deg2rad(22.0)            # leg swing amplitude of the walking gait
GAIT_PHASE = np.array([0.0, np.pi, np.pi, 0.0])   # L_F, R_F, L_B, R_B: diagonal pairs in step
STRIDE_PX = 60.0                          # distance walked per gait cycle, in pixels
TURN_FRAMES = 8                           # frames an animal takes to turn round at the border, standing


@dataclasses.dataclass
class SyntheticVideo:
    frames: list                          # BGR uint8 [H, W, 3]
    keypoints: np.ndarray                 # [T, A, K, 3] (x, y, v)
    track_names: list                     # A names
    fps: float


def _walker(rng, index, num_animals, width, height, torso_px):
    spec = sample_animal(rng)
    spec.roll, spec.elevation = 0.0, np.deg2rad(rng.uniform(0, 12))
    lane_gap = 0.55 * torso_px                               # less than an animal is tall: they overlap
    lane = height / 2 + (index - (num_animals - 1) / 2) * lane_gap
    speed = rng.uniform(4.0, 7.0) * (1 if index % 2 == 0 else -1)       # neighbours walk towards each other
    start = (index + 1) / (num_animals + 1) * width + rng.uniform(-0.05, 0.05) * width
    return {"spec": spec, "lane": lane, "speed": speed, "x": start, "phase": rng.uniform(0, 2 * np.pi),
            "base_swing": spec.leg_swing.copy(), "base_pitch": spec.head_pitch,
            "yaw": 0.0 if speed > 0 else np.pi, "turning": 0}


def render_multi_animal_video(num_frames=60, num_animals=3, size=(384, 256), seed=0, torso_px=70.0, fps=10.0):
    """A SyntheticVideo of `num_animals` walking animals (see module docstring)."""
    if num_frames < 1 or num_animals < 1:
        raise ValueError(f"need at least one frame and one animal, got {num_frames} frames, {num_animals} animals")
    width, height = size
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 77]))
    background = _background(rng, height, width)
    walkers = [_walker(rng, index, num_animals, width, height, torso_px) for index in range(num_animals)]
    from kitpose.datasets import load_metainfo
    names = load_metainfo("ap10k").keypoints
    frames, truth = [], []
    margin = 0.9 * torso_px
    for _ in range(num_frames):
        image = background.copy()
        part_ids = np.zeros((height, width), dtype=np.uint16)
        drawn = []
        # lower in the picture = nearer = drawn later
        for index in sorted(range(num_animals), key=lambda i: walkers[i]["lane"]):
            walker = walkers[index]
            spec = walker["spec"]
            gait = walker["phase"] + 2 * np.pi * walker["x"] / STRIDE_PX * np.sign(walker["speed"])
            spec.leg_swing = walker["base_swing"] + GAIT_SWING * np.sin(gait + GAIT_PHASE)
            spec.head_pitch = walker["base_pitch"] + np.deg2rad(6) * np.sin(2 * gait)
            spec.yaw = walker["yaw"]
            bob = 2.0 * np.sin(2 * gait)
            points, owners = draw_animal(image, part_ids, animal_geometry(spec), torso_px,
                                         np.array([walker["x"], walker["lane"] + bob]), index, names)
            drawn.append((index, points, owners))
        noise = 2.0 * rng.standard_normal(image.shape, np.float32)
        image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        keypoints = np.zeros((num_animals, len(names), 3))
        for index, points, owners in drawn:
            keypoints[index] = labelled_keypoints(points, owners, part_ids)
        frames.append(image)
        truth.append(keypoints)
        for walker in walkers:
            if walker["turning"]:
                walker["yaw"] += np.pi / TURN_FRAMES
                walker["turning"] -= 1
                continue
            walker["x"] += walker["speed"]
            if not margin <= walker["x"] <= width - margin:
                walker["speed"] = -walker["speed"]
                walker["x"] = float(np.clip(walker["x"], margin, width - margin))
                walker["turning"] = TURN_FRAMES
    return SyntheticVideo(frames, np.stack(truth), [f"animal_{i}" for i in range(num_animals)], fps)


def write_video(path, frames, fps):
    """Write BGR frames as an MPEG-4 video (OpenCV's mp4v codec)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path} (codec mp4v)")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
