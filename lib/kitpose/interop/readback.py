"""Load the --format files of a `tools/infer.py` run back and compare them with its results.json
(`tools/check_exports.py OUT_DIR`).

Each file is read by the tools animal scientists use: the SLEAP .slp, the NWB file and the SLEAP
csv with sleap-io; the DeepLabCut h5 and csv with `movement` (its DeepLabCut loader); the .slp also
with movement when it is tracked or has one animal per frame (movement reads an untracked .slp as
one animal per frame). Every reader gives, per frame and
animal (track, or rank in the frame without --track), the keypoints x, y, score; the check
reports the largest difference to results.json (which rounds to 1e-3 px) and whether the frames
and animals are the same.
"""
import glob
import json
import os
from dataclasses import dataclass

import numpy as np

from . import InteropError, require_sleap_io
from .predictions_out import DLC_H5_KEY

__all__ = ["ReadBack", "read_back"]


@dataclass
class ReadBack:
    path: str
    reader: str
    frames: int
    animals: int
    max_xy_difference: float
    max_score_difference: float
    same_entries: bool

    def describe(self):
        return (f"{os.path.basename(self.path)} via {self.reader}: {self.frames} frames, {self.animals} animal(s), "
                f"same frames and animals: {'yes' if self.same_entries else 'NO'}, largest |dx|,|dy| "
                f"{self.max_xy_difference:.2e} px, largest |d score| {self.max_score_difference:.2e}")


def _frame_key(frame):
    """Frames are keyed by number in a video and by absolute path for images."""
    return int(frame) if isinstance(frame, (int, np.integer)) else os.path.abspath(str(frame))


def _reference(results):
    table, ranks = {}, {}
    for record in results:
        frame = _frame_key(record["frame"] if "frame" in record else record["file_name"])
        rank = ranks.get(frame, 0)
        ranks[frame] = rank + 1
        animal = f"track_{record['track_id']}" if "track_id" in record else rank
        table[(frame, animal)] = np.asarray(record["keypoints"], np.float64).reshape(-1, 3)
    return table


def _frame_names(video):
    """Frame number -> key: the image paths of an image-list video, else the numbers themselves."""
    if isinstance(video.filename, list):
        return [_frame_key(path) for path in video.filename]
    return None


def _from_labels(labels, names):
    nodes = labels.skeletons[0].node_names
    order = [nodes.index(name) for name in names]
    table = {}
    for lf in labels:
        frames = _frame_names(lf.video)
        frame = frames[lf.frame_idx] if frames is not None else int(lf.frame_idx)
        for rank, instance in enumerate(lf.instances):
            key = (frame, instance.track.name if instance.track is not None else rank)
            table[key] = np.asarray(instance.numpy(scores=True), np.float64)[order]
    return table


def _dlc_rows(path):
    """Row labels of a DeepLabCut file (frame numbers, or image paths): movement keeps only their order."""
    import pandas as pd
    if path.endswith(".h5"):
        index = pd.read_hdf(path, DLC_H5_KEY).index
    else:
        index = pd.read_csv(path, usecols=[0], skiprows=_dlc_header_rows(path), header=None).iloc[:, 0]
    return [_frame_key(int(v) if str(v).isdigit() else v) for v in index]


def _dlc_header_rows(path):
    with open(path) as f:
        firsts = [f.readline().split(",")[0] for _ in range(4)]
    return 4 if firsts[1] == "individuals" else 3


def _from_poses(dataset, names, frames=None):
    position = dataset.position.sel(keypoints=names).values         # time, space, keypoints, individuals
    confidence = dataset.confidence.sel(keypoints=names).values     # time, keypoints, individuals
    table = {}
    for j, individual in enumerate(str(i) for i in dataset.individuals.values):
        # the DeepLabCut files name untracked animals instance_<rank>
        key = int(individual.rsplit("_", 1)[1]) if individual.startswith("instance_") else individual
        for t, time in enumerate(dataset.time.values):
            xy = position[t, :, :, j].T
            if not np.isnan(xy).all():
                table[(frames[t] if frames is not None else int(time), key)] = np.concatenate([xy, confidence[t, :, j][:, None]], axis=1)
    return table


def _one_animal(table):
    """One animal under one name: readers name a lone animal differently (individual_0, track_0, rank 0)."""
    if len({key for _, key in table}) == 1:
        return {(frame, "animal"): value for (frame, _), value in table.items()}
    return table


def _compare(path, reader, table, reference):
    table, reference = _one_animal(table), _one_animal(reference)
    keys = set(reference) & set(table)
    xy = max((float(np.nanmax(np.abs(table[k][:, :2] - reference[k][:, :2]))) for k in keys), default=np.inf)
    score = max((float(np.nanmax(np.abs(table[k][:, 2] - reference[k][:, 2]))) for k in keys), default=np.inf)
    return ReadBack(path, reader, len({k[0] for k in table}), len({k[1] for k in table}), xy, score,
                    set(table) == set(reference))


def _in_frame_order(table, reference):
    """sleap-io's NWB reader numbers the frames it finds 0, 1, ... whatever their timestamps (the file
    holds the frame numbers as timestamps): map them in order onto results.json's frame numbers, so a
    run that starts past frame 0 (infer.py --frames) compares frame by frame."""
    read_frames = sorted({frame for frame, _ in table})
    frames = sorted({frame for frame, _ in reference})
    if len(read_frames) != len(frames) or read_frames == frames:
        return table
    number = dict(zip(read_frames, frames))
    return {(number[frame], animal): values for (frame, animal), values in table.items()}


def _ranked_tracks(reference, table):
    """sleap-io's NWB reader gives a frame's animals in track order but without their track names: key
    the reference the same way (rank among the frame's tracks, in track-number order)."""
    if any(isinstance(animal, str) for _, animal in table) or not any(isinstance(a, str) for _, a in reference):
        return reference
    by_frame = {}
    for frame, animal in reference:
        by_frame.setdefault(frame, []).append(animal)
    ranked = {}
    for frame, animals in by_frame.items():
        for rank, animal in enumerate(sorted(animals, key=lambda name: int(name.rsplit("_", 1)[1]))):
            ranked[(frame, rank)] = reference[(frame, animal)]
    return ranked


def read_back(out_dir):
    """ReadBack of every --format file in out_dir (see module docstring)."""
    sio = require_sleap_io()
    results_file = os.path.join(out_dir, "results.json")
    if not os.path.isfile(results_file):
        raise InteropError(f"{out_dir}: no results.json (the folder of a tools/infer.py run)")
    with open(results_file) as f:
        results = json.load(f)
    if not results:
        raise InteropError(f"{results_file}: no predictions to compare")
    names = results[0]["keypoint_names"]
    reference = _reference(results)
    try:
        from movement.io import load_poses
    except ImportError as err:
        raise InteropError(f"reading the files back needs movement ({err}): pip install -e '.[interop]'") from None
    checks = []
    for path in sorted(glob.glob(os.path.join(out_dir, "*.predictions.slp")) + glob.glob(os.path.join(out_dir, "*.nwb"))
                       + glob.glob(os.path.join(out_dir, "*.sleap.csv"))):
        labels = sio.load_file(path)
        table = _from_labels(labels, names)
        if path.endswith(".nwb"):
            table = _in_frame_order(table, reference)
            checks.append(_compare(path, "sleap-io", table, _ranked_tracks(reference, table)))
        else:
            checks.append(_compare(path, "sleap-io", table, reference))
        # movement reads an untracked .slp as one animal per frame (the last instance)
        if path.endswith(".slp") and (labels.tracks or max(len(lf.instances) for lf in labels) <= 1):
            poses = load_poses.from_sleap_file(path)
            checks.append(_compare(path, "movement", _from_poses(poses, names, _frame_names(labels.videos[0])),
                                   reference))
    for path in sorted(glob.glob(os.path.join(out_dir, "*_kitpose.h5")) + glob.glob(os.path.join(out_dir, "*_kitpose.csv"))):
        poses = load_poses.from_dlc_file(path)
        checks.append(_compare(path, "movement", _from_poses(poses, names, _dlc_rows(path)), reference))
    if not checks:
        raise InteropError(f"{out_dir}: no --format files (dlc, slp, nwb, csv) to read back")
    return checks
