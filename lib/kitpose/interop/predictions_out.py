"""Predictions in other tools' formats: `tools/infer.py --format dlc slp nwb csv`.

The predictions of a run become one sleap-io `Labels` (skeleton from the metainfo: keypoint
names, limbs, flip pairs as symmetries; one `Video`: the input video, or the input images in
order; one `PredictedInstance` per animal and frame with its keypoint maxima as point scores and
its instance score; one `Track` per track id under --track). From it:

==========  =====================================  =============================================
--format    file                                   written by
==========  =====================================  =============================================
slp         ``<stem>.predictions.slp``             sleap-io (SLEAP labels)
nwb         ``<stem>.nwb``                         sleap-io (NWB with ndx-pose PoseEstimation)
csv         ``<stem>.sleap.csv``                   sleap-io (SLEAP csv: a row per instance)
dlc         ``<stem>_kitpose.h5`` and ``.csv``     pandas, DeepLabCut's video-analysis layout
==========  =====================================  =============================================

``<stem>`` is the video's file stem, or ``predictions`` for images. sleap-io writes DeepLabCut
training labels only, so the DeepLabCut files are laid out here as DeepLabCut writes its
analysis results: one row per frame (the frame number; the image path for image inputs), columns
(scorer, [individuals,] bodyparts, coords) with coords x, y, likelihood (the heatmap maximum),
NaN where an animal is absent; the h5 key is ``df_with_missing``. One animal gives the
single-animal layout (no individuals level); with --track the individuals are the tracks
(``track_<id>``), without it ``instance_<n>``, the n-th best instance of each frame (a rank, not an
identity). Coordinates are image pixels as in results.json (x right, y down from the top-left
corner), unrounded.
"""
import logging
import os

import numpy as np

from . import InteropError, require_sleap_io

logger = logging.getLogger(__name__)

__all__ = ["PredictionExport", "EXPORT_FORMATS", "predictions_to_labels", "dlc_table"]

EXPORT_FORMATS = ("dlc", "slp", "nwb", "csv")
DLC_H5_KEY = "df_with_missing"


def _skeleton(sio, meta):
    names = list(meta.keypoints)
    return sio.Skeleton(nodes=names, edges=[(names[a], names[b]) for a, b in meta.skeleton],
                        symmetries=[(names[a], names[b]) for a, b in meta.flip_pairs], name=meta.name)


def _track_name(track_id):
    return f"track_{int(track_id)}"


def predictions_to_labels(frames, meta, video_path=None, image_paths=None):
    """sleap-io Labels of `frames`: a list of (frame index, PoseInstances); `video_path` for a video,
    else `image_paths` (frame index = position in that list)."""
    sio = require_sleap_io()
    skeleton = _skeleton(sio, meta)
    if video_path is not None:
        video = sio.Video(filename=os.path.abspath(video_path), open_backend=False)
    else:
        video = sio.Video.from_filename([os.path.abspath(p) for p in image_paths])
    track_ids = sorted({int(t) for _, inst in frames if inst.track_ids is not None for t in inst.track_ids})
    tracks = {t: sio.Track(_track_name(t)) for t in track_ids}
    labelled = []
    for frame_index, instances in frames:
        predicted = []
        for j in range(len(instances)):
            keypoints = instances.keypoints[j].astype(np.float64)
            track = tracks[int(instances.track_ids[j])] if instances.track_ids is not None else None
            predicted.append(sio.PredictedInstance.from_numpy(
                points_data=keypoints[:, :2], skeleton=skeleton, point_scores=keypoints[:, 2],
                score=float(instances.scores[j]), track=track,
                tracking_score=float(instances.scores[j]) if track is not None else None))
        if predicted:
            labelled.append(sio.LabeledFrame(video=video, frame_idx=int(frame_index), instances=predicted))
    return sio.Labels(labeled_frames=labelled, videos=[video], skeletons=[skeleton], tracks=list(tracks.values()))


def dlc_table(frames, meta, scorer, row_names):
    """DeepLabCut analysis DataFrame of `frames` (list of (frame index, PoseInstances)); `row_names`
    maps a frame index to its row label."""
    import pandas as pd

    tracked = any(inst.track_ids is not None for _, inst in frames)
    if tracked:
        individuals = [_track_name(t) for t in sorted({int(t) for _, inst in frames for t in inst.track_ids})]
    else:
        individuals = [f"instance_{n}" for n in range(max([len(inst) for _, inst in frames], default=0))]
    names = list(meta.keypoints)
    coords = ("x", "y", "likelihood")
    single = len(individuals) <= 1
    if single:
        columns = pd.MultiIndex.from_product([[scorer], names, coords], names=["scorer", "bodyparts", "coords"])
    else:
        columns = pd.MultiIndex.from_product([[scorer], individuals, names, coords],
                                             names=["scorer", "individuals", "bodyparts", "coords"])
    values = np.full((len(frames), max(len(individuals), 1), len(names), 3), np.nan)
    for row, (_, instances) in enumerate(frames):
        for j in range(len(instances)):
            column = individuals.index(_track_name(instances.track_ids[j])) if tracked else j
            values[row, column] = instances.keypoints[j]
    index = [row_names(frame_index) for frame_index, _ in frames]
    return pd.DataFrame(values.reshape(len(frames), -1), index=index, columns=columns)


def _save_nwb(labels, path):
    """sleap-io's NWB predictions writer, given a timestamp for every frame number up to the last: left
    to itself it makes one per predicted frame and then indexes them by frame number, which fails
    when a run starts past frame 0 (--frames) or a frame has no animal. Timestamps are frame numbers,
    its own default convention."""
    from sleap_io.io import nwb_predictions

    last = max((lf.frame_idx for lf in labels.labeled_frames), default=0)
    nwb_predictions.write_nwb(labels, path, pose_estimation_metadata={
        "video_timestamps": np.arange(last + 1, dtype=np.float64)})


class PredictionExport:
    """Collects a run's predictions frame by frame (`add`) and writes the --format files (`write`)."""

    def __init__(self, formats, meta, source, cfg):
        unknown = [name for name in formats if name not in EXPORT_FORMATS]
        if unknown:
            raise InteropError(f"--format {', '.join(unknown)}: unknown; known: coco, {', '.join(EXPORT_FORMATS)}")
        require_sleap_io()
        self.formats = list(dict.fromkeys(formats))
        self.meta = meta
        self.source = source
        self.scorer = f"KITPose_{cfg.CFG_NAME or 'model'}"
        self.frames = []
        self.is_video = source.kind == "video"
        self.stem = os.path.splitext(os.path.basename(source.paths[0]))[0] if self.is_video else "predictions"

    def add(self, frame, instances):
        self.frames.append((frame.index, instances))

    def _row_name(self, frame_index):
        return int(frame_index) if self.is_video else self.source.paths[frame_index]

    def write(self, out_dir):
        """Write every requested format into out_dir; returns the paths written."""
        sio = require_sleap_io()
        os.makedirs(out_dir, exist_ok=True)
        labels = predictions_to_labels(self.frames, self.meta,
                                       video_path=self.source.paths[0] if self.is_video else None,
                                       image_paths=None if self.is_video else self.source.paths)
        written = []
        for name in self.formats:
            base = os.path.join(out_dir, self.stem)
            if name == "slp":
                sio.save_slp(labels, f"{base}.predictions.slp")
                written.append(f"{base}.predictions.slp")
            elif name == "nwb":
                _save_nwb(labels, f"{base}.nwb")
                written.append(f"{base}.nwb")
            elif name == "csv":
                sio.save_csv(labels, f"{base}.sleap.csv")
                written.append(f"{base}.sleap.csv")
            elif name == "dlc":
                written += self._write_dlc(f"{base}_kitpose")
        return written

    def _write_dlc(self, base):
        table = dlc_table(self.frames, self.meta, self.scorer, self._row_name)
        try:
            table.to_hdf(f"{base}.h5", key=DLC_H5_KEY, format="table", mode="w")
        except ImportError as err:
            raise InteropError(f"writing {base}.h5 needs PyTables ({err}): pip install -e '.[interop]'") from None
        table.to_csv(f"{base}.csv")
        return [f"{base}.h5", f"{base}.csv"]
