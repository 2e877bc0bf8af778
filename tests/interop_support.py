"""Test data for the interop, tracking and detector tests, made from the synthetic quadrupeds:
a DeepLabCut-format labelled project and a video of an animal walking across the frame."""
import os
from pathlib import Path

import cv2
import numpy as np

from kitpose.datasets import load_metainfo
from kitpose.demo.synthetic import render_image, render_scene, sample_animal

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
