"""The body of tools/infer.py: run a PosePredictor over an input source and write the results.

Writes into the output folder:
- ``results.json``: COCO keypoint results (one object per instance: image_id, category_id,
  keypoints [x1, y1, s1, ...], score) plus ``bbox`` (x, y, w, h, the box it was predicted in),
  ``box_score``, ``file_name`` (``frame`` for videos), ``track_id`` (--track) and ``keypoint_names``;
- the --format files (DeepLabCut h5/csv, SLEAP .slp, NWB, SLEAP csv; `kitpose.interop.predictions_out`);
- a picture per input image (``<stem>.jpg``) or, for a video, ``<stem>.mp4`` with every
  frame, the predicted skeletons drawn (keypoints with maximum > TEST.IN_VIS_THRE).

image_id of an instance: the id of its boxes in the --boxes file when matched; otherwise
the number the file stem spells (``000000000785.jpg`` -> 785), else the input's position
(0-based); for a video the frame number.
"""
import logging
import os
from dataclasses import dataclass, field

import cv2

from kitpose.codecs import xywh_to_corners
from kitpose.jsonio import write_json
from kitpose.progress import progress
from kitpose.vis.draw import draw_instances

logger = logging.getLogger(__name__)

__all__ = ["InferenceSummary", "run_on_source", "RESULTS_NAME"]

RESULTS_NAME = "results.json"
VIDEO_FOURCC = "mp4v"
DEFAULT_FPS = 25.0


@dataclass
class InferenceSummary:
    results_file: str
    num_inputs: int = 0           # images or frames that were read
    num_instances: int = 0
    unreadable: list = field(default_factory=list)   # names of skipped inputs
    outputs: list = field(default_factory=list)      # pictures written, or the video
    frames_written: int = 0
    without_boxes: int = 0        # inputs for which the --boxes file or the detector had no box
    exported: list = field(default_factory=list)     # --format files
    tracks: int = 0               # track ids started (--track)
    box_source_frames: int = 0    # frames where the tracker asked for new boxes
    detector_calls: int = 0
    missing_frames: int = 0       # a video's frames announced by its header but never read
    announced_frames: int = 0

    def short_video(self):
        """The line saying that the video ended early ('' when it did not)."""
        if not self.missing_frames:
            return ""
        read = self.announced_frames - self.missing_frames
        return (f"the video ended after {read} of the {self.announced_frames} frames its header announces: "
                f"{self.missing_frames} frame(s) missing (a truncated or damaged file; some containers "
                f"only estimate the count)")

    def describe(self):
        lines = [f"{self.num_inputs} input(s) processed, {self.num_instances} instance(s) -> {self.results_file}"]
        if self.outputs:
            what = f"{self.frames_written} frames in {self.outputs[0]}" if self.outputs[0].endswith(".mp4") \
                else f"{len(self.outputs)} picture(s) in {os.path.dirname(self.outputs[0])}"
            lines.append(f"drawn: {what}")
        if self.without_boxes:
            lines.append(f"{self.without_boxes} input(s) had no box from the --boxes file or the detector")
        if self.tracks:
            lines.append(f"tracking: {self.tracks} track id(s); new boxes asked for in {self.box_source_frames} "
                         f"of {self.num_inputs} frames")
        if self.detector_calls:
            lines.append(f"detector ran on {self.detector_calls} frame(s)")
        for path in self.exported:
            lines.append(f"wrote {path}")
        lines.append(f"{len(self.unreadable)} unreadable input(s) skipped"
                     + (f": {', '.join(self.unreadable)}" if self.unreadable else ""))
        if self.missing_frames:
            lines.append(self.short_video())
        return "\n".join(lines)


def _default_image_id(path, index):
    stem = os.path.splitext(os.path.basename(path))[0]
    return int(stem) if stem.isdigit() else index


def _records(instances, image_id, names, file_name, frame=None):
    records = []
    track_ids = instances.track_ids if instances.track_ids is not None else [None] * len(instances)
    for keypoints, box, box_score, score, category, track_id in zip(instances.keypoints, instances.boxes,
                                                                     instances.box_scores, instances.scores,
                                                                     instances.category_ids, track_ids):
        record = {
            "image_id": image_id,
            "category_id": int(category),
            "keypoints": [round(float(v), 3) for v in keypoints.reshape(-1)],
            "score": float(score),
            "bbox": [round(float(v), 2) for v in box],
            "box_score": float(box_score),
            "file_name": file_name,
        }
        if frame is not None:
            record["frame"] = frame
        if track_id is not None:
            record["track_id"] = int(track_id)
        record["keypoint_names"] = names
        records.append(record)
    return records


class _PictureWriter:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.used = set()

    def write(self, frame, canvas):
        stem = os.path.splitext(os.path.basename(frame.name))[0]
        name = f"{stem}.jpg" if stem not in self.used else f"{stem}_{frame.index}.jpg"
        self.used.add(stem)
        path = os.path.join(self.out_dir, name)
        if not cv2.imwrite(path, canvas):
            raise OSError(f"cannot write picture {path}")
        return path


class _VideoWriter:
    def __init__(self, path, fps):
        self.path = path
        self.fps = fps if fps > 0 else DEFAULT_FPS
        self.writer = None
        self.frames = 0

    def write(self, canvas):
        if self.writer is None:
            height, width = canvas.shape[:2]
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*VIDEO_FOURCC), self.fps, (width, height))
            if not self.writer.isOpened():
                raise OSError(f"cannot open video writer for {self.path} (codec {VIDEO_FOURCC})")
        self.writer.write(canvas)
        self.frames += 1

    def close(self):
        if self.writer is not None:
            self.writer.release()


def _batches(frames, size):
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _box_lookup(detections, detector, is_video, summary):
    """frame -> (boxes, scores, category_ids, image_id or None) from the --boxes file or the detector;
    all None (the whole image is the box) without either."""
    def boxes_of(frame):
        if detections is not None:
            found = detections.for_frame(frame.index) if is_video else detections.for_image(frame.name)
            if not len(found.boxes):
                summary.without_boxes += 1
            return found.boxes, found.scores, found.category_ids, found.image_id
        if detector is not None:
            boxes, scores, categories = detector(frame.image)
            if not len(boxes):
                summary.without_boxes += 1
            return boxes, scores, categories, None
        return None, None, None, None
    return boxes_of


def _image_id(frame, is_video, given=None):
    if given is not None:
        return given
    return frame.index if is_video else _default_image_id(frame.name, frame.index)


def _is_readable(frame, summary):
    """False (logged and counted) for a frame that could not be read."""
    if frame.image is None:
        logger.warning("skipped unreadable input %s: %s", frame.name, frame.error)
        summary.unreadable.append(frame.name)
        return False
    return True


def _batched(predictor, source, boxes_of, is_video, summary, bar):
    """(frame, image_id, PoseInstances) of every readable frame; the crops of a batch of frames share forward passes."""
    for batch in _batches(source.frames(), predictor.batch_size):
        readable = [frame for frame in batch if _is_readable(frame, summary)]
        requests, image_ids = [], []
        for frame in readable:
            boxes, scores, categories, given_id = boxes_of(frame)
            requests.append((frame.image, boxes, scores, categories))
            image_ids.append(_image_id(frame, is_video, given_id))
        yield from zip(readable, image_ids, predictor.predict_many(requests))
        bar.update(len(batch))


def _tracked(tracker, source, boxes_of, summary, bar):
    """(frame, image_id, PoseInstances with track ids) frame after frame through a PoseTracker."""
    def box_source(frame):
        boxes, scores, categories, _ = boxes_of(frame)
        return None if boxes is None else (boxes, scores, categories)
    tracker.box_source = box_source
    is_video = source.kind == "video"
    for frame in source.frames():
        bar.update(1)
        if not _is_readable(frame, summary):
            continue
        yield frame, _image_id(frame, is_video), tracker.step(frame.image, frame.index, frame)


def _export_collector(formats, predictor, source):
    """A collector of the predictions for the --format files other than coco (results.json), or None."""
    others = [name for name in formats if name != "coco"]
    if not others:
        return None
    from kitpose.interop.predictions_out import PredictionExport  # needs the optional sleap-io group
    return PredictionExport(others, predictor.meta, source, predictor.cfg)


def run_on_source(predictor, source, out_dir, detections=None, draw=True, show_progress=True, detector=None,
                  tracker=None, formats=("coco",)):
    """Predict every frame of `source` (an InputSource); returns an InferenceSummary.

    Boxes come from `detections` (a --boxes file), else `detector` (an AnimalDetector or a
    CentroidDetector: called with a BGR frame, it returns boxes, scores and category ids), else the
    whole image; with `tracker` (a PoseTracker) frames go through it in order and those boxes
    become its box source, used only when it asks. `formats`: results.json is always written; 'dlc', 'slp', 'nwb', 'csv'
    add files (kitpose.interop.predictions_out)."""
    os.makedirs(out_dir, exist_ok=True)
    meta, cfg = predictor.meta, predictor.cfg
    summary = InferenceSummary(os.path.join(out_dir, RESULTS_NAME))
    is_video = source.kind == "video"
    pictures = _PictureWriter(out_dir)
    video = None
    if draw and is_video:
        stem = os.path.splitext(os.path.basename(source.paths[0]))[0]
        video = _VideoWriter(os.path.join(out_dir, f"{stem}.mp4"), source.fps)
    records = []
    exports = _export_collector(formats, predictor, source)
    bar = progress(total=source.total or None, desc="infer", unit="frame" if is_video else "image",
                   disable=not show_progress, leave=True)
    boxes_of = _box_lookup(detections, detector, is_video, summary)
    predicted = (_tracked(tracker, source, boxes_of, summary, bar) if tracker is not None
                 else _batched(predictor, source, boxes_of, is_video, summary, bar))
    try:
        for frame, image_id, instances in predicted:
            if is_video:
                records += _records(instances, image_id, meta.keypoints, source.paths[0], frame=frame.index)
            else:
                records += _records(instances, image_id, meta.keypoints, frame.name)
            if exports is not None:
                exports.add(frame, instances)
            summary.num_inputs += 1
            summary.num_instances += len(instances)
            if draw:
                canvas = draw_instances(frame.image, instances.keypoints, meta.skeleton,
                                        cfg.TEST.IN_VIS_THRE, xywh_to_corners(instances.boxes))
                if video is not None:
                    video.write(canvas)
                else:
                    summary.outputs.append(pictures.write(frame, canvas))
    finally:
        bar.close()
        if video is not None:
            video.close()
            if video.frames:
                summary.outputs.append(video.path)
                summary.frames_written = video.frames
    summary.missing_frames, summary.announced_frames = source.missing_frames(), source.total
    write_json(summary.results_file, records)
    if exports is not None:
        summary.exported = exports.write(out_dir)
    if tracker is not None:
        summary.tracks = tracker.next_id
        summary.box_source_frames = tracker.box_source_frames
    if detector is not None:
        summary.detector_calls = detector.calls
    if detections is not None and detections.unmatched_images():
        logger.info("%s: boxes of %d image(s) matched no input", detections.source, detections.unmatched_images())
    return summary
