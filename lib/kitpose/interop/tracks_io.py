"""Tracked poses of one video read from (and labels written to) the files animal scientists use,
for `tools/eval_tracks.py` and the synthetic video of `tools/make_synthetic.py --video`.

`read_tracked_poses(path)` reads, into `TrackedPoses` (per video frame number: the animals with
their track name or None, keypoints [K, 3] x, y, score, and an instance score):

- a SLEAP file (.slp) and anything else sleap-io loads (NWB, SLEAP csv, ...): labelled instances
  (score 1 for a labelled point) and predicted ones (their point scores); tracks by name;
- a DeepLabCut table (.h5, or .csv whose first cell is ``scorer``): training labels (x, y; score 1)
  or analysis results (x, y, likelihood), with or without the ``individuals`` level (without: one
  animal, track ``single``);
- ``results.json`` of `tools/infer.py` on a video (``frame``, ``track_id`` -> ``track_<id>``).

An absent point (NaN) has score 0. Frames are video frame numbers: a row or labelled frame named by
an image path (DeepLabCut's ``labeled-data/<video>/img0123.png``, a SLEAP image sequence) is frame
number the digits of the file stem spell (123); a name without digits is an error naming the file.
"""
import json
import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import InteropError, require_sleap_io

__all__ = ["Animal", "TrackedPoses", "read_tracked_poses", "save_tracked_labels"]


class Animal(NamedTuple):
    track: str            # track name, or None where the file has none
    keypoints: np.ndarray  # [K, 3] x, y, score (0: absent)
    score: float


@dataclass
class TrackedPoses:
    path: str
    keypoint_names: list
    frames: dict = field(default_factory=dict)     # frame number -> [Animal]

    def add(self, frame, animal):
        self.frames.setdefault(int(frame), []).append(animal)


def _frame_number(name, path):
    stem = os.path.splitext(os.path.basename(str(name)))[0]
    digits = re.findall(r"\d+", stem)
    if not digits:
        raise InteropError(f"{path}: frame {name!r} names no frame number (expected digits in the file name, "
                           "as DeepLabCut's img0123.png)")
    return int(digits[-1])


def _points(xy, scores):
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    scores = np.asarray(scores, np.float64).reshape(-1)
    absent = ~np.isfinite(xy).all(axis=1) | ~np.isfinite(scores)
    return np.concatenate([np.where(absent[:, None], 0.0, xy), np.where(absent, 0.0, scores)[:, None]], axis=1)


def _from_labels(sio, labels, path):
    if not labels.skeletons:
        raise InteropError(f"{path}: no skeleton")
    poses = TrackedPoses(path, list(labels.skeletons[0].node_names))
    for lf in labels:
        filename = lf.video.filename
        frame = _frame_number(filename[lf.frame_idx], path) if isinstance(filename, list) else int(lf.frame_idx)
        for instance in lf.instances:
            if instance.skeleton.node_names != poses.keypoint_names:
                raise InteropError(f"{path}: frame {frame} has an instance of another skeleton "
                                   f"({instance.skeleton.node_names})")
            xy = instance.numpy()
            if isinstance(instance, sio.PredictedInstance):
                scores, score = instance.numpy(scores=True)[:, 2], float(instance.score)
            else:
                scores, score = np.ones(len(xy)), 1.0
            poses.add(frame, Animal(instance.track.name if instance.track is not None else None,
                                    _points(xy, scores), score))
    return poses


def _dlc_csv_layout(path):
    """(header rows, index columns) of a DeepLabCut csv."""
    with open(path) as f:
        rows = [f.readline().rstrip("\n").split(",") for _ in range(4)]
    header = 4 if len(rows[1]) and rows[1][0] == "individuals" else 3
    index_columns = 1
    while index_columns < len(rows[0]) and rows[0][index_columns] == "":
        index_columns += 1
    return header, index_columns


def _from_dlc(path):
    import pandas as pd
    if path.endswith(".h5"):
        table = pd.read_hdf(path)
    else:
        header, index_columns = _dlc_csv_layout(path)
        table = pd.read_csv(path, header=list(range(header)), index_col=list(range(index_columns)))
    levels = list(table.columns.names)
    if "bodyparts" not in levels or "coords" not in levels:
        raise InteropError(f"{path}: not a DeepLabCut table (column levels {levels}, expected bodyparts, coords)")
    names = list(dict.fromkeys(table.columns.get_level_values("bodyparts")))
    individuals = (list(dict.fromkeys(table.columns.get_level_values("individuals")))
                   if "individuals" in levels else [None])
    coords = set(table.columns.get_level_values("coords"))
    poses = TrackedPoses(path, names)
    for row_name, row in table.iterrows():
        last = row_name[-1] if isinstance(row_name, tuple) else row_name
        frame = int(last) if str(last).isdigit() else _frame_number(last, path)
        for individual in individuals:
            part = row if individual is None else row.xs(individual, level="individuals")
            part = part.droplevel("scorer") if "scorer" in part.index.names else part
            xy = np.stack([part.xs("x", level="coords")[names], part.xs("y", level="coords")[names]], axis=1)
            if not np.isfinite(xy).any():
                continue
            scores = part.xs("likelihood", level="coords")[names].to_numpy() if "likelihood" in coords \
                else np.ones(len(names))
            keypoints = _points(xy, scores)
            score = float(keypoints[keypoints[:, 2] > 0, 2].mean()) if (keypoints[:, 2] > 0).any() else 0.0
            poses.add(frame, Animal(individual if individual is not None else "single", keypoints, score))
    return poses


def _from_results(path):
    with open(path) as f:
        try:
            records = json.load(f)
        except json.JSONDecodeError as err:
            raise InteropError(f"{path}: not JSON ({err})") from None
    if not isinstance(records, list) or not records:
        raise InteropError(f"{path}: expected the non-empty list of a tools/infer.py results.json")
    poses = TrackedPoses(path, list(records[0].get("keypoint_names", [])))
    for index, record in enumerate(records):
        if "frame" not in record or "keypoints" not in record:
            raise InteropError(f"{path}: record {index} has no 'frame' or 'keypoints' (results of a video needed)")
        track = f"track_{record['track_id']}" if "track_id" in record else None
        keypoints = np.asarray(record["keypoints"], np.float64).reshape(-1, 3)
        poses.add(record["frame"], Animal(track, keypoints, float(record.get("score", 1.0))))
    return poses


def _is_dlc_csv(path):
    with open(path) as f:
        return f.readline().split(",")[0] == "scorer"


def read_tracked_poses(path):
    """TrackedPoses of a labels or predictions file (see module docstring)."""
    if not os.path.isfile(path):
        raise InteropError(f"{path}: no such file")
    if path.endswith(".json"):
        return _from_results(path)
    if path.endswith(".h5") or (path.endswith(".csv") and _is_dlc_csv(path)):
        return _from_dlc(path)
    sio = require_sleap_io()
    try:
        labels = sio.load_file(path)
    except Exception as err:  # sleap-io raises many kinds for a file it cannot read
        raise InteropError(f"{path}: sleap-io cannot read it ({type(err).__name__}: {err})") from None
    return _from_labels(sio, labels, path)


def save_tracked_labels(path, video_path, keypoints, track_names, keypoint_names, skeleton=()):
    """Write labels as a SLEAP .slp: keypoints [T, A, K, 3] (x, y, v; v 0: not labelled) of frames
    0..T-1 of `video_path`, animal a as track `track_names[a]` (None: untracked animals); skeleton:
    (a, b) keypoint index pairs."""
    sio = require_sleap_io()
    names = list(keypoint_names)
    skeleton = sio.Skeleton(nodes=names, edges=[(names[a], names[b]) for a, b in skeleton])
    video = sio.Video(filename=os.path.abspath(video_path), open_backend=False)
    keypoints = np.asarray(keypoints, np.float64)
    tracks = [sio.Track(name) for name in track_names] if track_names is not None else [None] * keypoints.shape[1]
    frames = []
    for frame_index, animals in enumerate(keypoints):
        instances = []
        for track, animal in zip(tracks, animals):
            if not (animal[:, 2] > 0).any():
                continue
            xy = np.where(animal[:, 2:] > 0, animal[:, :2], np.nan)
            instances.append(sio.Instance.from_numpy(points_data=xy, skeleton=skeleton, track=track))
        if instances:
            frames.append(sio.LabeledFrame(video=video, frame_idx=frame_index, instances=instances))
    sio.save_slp(sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton],
                         tracks=[track for track in tracks if track is not None]), path)
    return path
