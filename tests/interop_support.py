"""Test data for the interop, tracking and detector tests, made from the synthetic quadrupeds:
a DeepLabCut-format labelled project and a video of an animal walking across the frame; and a
stand-in for the pose model that sees the true keypoints inside the crop it is given."""
import os
from pathlib import Path

import cv2
import numpy as np
from yacs.config import CfgNode

from kitpose.codecs import PIXEL_STD, HeatmapCodec
from kitpose.datasets import load_metainfo
from kitpose.demo.synthetic import render_image, render_scene, sample_animal
from kitpose.inference.predictor import PoseInstances, whole_image_box

AP10K = load_metainfo("ap10k")
DLC_VIDEO = "synthvid"
DLC_SCORER = "tester"


def _config_yaml(names, limbs):
    lines = ["Task: synth", f"scorer: {DLC_SCORER}", "date: Jan1", "multianimalproject: false",
             "project_path: .", "video_sets:", f"  videos/{DLC_VIDEO}.mp4:", "    crop: 0, 256, 0, 256",
             "bodyparts:"] + [f"- {name}" for name in names] + ["skeleton:"]
    lines += [f"- - {names[a]}\n  - {names[b]}" for a, b in limbs]
    if not limbs:
        lines[-1] = "skeleton: []"
    return "\n".join(lines) + "\n"


def make_dlc_project(root, num_images=12, seed=0, limbs=True, defects=True):
    """A single-animal DeepLabCut project of synthetic quadrupeds (AP-10K keypoint names) in `root`.

    With `defects`: image 3 has no label (an all-empty row), image 5 has its first labelled
    keypoint 7 px right of the image, image 7 has a single labelled keypoint.
    Returns {"root", "csv", "images": {file name: (keypoints [K,2] with NaN, width, height)}, "defects"}.
    """
    root = Path(root)
    folder = root / "labeled-data" / DLC_VIDEO
    folder.mkdir(parents=True, exist_ok=True)
    names = AP10K.keypoints
    (root / "config.yaml").write_text(_config_yaml(names, AP10K.skeleton if limbs else []))
    rows, images = [], {}
    defects_made = {}
    for index in range(num_images):
        image, instances, width, height = render_image(seed, "train", index, names)
        keypoints = instances[0][0]
        xy = np.where(keypoints[:, 2:] > 0, keypoints[:, :2], np.nan)
        if defects and index == 3:
            xy[:] = np.nan
            defects_made["unlabelled"] = f"img{index:04d}.png"
        if defects and index == 5:
            k = int(np.flatnonzero(np.isfinite(xy[:, 0]))[0])
            xy[k, 0] = width + 7.0
            defects_made["outside"] = (f"img{index:04d}.png", names[k])
        if defects and index == 7:
            first = int(np.flatnonzero(np.isfinite(xy[:, 0]))[0])
            keep = xy[first].copy()
            xy[:] = np.nan
            xy[first] = keep
            defects_made["single_keypoint"] = f"img{index:04d}.png"
        name = f"img{index:04d}.png"
        cv2.imwrite(str(folder / name), image)
        images[name] = (xy, width, height)
        cells = ["" if not np.isfinite(v) else repr(float(v)) for v in xy.reshape(-1)]
        rows.append(",".join([f"labeled-data/{DLC_VIDEO}/{name}"] + cells))
    header = [",".join(["scorer"] + [DLC_SCORER] * 2 * len(names)),
              ",".join(["bodyparts"] + [n for n in names for _ in range(2)]),
              ",".join(["coords"] + ["x", "y"] * len(names))]
    csv_path = folder / f"CollectedData_{DLC_SCORER}.csv"
    csv_path.write_text("\n".join(header + rows) + "\n")
    return {"root": root, "csv": csv_path, "images": images, "defects": defects_made}


def walking_animal(num_frames=24, size=(320, 192), patch=112, step=8, seed=3):
    """Frames of one synthetic animal pasted at a position moving `step` px right per frame over a
    fixed background. Returns (frames BGR uint8 list, keypoints [T,K,3] (x, y, v) in frame pixels)."""
    rng = np.random.default_rng(seed)
    animal, instances = render_scene(rng, patch, patch, AP10K.keypoints, animals=[sample_animal(rng)],
                                     occluders=False)
    keypoints = instances[0][0]
    width, height = size
    background = np.full((height, width, 3), 90, np.uint8)
    background[:, :, 1] = np.linspace(60, 140, width, dtype=np.uint8)[None]
    frames, tracks = [], []
    for t in range(num_frames):
        x0, y0 = 4 + step * t, (height - patch) // 2
        frame = background.copy()
        visible = frame[y0:y0 + patch, x0:x0 + patch]
        frame[y0:y0 + patch, x0:x0 + patch] = animal[:visible.shape[0], :visible.shape[1]]
        moved = keypoints.copy()
        moved[:, 0] += x0 * (keypoints[:, 2] > 0)
        moved[:, 1] += y0 * (keypoints[:, 2] > 0)
        frames.append(frame)
        tracks.append(moved)
    return frames, np.stack(tracks)


def write_video(path, frames, fps=10):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return Path(path)


# ------------------------------------------------------------------ a top-down model that sees the truth
FOUND, MISSED = 0.9, 0.05


class SeeingPredictor:
    """predict_many/predict like PosePredictor: keypoints inside a crop are found (maximum 0.9), the
    others are missed (0.05) at the crop's centre. `animals[t]`: [A,K,3] true keypoints of frame t."""

    def __init__(self, animals):
        self.animals = animals
        self.frame = 0
        self.cfg = CfgNode({"TEST": CfgNode({"IN_VIS_THRE": 0.2})})
        self.meta = AP10K
        self.codec = HeatmapCodec(image_size=(128, 128), heatmap_size=(32, 32), sigma=2)
        self.crops = []

    def _see(self, box):
        center, scale = self.codec.center_scale(box)
        half = scale * PIXEL_STD / 2
        best = None
        for animal in self.animals[self.frame]:
            inside = (np.abs(animal[:, :2] - center) <= half).all(axis=1) & (animal[:, 2] > 0)
            keypoints = np.concatenate([np.where(inside[:, None], animal[:, :2], center), np.where(
                inside, FOUND, MISSED)[:, None]], axis=1)
            if best is None or inside.sum() > (best[:, 2] == FOUND).sum():
                best = keypoints
        return best.astype(np.float32)

    def predict_many(self, requests):
        results = []
        for image, boxes, scores, categories in requests:
            boxes = whole_image_box(image)[None] if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
            self.crops += [box for box in boxes]
            keypoints = np.stack([self._see(box) for box in boxes])
            count = len(boxes)
            scores = np.ones(count, np.float32) if scores is None else np.asarray(scores, np.float32)
            results.append(PoseInstances(keypoints, boxes, scores, keypoints[:, :, 2].mean(axis=1) * scores,
                                         np.ones(count, np.int64)))
        return results

    def predict(self, image, boxes=None, box_scores=None, category_ids=None):
        return self.predict_many([(image, boxes, box_scores, category_ids)])[0]


def truth_box(keypoints):
    labelled = keypoints[keypoints[:, 2] > 0, :2]
    return labelled.min(axis=0), labelled.max(axis=0)
