"""Labelled data from DeepLabCut, SLEAP and the other formats sleap-io reads -> a training set here.

`import_labels(source, out_dir)` (`tools/import_labels.py`) reads the source with sleap-io:

- a DeepLabCut project (its folder or ``config.yaml``: every ``labeled-data/<video>/CollectedData_*.csv``),
- a SLEAP ``.slp`` (user-labelled instances; frames from the labelled videos or embedded images),
- any other labels file sleap-io reads (``format`` as sleap-io names it, e.g. 'coco', 'labelstudio',
  'nwb', 'jabs', 'ultralytics', 'analysis_h5'; by file extension when not given),

and writes into ``out_dir``::

    images/<video>/<frame image>          copied (or linked) labelled images; frames of videos as PNG
    annotations/train.json, val.json      COCO keypoint files
    meta.json                             metainfo: keypoint names, limbs, flip pairs, OKS sigmas
    <name>.yaml                           config for tools/train.py and tools/test.py
    <name>_centroid.yaml                  the detection stage (centroid_hrnet on whole frames), trained the
                                          same way; tools/infer.py --centroid-cfg / --centroid-checkpoint
    import_report.json                    every skipped frame, instance and keypoint, by name

Everything is written into a hidden folder beside ``out_dir`` and renamed into place at the end,
so a failed import leaves no partial set and an earlier import stays whole until the new one is
complete. A non-empty ``out_dir`` is refused unless `overwrite`; then it must hold only what an
earlier import wrote (its report, meta.json, YAML, annotations and their images), which is
replaced (hand edits to meta.json included) and never mixed with the new images.

Conversion rules (nothing is guessed; everything left out is counted, named in the report and
summarised in the log):

- keypoints keep the source's pixel coordinates (x right, y down from the image's top-left
  corner) unchanged; a labelled keypoint is COCO visibility 2, an unlabelled one 0 (0, 0, 0);
  a labelled keypoint outside [0, width] x [0, height] of its image is dropped (visibility 0);
- only user-labelled instances are used (predicted instances in a .slp are not labels), unless
  `use_predictions` takes a frame's predicted instances where it has no user-labelled one (a
  model's output used as labels: counted in the report); a frame without any is an unlabelled
  frame and skipped; `frame_range` (start, stop[, step]) keeps only those video frame numbers; an instance with fewer than two labelled
  keypoints inside its image has no box (`kitpose.codecs.keypoint_box`) and is skipped;
- boxes: DeepLabCut and SLEAP labels have none, so every box is made from the labelled
  keypoints (margin `box_margin` x the longer side on each side, clipped to the image); COCO
  ``area`` = box w x h (the OKS scale);
- an image that is missing or cannot be decoded is skipped. Exception: in a DeepLabCut
  project a listed image that is missing is an error, because sleap-io then attaches the labels
  of the following images to the wrong pictures;
- keypoint names and limbs come from the source's skeleton; a DeepLabCut project's keypoints keep
  the order of its config.yaml ``bodyparts``, and a CollectedData csv whose bodyparts differ from
  that list is an error naming them. A skeleton without limbs is
  reported (pictures then show points only); `skeleton` adds limbs ("a-b,b-c"). No skeleton
  (no keypoint names) is an error;
- flip pairs come from the source skeleton's symmetries (SLEAP) and from names that differ only by
  side, however spelt (``leftear``/``rightear``, ``L_Eye``/``R_Eye``, ``ear_left``/``ear_right``,
  ``LEye``/``REye``, ``wingL``/``wingR``, ``forelegL4``/``forelegR4``), logged, and editable in
  meta.json or given as `flip_pairs` ("a:b,c:d", or "none"). Without pairs, flip augmentation and
  flip testing are off in the YAML (a mirrored animal would be labelled with the wrong sides);
- rotation: where the training animals face every way (the direction along their longest keypoint
  axis, e.g. nose -> tail, leaves no gap over 90 degrees: top views), the YAML rotates training
  crops over the whole circle (DATASET.ROT_FACTOR 180, the published ROT_PROB 0.6) and its header
  says why; otherwise the template's rotation stays;
- OKS sigmas: `sigma` for every keypoint (default 0.05, a mid value of COCO's and AP-10K's
  0.025-0.107); edit meta.json when you know better. Half-body ids stay empty (half-body
  augmentation off);
- split: `val_source` (a second labels file, e.g. SLEAP's ``labels.val.slp``) is the validation
  set; otherwise `val_fraction` of the labelled frames, drawn with `seed`. Frames of one video
  are alike, so a random frame split measures less than generalisation to a new video.
"""
import csv
import logging
import math
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import resources

import cv2
import numpy as np
import yaml

from kitpose.codecs.keypoint_box import DEFAULT_BOX_MARGIN, keypoint_box
from kitpose.datasets import metainfo_from_dict
from kitpose.datasets.keypoint_names import mirror_pairs
from kitpose.jsonio import read_json, write_json

from . import InteropError, require_sleap_io
from .finetune import FINE_TUNE_TRAIN_SAMPLES, plan_fine_tuning

logger = logging.getLogger(__name__)

__all__ = ["ImportReport", "import_labels", "load_labels_source", "infer_flip_pairs", "parse_pairs",
           "DEFAULT_SIGMA", "DEFAULT_VAL_FRACTION", "DEFAULT_TRAIN_SAMPLES", "BUILTIN_TEMPLATE", "builtin_template"]

DEFAULT_SIGMA = 0.05
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_TRAIN_SAMPLES = 10000
BUILTIN_TEMPLATE = "kitpose_small_cpu.yaml"   # package data in kitpose/interop/templates/
CENTROID_TEMPLATE = "centroid_small_cpu.yaml"  # the detection stage's template, beside it
CENTROID_MAX_INPUT = 256      # the letterboxed frame's longer side fits this (network input pixels) ...
CENTROID_MIN_ANIMAL = 32      # ... unless an animal (its box's longer side) would span fewer input pixels
CENTROID_BOX_PERCENTILE = 90  # CENTROID.BOX_SIZE: this percentile of the labelled boxes' longer side
CENTROID_INPUT_STRIDE = 16    # the template's HRNet (3 branches) needs input sides divisible by this
CENTROID_SAMPLE_SHARE = 0.25  # a whole frame costs about four 128x128 crops: a quarter of the pose stage's samples
WARMUP_SHARE = 0.03     # of the schedule, in the written YAML
FULL_CIRCLE_GAP_DEG = 90.0   # animals seen facing every way (no larger gap): rotate training crops over the circle
FULL_CIRCLE_ROT_PROB = 0.6   # ... this share of them (published; lower error on new frames than 1.0, docs/benchmarks.md)
NAMES_IN_LOG = 10        # a log line names at most this many items; the report names all


@dataclass
class ImportReport:
    source: str
    out_dir: str
    keypoints: list = field(default_factory=list)
    skeleton: list = field(default_factory=list)
    flip_pairs: list = field(default_factory=list)
    frames_in_source: int = 0
    frames_outside_range: int = 0                              # left out by `frame_range`
    predicted_instances_used: int = 0                          # with `use_predictions`
    train_images: int = 0
    val_images: int = 0
    train_instances: int = 0
    val_instances: int = 0
    unlabelled_frames: list = field(default_factory=list)      # frame names
    unreadable_images: list = field(default_factory=list)      # "name: reason"
    outside_keypoints: list = field(default_factory=list)      # "frame instance k name (x, y) outside w x h"
    instances_without_box: list = field(default_factory=list)  # "frame instance k: n labelled keypoint(s)"
    no_skeleton_limbs: bool = False
    orientation_axis: list = field(default_factory=list)   # [from, to] keypoint names of the direction measured
    orientation_gap_deg: float = None                       # largest angle no training animal faces
    full_circle_rotation: bool = False                      # gap < FULL_CIRCLE_GAP_DEG: rotation over the circle
    yaml: str = ""
    centroid_yaml: str = ""
    meta: str = ""

    def summary(self):
        lines = [f"{self.source}: {self.frames_in_source} labelled frame(s) read"
                 + (f" ({self.frames_outside_range} outside --frames left out)" if self.frames_outside_range else "")
                 + (f"; {self.predicted_instances_used} predicted instance(s) used as labels"
                    if self.predicted_instances_used else ""),
                 f"train: {self.train_images} image(s), {self.train_instances} instance(s); "
                 f"val: {self.val_images} image(s), {self.val_instances} instance(s)",
                 f"keypoints ({len(self.keypoints)}): {', '.join(self.keypoints)}",
                 f"flip pairs: {_pair_text(self.keypoints, self.flip_pairs, ':') or 'none'}",
                 f"limbs: {_pair_text(self.keypoints, self.skeleton, '-') or 'none'}"]
        for what, items in (("unlabelled frame(s) skipped", self.unlabelled_frames),
                            ("unreadable image(s) skipped", self.unreadable_images),
                            ("labelled keypoint(s) outside their image dropped", self.outside_keypoints),
                            ("instance(s) with < 2 labelled keypoints skipped (no box)", self.instances_without_box)):
            lines.append(f"{len(items)} {what}" + (f": {_first(items)}" if items else ""))
        if self.meta:
            lines.append(f"wrote {self.meta} and {self.yaml} (details: import_report.json)")
        if self.centroid_yaml:
            lines.append(f"wrote {self.centroid_yaml}: the detection stage (whole frames -> one box per animal)")
        return "\n".join(lines)


def _first(items):
    shown = "; ".join(str(item) for item in items[:NAMES_IN_LOG])
    return shown + (f"; ... ({len(items) - NAMES_IN_LOG} more)" if len(items) > NAMES_IN_LOG else "")


def _pair_text(names, pairs, joiner):
    return ", ".join(f"{names[a]}{joiner}{names[b]}" for a, b in pairs)


def builtin_template():
    """The YAML the written config starts from unless `template` is given (importlib.resources: found in
    any install of the package, not through a checkout)."""
    return resources.files("kitpose.interop") / "templates" / BUILTIN_TEMPLATE


# ---------------------------------------------------------------- reading the source
def _dlc_config(source):
    if os.path.isdir(source) and os.path.isfile(os.path.join(source, "config.yaml")):
        return os.path.join(source, "config.yaml")
    if os.path.basename(source) == "config.yaml" and os.path.isfile(source):
        return source
    return None


def _dlc_csv_rows(csv_path):
    """(bodyparts in column order, image paths as written) of a DeepLabCut CollectedData csv. The image
    is the first one to three columns of a data row (newer DeepLabCut versions split
    'labeled-data/<video>/<image>' into three)."""
    bodyparts, images = [], []
    with open(csv_path, newline="") as f:
        for row in csv.reader(f):
            if row and row[0] == "bodyparts":
                bodyparts = list(dict.fromkeys(cell for cell in row[1:] if cell))
            elif row and row[0] not in ("scorer", "individuals", "coords"):
                images.append("/".join(row[:3]) if row[0] == "labeled-data" and len(row) > 2 else row[0])
    return bodyparts, images


def _check_dlc_project(config_path):
    """InteropError naming every CollectedData csv whose bodyparts differ from config.yaml's list (sleap-io
    would then order the keypoints by name), and every image the csv files list but that is missing."""
    project = os.path.dirname(os.path.abspath(config_path))
    config_parts = _dlc_bodyparts(config_path)
    missing, differing, listed = [], [], 0
    labelled = os.path.join(project, "labeled-data")
    for folder in sorted(os.listdir(labelled)) if os.path.isdir(labelled) else []:
        for name in sorted(os.listdir(os.path.join(labelled, folder))):
            if not name.endswith(".csv"):
                continue
            csv_path = os.path.join(labelled, folder, name)
            csv_parts, csv_images = _dlc_csv_rows(csv_path)
            if config_parts is not None and set(csv_parts) != set(config_parts):
                only_csv = [part for part in csv_parts if part not in config_parts]
                only_config = [part for part in config_parts if part not in csv_parts]
                notes = ([f"not in config.yaml: {', '.join(only_csv)}"] if only_csv else []) + \
                    ([f"missing from the csv: {', '.join(only_config)}"] if only_config else [])
                differing.append(f"{csv_path}: {'; '.join(notes)}")
            for image in csv_images:
                listed += 1
                candidates = (os.path.join(project, image), os.path.join(os.path.dirname(csv_path), os.path.basename(image)))
                if not any(os.path.isfile(path) for path in candidates):
                    missing.append(f"{image} (listed in {csv_path})")
    if differing:
        raise InteropError(
            f"{config_path}: the bodyparts of {len(differing)} labelled csv file(s) differ from config.yaml's "
            f"bodyparts ({', '.join(config_parts)}): {_first(differing)}. The keypoints take config.yaml's "
            "order: list the same bodyparts in config.yaml and in every CollectedData csv")
    if missing:
        raise InteropError(
            f"{config_path}: {len(missing)} of {listed} labelled image(s) are missing: {_first(missing)}. sleap-io "
            "would attach the labels of the images after a missing one to the wrong pictures: restore the images "
            "or delete their rows from the CollectedData csv")


def load_labels_source(source, fmt=None):
    """sleap-io Labels of a DeepLabCut project, a .slp, or any file sleap-io reads (see module docstring)."""
    sio = require_sleap_io()
    source = os.fspath(source)
    if not os.path.exists(source):
        raise InteropError(f"{source}: no such file or folder")
    config = _dlc_config(source) if fmt in (None, "dlc", "dlc_project") else None
    try:
        if config is not None:
            _check_dlc_project(config)
            return sio.load_dlc_project(config)
        if os.path.isdir(source) and fmt is None:
            raise InteropError(f"{source}: a folder without config.yaml; give a DeepLabCut project folder, "
                               "a labels file, or --source-format")
        return sio.load_file(source, format=fmt) if fmt else sio.load_file(source)
    except InteropError:
        raise
    except Exception as err:  # sleap-io raises many kinds; the message must name the file
        raise InteropError(f"{source}: sleap-io cannot read it{f' as {fmt}' if fmt else ''}: "
                           f"{type(err).__name__}: {err}") from None


# ---------------------------------------------------------------- skeleton facts
def infer_flip_pairs(names, symmetries=()):
    """[[i, j], ...] of left/right keypoints: from names that differ only by side (`mirror_pairs`:
    leftear/rightear, L_Eye/R_Eye, paw_left/paw_right, wingL/wingR, forelegL4/forelegR4) and from the
    source skeleton's `symmetries` ([name, name] pairs, e.g. SLEAP's), which win where the two disagree."""
    index = {name: i for i, name in enumerate(names)}
    pairs = [sorted([index[a], index[b]]) for a, b in symmetries if a in index and b in index and a != b]
    paired = {k for pair in pairs for k in pair}
    pairs += [pair for pair in mirror_pairs(names) if not paired & set(pair)]
    return sorted(pairs)


def _symmetries(labels):
    """[name, name] pairs of the source skeleton's symmetries (SLEAP skeletons carry them)."""
    return [[node.name for node in symmetry.nodes] for symmetry in getattr(labels.skeletons[0], "symmetries", [])
            if len(symmetry.nodes) == 2]


def orientation_gap(frames, flip_pairs, min_instances=8):
    """((i, j), largest gap in degrees) of the directions from keypoint i to keypoint j over the labelled
    instances, or None with fewer than `min_instances` usable ones. The axis (i, j) is the pair of
    keypoints, not a left/right pair, labelled together in most instances and farthest apart (for a
    quadruped from above, nose to tail). A gap under 90 degrees means the animals face every way."""
    stacks = np.stack([keypoints for _, _, _, kept in frames for keypoints, _, _ in kept]) if frames else None
    if stacks is None or len(stacks) < min_instances:
        return None
    labelled = stacks[:, :, 2] > 0
    mirrored = {tuple(pair) for pair in flip_pairs}
    best = None
    for i in range(stacks.shape[1]):
        for j in range(i + 1, stacks.shape[1]):
            both = labelled[:, i] & labelled[:, j]
            if (i, j) in mirrored or both.sum() < max(min_instances, 0.5 * len(stacks)):
                continue
            distance = np.median(np.linalg.norm(stacks[both, j, :2] - stacks[both, i, :2], axis=1))
            if best is None or distance > best[0]:
                best = (distance, i, j, both)
    if best is None:
        return None
    _, i, j, both = best
    direction = stacks[both, j, :2] - stacks[both, i, :2]
    angles = np.sort(np.degrees(np.arctan2(direction[:, 1], direction[:, 0])) % 360.0)
    gaps = np.diff(np.concatenate([angles, angles[:1] + 360.0]))
    return (i, j), float(gaps.max())


def parse_pairs(text, names, joiner, what):
    """'a:b,c:d' (names) -> [[ia, ib], ...]; 'none' -> []; an unknown name is an InteropError."""
    if text.strip().lower() == "none":
        return []
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        ends = [end.strip() for end in item.split(joiner)]
        if len(ends) != 2:
            raise InteropError(f"{what} {item!r}: expected two keypoint names joined by '{joiner}'")
        unknown = [end for end in ends if end not in names]
        if unknown:
            raise InteropError(f"{what} {item!r}: unknown keypoint(s) {unknown}; keypoints: {', '.join(names)}")
        if ends[0] == ends[1]:
            raise InteropError(f"{what} {item!r}: a keypoint paired with itself")
        pairs.append([names.index(ends[0]), names.index(ends[1])])
    return pairs


def _dlc_bodyparts(source):
    """The bodyparts list of a DeepLabCut project's config.yaml (the project folder or the file), or None."""
    config = _dlc_config(os.fspath(source))
    if config is None:
        return None
    with open(config) as f:
        parts = (yaml.safe_load(f) or {}).get("bodyparts")
    return [str(p) for p in parts] if isinstance(parts, list) else None


def _skeleton_facts(labels, source):
    """(keypoint names, limbs [[a, b], ...], order): `order` maps the written keypoints to the skeleton's
    nodes (a DeepLabCut project keeps its config's bodyparts order; sleap-io sorts them by name)."""
    if not labels.skeletons or not labels.skeletons[0].nodes:
        raise InteropError(f"{source}: no skeleton (no keypoint names); sleap-io found none in the file")
    if len(labels.skeletons) > 1:
        raise InteropError(f"{source}: {len(labels.skeletons)} skeletons "
                           f"({', '.join(s.name or '?' for s in labels.skeletons)}); import one at a time")
    nodes = list(labels.skeletons[0].node_names)
    bodyparts = _dlc_bodyparts(source)
    if bodyparts is not None and sorted(bodyparts) != sorted(nodes):
        raise InteropError(f"{source}: sleap-io read the keypoints {', '.join(nodes)}, config.yaml lists the "
                           f"bodyparts {', '.join(bodyparts)}; they must be the same names")
    names = nodes if bodyparts is None else bodyparts
    order = [nodes.index(name) for name in names]
    limbs = [[names.index(edge.source.name), names.index(edge.destination.name)]
             for edge in labels.skeletons[0].edges]
    return names, limbs, order


# ---------------------------------------------------------------- frames
def _video_folder_names(videos):
    """A unique folder name under images/ per video: the image folder's or video file's name."""
    names, used = [], set()
    for video in videos:
        filename = video.filename[0] if isinstance(video.filename, list) else video.filename
        base = (os.path.basename(os.path.dirname(filename)) if isinstance(video.filename, list)
                else os.path.splitext(os.path.basename(filename))[0]) or "video"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names.append(name)
    return names


def _frame_image(video, frame_idx):
    """(source path or None, BGR uint8 image or None, reason) of one labelled frame."""
    if isinstance(video.filename, list):
        if not 0 <= frame_idx < len(video.filename):
            return None, None, f"frame {frame_idx} is not among the video's {len(video.filename)} images"
        path = video.filename[frame_idx]
        if not os.path.isfile(path):
            return path, None, "file not found"
        image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        return path, image, "" if image is not None else "cannot be decoded as an image"
    try:
        pixels = np.asarray(video[frame_idx])
    except Exception as err:  # the video backends raise many kinds
        return None, None, f"cannot read frame {frame_idx} of {video.filename}: {type(err).__name__}: {err}"
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    image = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR if pixels.ndim == 2 else cv2.COLOR_RGB2BGR)
    return None, image, ""


def _frame_name(video, folder, frame_idx):
    if isinstance(video.filename, list) and 0 <= frame_idx < len(video.filename):
        return f"{folder}/{os.path.basename(video.filename[frame_idx])}"
    return f"{folder}/frame_{frame_idx:06d}.png"


def _collect(labels, names, order, box_margin, report, split, use_predictions=False, frame_range=None):
    """[(file name, source path, image, [(keypoints [K,3], track name)])] of the usable frames of `labels`
    (`use_predictions`, `frame_range`: see the module docstring)."""
    kept_frames = range(*frame_range) if frame_range else None
    folders = _video_folder_names(labels.videos)
    folder_of = {id(video): folder for video, folder in zip(labels.videos, folders)}
    frames = []
    for lf in sorted(labels.labeled_frames, key=lambda f: (folder_of[id(f.video)], f.frame_idx)):
        if kept_frames is not None and lf.frame_idx not in kept_frames:
            report.frames_outside_range += 1
            continue
        report.frames_in_source += 1
        file_name = _frame_name(lf.video, folder_of[id(lf.video)], lf.frame_idx)
        instances = [inst for inst in lf.user_instances if np.isfinite(inst.numpy()).any()]
        if not instances and use_predictions:
            instances = [inst for inst in lf.predicted_instances if np.isfinite(inst.numpy()).any()]
            report.predicted_instances_used += len(instances)
        if not instances:
            report.unlabelled_frames.append(f"{split}{file_name}")
            continue
        path, image, reason = _frame_image(lf.video, lf.frame_idx)
        if image is None:
            report.unreadable_images.append(f"{file_name}: {reason}")
            continue
        height, width = image.shape[:2]
        kept = []
        for number, instance in enumerate(instances):
            xy = np.asarray(instance.numpy(), dtype=np.float64)[order]
            labelled = np.isfinite(xy).all(axis=1)
            inside = labelled & (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] <= width) & (xy[:, 1] <= height)
            for k in np.flatnonzero(labelled & ~inside):
                report.outside_keypoints.append(f"{file_name} instance {number} {names[k]} "
                                                f"({xy[k, 0]:.1f}, {xy[k, 1]:.1f}) outside {width}x{height}")
            box = keypoint_box(xy, inside, box_margin, (width, height))
            if box is None:
                report.instances_without_box.append(f"{file_name} instance {number}: {int(inside.sum())} labelled "
                                                    "keypoint(s) inside the image")
                continue
            keypoints = np.zeros((len(names), 3), dtype=np.float64)
            keypoints[inside, :2] = xy[inside]
            keypoints[inside, 2] = 2
            kept.append((keypoints, box, instance.track.name if instance.track is not None else None))
        if kept:
            frames.append((file_name, path, image, kept))
    return frames


# ---------------------------------------------------------------- writing
def _write_image(out_dir, file_name, source_path, image, mode):
    target = os.path.join(out_dir, "images", file_name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        os.remove(target)
    if source_path is not None and mode == "link":
        os.symlink(os.path.abspath(source_path), target)
    elif source_path is not None:
        shutil.copyfile(source_path, target)
    elif not cv2.imwrite(target, image):
        raise InteropError(f"cannot write {target}")


def _coco(frames, names, limbs, category_name, first_ids):
    image_id, annotation_id = first_ids
    images, annotations = [], []
    for file_name, _, image, instances in frames:
        height, width = image.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "width": int(width), "height": int(height)})
        for keypoints, box, track in instances:
            annotation = {"id": annotation_id, "image_id": image_id, "category_id": 1,
                          "keypoints": [round(float(v), 6) for v in keypoints.reshape(-1)],
                          "num_keypoints": int((keypoints[:, 2] > 0).sum()),
                          "bbox": [round(float(v), 6) for v in box], "area": round(float(box[2] * box[3]), 6),
                          "iscrowd": 0}
            if track is not None:
                annotation["track"] = track
            annotations.append(annotation)
            annotation_id += 1
        image_id += 1
    category = {"id": 1, "name": category_name, "supercategory": "animal", "keypoints": names,
                "skeleton": [[a + 1, b + 1] for a, b in limbs]}   # COCO numbers keypoints from 1
    return {"images": images, "annotations": annotations, "categories": [category]}, (image_id, annotation_id)


def _split(frames, val_fraction, seed):
    if not 0 <= val_fraction < 1:
        raise InteropError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    count = len(frames)
    num_val = min(count - 1, max(1, round(val_fraction * count))) if val_fraction > 0 and count > 1 else 0
    val = set(np.random.default_rng(seed).permutation(count)[:num_val].tolist())
    return [f for i, f in enumerate(frames) if i not in val], [f for i, f in enumerate(frames) if i in val]


class _ConfigDumper(yaml.SafeDumper):
    """Mappings as blocks, lists inline ([128, 128]), as the experiment YAMLs are written."""


_ConfigDumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))


def _read_template(template):
    """(config mapping, how the YAML header names it) of `template`, a YAML path, or the built-in one when None."""
    if template is None:
        text, label = builtin_template().read_text(), f"{BUILTIN_TEMPLATE} (built in)"
    else:
        label = os.fspath(template)
        try:
            with open(template) as f:
                text = f.read()
        except OSError as err:
            raise InteropError(f"--template {template}: {err.strerror}") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InteropError(f"--template {label}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise InteropError(f"--template {label}: expected a mapping of config keys, got {type(config).__name__}")
    return config, label


def _set_schedule(config, samples, per_epoch):
    """TRAIN.END_EPOCH for about `samples` training samples of `per_epoch` each, warm-up WARMUP_SHARE of
    it; returns the epochs."""
    epochs = max(1, math.ceil(samples / max(per_epoch, 1)))
    config.setdefault("TRAIN", {}).update({"END_EPOCH": epochs, "WARMUP_EPOCHS": round(WARMUP_SHARE * epochs, 3)})
    return epochs


def _rotation_note(report):
    """(full-circle rotation or not, the YAML header line that says why)."""
    if report.orientation_gap_deg is None:
        return False, "# DATASET.ROT_FACTOR: the template's (too few labelled instances to measure orientations).\n"
    direction = f"{report.orientation_axis[0]} -> {report.orientation_axis[1]}"
    if report.full_circle_rotation:
        return True, (f"# DATASET.ROT_FACTOR 180: the training animals face every way (the {direction} "
                      f"direction leaves no gap over {FULL_CIRCLE_GAP_DEG:.0f} degrees, largest "
                      f"{report.orientation_gap_deg:.0f}), as in top views.\n"
                      f"# ROT_PROB {FULL_CIRCLE_ROT_PROB}, the published share: with every crop rotated (1.0) the "
                      f"median error on new frames was higher (docs/benchmarks.md).\n")
    return False, (f"# DATASET.ROT_FACTOR: the template's; the training animals' {direction} directions leave a "
                   f"{report.orientation_gap_deg:.0f}-degree gap, so they do not face every way.\n")


def _imported_dataset(out_dir):
    """The DATASET keys of both written YAMLs: the import's folder `out_dir` and its files."""
    return {"DATASET": "custom", "ROOT": out_dir.rstrip("/") + "/", "META": "meta.json",
            "TRAIN_ANN": "annotations/train.json", "TEST_ANN": "annotations/val.json",
            "IMAGE_DIR": "images", "TRAIN_SET": "train", "TEST_SET": "val"}


def _train_line(out_dir, path):
    """The header line that says how to train the YAML `path` once it is in `out_dir`."""
    final_path = os.path.join(out_dir, os.path.basename(path))
    return f"# kitpose-train --cfg {final_path}   (in a checkout: python tools/train.py --cfg ...)\n"


def _write_config(path, header, config):
    with open(path, "w") as f:
        f.write(header + yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False, width=100))


def _write_yaml(path, template, name, out_dir, num_keypoints, flip, train_instances, train_samples, source,
                fine_tuning=None, rotation=(False, "")):
    """Write the training YAML to `path`; `out_dir` is where the import will finally be (DATASET.ROOT).
    `fine_tuning`: a FineTunePlan whose keys and header lines the YAML gets; `rotation`: (full circle,
    header line) from `_rotation_note`."""
    config, template_label = template
    config.setdefault("DATASET", {}).update(_imported_dataset(out_dir), FLIP=bool(flip))
    model = config.setdefault("MODEL", {})
    model["NUM_JOINTS"] = num_keypoints
    model["NUM_BP"] = min(int(model.get("NUM_BP", 4)), num_keypoints // 2)
    config.setdefault("TEST", {})["FLIP_TEST"] = bool(flip)
    epochs = _set_schedule(config, train_samples, train_instances)
    header = (f"# Written by tools/import_labels.py from {source} on {time.strftime('%Y-%m-%d %H:%M')},\n"
              f"# from the template {template_label}: DATASET points at this folder, MODEL.NUM_JOINTS "
              f"{num_keypoints}, MODEL.NUM_BP {model['NUM_BP']},\n"
              f"# TRAIN.END_EPOCH {epochs} = about {train_samples} samples of the {train_instances} training "
              f"instances (warmup {WARMUP_SHARE:.0%} of it), flip {'on' if flip else 'off (no left/right pairs)'}.\n"
              + _train_line(out_dir, path))
    full_circle, rotation_line = rotation
    if full_circle:
        config["DATASET"].update({"ROT_FACTOR": 180, "ROT_PROB": FULL_CIRCLE_ROT_PROB})
    header += rotation_line
    if fine_tuning is not None:
        fine_tuning.apply(config)
        header += fine_tuning.header()
    _write_config(path, header, config)


def centroid_geometry(frame_sizes, box_sides):
    """The centroid stage's sizes from the training frames' (w, h) and the labelled boxes' longer sides:
    a dict of MODEL.IMAGE_SIZE, HEATMAP_SIZE, SIGMA, CENTROID.MIN_DISTANCE, BOX_SIZE and the scale."""
    width, height = np.max(np.asarray(frame_sizes, np.float64).reshape(-1, 2), axis=0)
    side = float(np.percentile(np.asarray(box_sides, np.float64), CENTROID_BOX_PERCENTILE))
    scale = min(1.0, CENTROID_MAX_INPUT / max(width, height))
    scale = max(scale, min(1.0, CENTROID_MIN_ANIMAL / max(side, 1.0)))
    stride = CENTROID_INPUT_STRIDE
    image_size = [int(math.ceil(width * scale / stride) * stride), int(math.ceil(height * scale / stride) * stride)]
    animal_heatmap_px = side * scale / 4
    return {"IMAGE_SIZE": image_size, "HEATMAP_SIZE": [image_size[0] // 4, image_size[1] // 4],
            # a Gaussian about an eighth of the animal, at least 1.5 heatmap pixels
            "SIGMA": round(float(np.clip(animal_heatmap_px / 8, 1.5, 4.0)), 2),
            # two animals' anchors lie at least about a quarter of an animal apart, even when they touch
            "MIN_DISTANCE": max(1, int(animal_heatmap_px / 4)),
            "BOX_SIZE": [round(side, 1), round(side, 1)], "scale": scale}


def _write_centroid_yaml(path, out_dir, train, train_samples, source):
    """Write the centroid stage's YAML (template CENTROID_TEMPLATE) for the imported training frames."""
    config = yaml.safe_load((resources.files("kitpose.interop") / "templates" / CENTROID_TEMPLATE).read_text())
    sizes = [(image.shape[1], image.shape[0]) for _, _, image, _ in train]
    sides = [max(box[2], box[3]) for _, _, _, instances in train for _, box, _ in instances]
    geometry = centroid_geometry(sizes, sides)
    config["DATASET"].update(_imported_dataset(out_dir))
    config["MODEL"].update({key: geometry[key] for key in ("IMAGE_SIZE", "HEATMAP_SIZE", "SIGMA")})
    config["MODEL"]["PATCH_SIZE"] = list(geometry["HEATMAP_SIZE"])
    config["CENTROID"].update({"MIN_DISTANCE": geometry["MIN_DISTANCE"], "BOX_SIZE": geometry["BOX_SIZE"]})
    samples = max(1, round(train_samples * CENTROID_SAMPLE_SHARE))
    epochs = _set_schedule(config, samples, len(train))
    largest = f"{max(w for w, _ in sizes)}x{max(h for _, h in sizes)}"
    header = (f"# Written by tools/import_labels.py from {source} on {time.strftime('%Y-%m-%d %H:%M')}, from the "
              f"template {CENTROID_TEMPLATE} (built in):\n"
              f"# the centroid detection stage. MODEL.IMAGE_SIZE {geometry['IMAGE_SIZE']}: the largest training "
              f"frame ({largest}) scaled by {geometry['scale']:.3f};\n"
              f"# CENTROID.BOX_SIZE: the {CENTROID_BOX_PERCENTILE}th percentile of the {len(sides)} labelled "
              f"boxes' longer side; TRAIN.END_EPOCH {epochs} = about {samples} frames of the {len(train)}.\n"
              + _train_line(out_dir, path))
    _write_config(path, header, config)


# ---------------------------------------------------------------- the output folder
def _files_under(folder):
    """Relative paths ('/'-joined) of the files and symbolic links under `folder`."""
    found = []
    for root, dirs, files in os.walk(folder):
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        for entry in files + links:
            found.append(os.path.relpath(os.path.join(root, entry), folder).replace(os.sep, "/"))
    return sorted(found)


def _import_outputs(folder):
    """Relative paths of the files the import in `folder` wrote: import_report.json, meta.json, its
    YAML, the annotation files and the images they list."""
    report = read_json(os.path.join(folder, "import_report.json"), "import report", error_type=InteropError)
    outputs = {"import_report.json", "meta.json", "annotations/train.json", "annotations/val.json"}
    for key in ("yaml", "centroid_yaml"):
        if isinstance(report, dict) and report.get(key):
            outputs.add(os.path.basename(report[key]))
    for split in ("train", "val"):
        annotations = os.path.join(folder, "annotations", f"{split}.json")
        data = read_json(annotations, "annotation file", error_type=InteropError) if os.path.isfile(annotations) else {}
        listed = data.get("images") if isinstance(data, dict) else None
        outputs.update(f"images/{image['file_name']}" for image in listed or []
                       if isinstance(image, dict) and isinstance(image.get("file_name"), str))
    return outputs


def _check_out_dir(out_dir, overwrite):
    """Refuse an `out_dir` that is not a folder, or not empty without `overwrite`, or that holds anything
    an earlier import did not write (with `overwrite`, that earlier import is what gets replaced)."""
    if not os.path.lexists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise InteropError(f"--out {out_dir}: exists and is not a folder")
    if not os.listdir(out_dir):
        return
    present = _files_under(out_dir)
    holds_import = os.path.isfile(os.path.join(out_dir, "import_report.json"))
    if not overwrite:
        held = ("an earlier import (its meta.json, with any hand edits, YAML, annotations and images)"
                if holds_import else f"{len(present)} file(s): {_first(present)}")
        raise InteropError(f"--out {out_dir}: not empty, holds {held}; give --overwrite to replace an earlier "
                           "import, or choose another --out")
    if not holds_import:
        raise InteropError(f"--out {out_dir}: --overwrite replaces only an earlier import, and this folder holds "
                           f"no import_report.json but {len(present)} file(s): {_first(present)}")
    foreign = sorted(set(present) - _import_outputs(out_dir))
    if foreign:
        raise InteropError(f"--out {out_dir}: --overwrite would replace the earlier import, but the folder also "
                           f"holds {len(foreign)} file(s) the import did not write: {_first(foreign)}; move them "
                           "away or choose another --out")


def _remove_import(folder):
    """Delete what the import in `folder` wrote, then its folders once empty; anything else stays (logged)."""
    outputs = _import_outputs(folder)
    for relative in _files_under(folder):
        if relative in outputs:
            os.remove(os.path.join(folder, relative))
    for root, _, _ in os.walk(folder, topdown=False):
        if not os.listdir(root):
            os.rmdir(root)
    if os.path.isdir(folder):
        logger.warning("%s: kept, it holds files the earlier import did not write: %s", folder,
                       _first(_files_under(folder)))


def _hidden_sibling(target, what):
    """An unused path '.<name>.<what>-<random>' beside `target`."""
    while True:
        path = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{what}-{secrets.token_hex(4)}")
        if not os.path.lexists(path):
            return path


def _move_into_place(staging, out_dir):
    """Rename the finished import `staging` to `out_dir`; an earlier import there is renamed aside first
    (so one whole import is in place at every moment), then deleted."""
    target = os.path.normpath(out_dir)
    replaced = None
    if os.path.isdir(target) and os.listdir(target):
        replaced = _hidden_sibling(target, "replaced")
        os.rename(target, replaced)
    elif os.path.isdir(target):
        os.rmdir(target)
    os.rename(staging, target)
    if replaced is not None:
        _remove_import(replaced)


def _write_in_place(out_dir, overwrite, write):
    """write(folder) into a new hidden folder beside `out_dir`, then that folder renamed to `out_dir`
    (`_move_into_place`); on any failure the new folder is deleted and `out_dir` is as it was."""
    parent, base = os.path.split(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    unfinished = re.compile(rf"\.{re.escape(base)}\.(importing|replaced)-[0-9a-f]+")
    left = sorted(entry for entry in os.listdir(parent) if unfinished.fullmatch(entry))
    if left:
        logger.warning("%s: %s left by an interrupted import of %s; delete them once no import runs there",
                       parent, ", ".join(left), base)
    staging = _hidden_sibling(os.path.abspath(out_dir), "importing")
    os.mkdir(staging)   # with the user's umask, as out_dir would have been made
    try:
        write(staging)
        _check_out_dir(out_dir, overwrite)   # again: the folder may have changed while the import ran
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def import_labels(source, out_dir, *, name=None, fmt=None, val_source=None, val_fraction=DEFAULT_VAL_FRACTION,
                  seed=0, images="copy", flip_pairs=None, skeleton=None, sigma=DEFAULT_SIGMA,
                  box_margin=DEFAULT_BOX_MARGIN, template=None, train_samples=None,
                  overwrite=False, init_from=None, init_config=None, init_meta=None, use_predictions=False,
                  frame_range=None):
    """Convert `source` into a training set in `out_dir` (see module docstring); returns the ImportReport.
    `template`: the YAML the written config starts from (None: the built-in `builtin_template()`).
    `init_from`: a trained checkpoint the YAML fine-tunes (`kitpose.interop.finetune`); its architecture
    comes from `init_config` (else the checkpoint's own config, else the template), its keypoint names
    from `init_meta` (else the template's dataset). `train_samples` sets TRAIN.END_EPOCH (None:
    DEFAULT_TRAIN_SAMPLES, or FINE_TUNE_TRAIN_SAMPLES with `init_from`)."""
    if images not in ("copy", "link"):
        raise InteropError(f"images must be 'copy' or 'link', got {images!r}")
    if sigma <= 0:
        raise InteropError(f"--sigma must be > 0, got {sigma}")
    source, out_dir = os.fspath(source), os.fspath(out_dir)
    _check_out_dir(out_dir, overwrite)
    template_path, template = template, _read_template(template)
    labels = load_labels_source(source, fmt)
    names, limbs, order = _skeleton_facts(labels, source)
    name = name or os.path.basename(os.path.normpath(out_dir))
    report = ImportReport(source=str(source), out_dir=str(out_dir), keypoints=names)
    frames = _collect(labels, names, order, box_margin, report, "train: " if val_source else "", use_predictions,
                      frame_range)
    if val_source:
        val_labels = load_labels_source(val_source, fmt)
        val_names, _, val_order = _skeleton_facts(val_labels, val_source)
        if sorted(val_names) != sorted(names):
            raise InteropError(f"--val-source {val_source}: keypoints {val_names} differ from {source}'s {names}")
        val_order = [val_order[val_names.index(n)] for n in names]
        train, val = frames, _collect(val_labels, names, val_order, box_margin, report, "val: ", use_predictions,
                                      frame_range)
    else:
        train, val = _split(frames, val_fraction, seed)
    if not train:
        raise InteropError(f"{source}: no usable labelled frame left for training; nothing written\n"
                           f"{report.summary()}")

    report.skeleton = limbs if skeleton is None else parse_pairs(skeleton, names, "-", "--skeleton")
    report.no_skeleton_limbs = not report.skeleton
    report.flip_pairs = (infer_flip_pairs(names, _symmetries(labels)) if flip_pairs is None
                         else parse_pairs(flip_pairs, names, ":", "--flip-pairs"))
    used = {p for pair in report.flip_pairs for p in pair}
    if len(used) != 2 * len(report.flip_pairs):
        raise InteropError(f"--flip-pairs: a keypoint is in more than one pair: "
                           f"{_pair_text(names, report.flip_pairs, ':')}")

    spread = orientation_gap(train, report.flip_pairs)
    if spread is not None:
        (axis_from, axis_to), gap = spread
        report.orientation_axis, report.orientation_gap_deg = [names[axis_from], names[axis_to]], round(gap, 1)
        report.full_circle_rotation = gap < FULL_CIRCLE_GAP_DEG

    fine_tuning = None
    train_samples = train_samples or (FINE_TUNE_TRAIN_SAMPLES if init_from else DEFAULT_TRAIN_SAMPLES)
    if init_from:
        # a --template given names the checkpoint's architecture as --init-config does
        fine_tuning = plan_fine_tuning(init_from, names, template, init_config or template_path, init_meta)
        template = (fine_tuning.template, fine_tuning.template_label)

    _write_in_place(out_dir, overwrite, lambda staging: _write_import(
        staging, out_dir, report, labels, name, train, val, images, flip_pairs, sigma, template, train_samples,
        fine_tuning))
    if report.no_skeleton_limbs:
        logger.warning("%s: the skeleton has no limbs (pictures show points only); add them with --skeleton "
                       "'a-b,b-c' or in %s", source, report.meta)
    if not report.flip_pairs:
        logger.warning("%s: no left/right keypoint pairs found in %s: flip augmentation and flip test are off; "
                       "give --flip-pairs 'a:b,...' if some keypoints have sides", source, ", ".join(names))
    return report


def _write_import(staging, out_dir, report, labels, name, train, val, images, flip_pairs, sigma, template,
                  train_samples, fine_tuning):
    """Write images, annotations, meta.json, the YAML and import_report.json into `staging`; the paths
    in the YAML and the report are those in `out_dir`, where `staging` is renamed to."""
    names = report.keypoints
    os.makedirs(os.path.join(staging, "annotations"))
    for file_name, path, image, _ in train + val:
        _write_image(staging, file_name, path, image, images)
    category = labels.skeletons[0].name or name
    train_json, next_ids = _coco(train, names, report.skeleton, category, (1, 1))
    val_json, _ = _coco(val, names, report.skeleton, category, next_ids)
    for split, data in (("train", train_json), ("val", val_json)):
        write_json(os.path.join(staging, "annotations", f"{split}.json"), data)
    report.train_images, report.val_images = len(train_json["images"]), len(val_json["images"])
    report.train_instances, report.val_instances = len(train_json["annotations"]), len(val_json["annotations"])

    report.meta = os.path.join(out_dir, "meta.json")
    meta = {"name": name, "keypoints": names, "flip_pairs": report.flip_pairs, "upper_body_ids": [],
            "lower_body_ids": [], "skeleton": report.skeleton, "joint_weights": [1.0] * len(names),
            "sigmas": [float(sigma)] * len(names),
            "notes": (f"imported from {report.source} by tools/import_labels.py; flip pairs "
                      f"{'inferred from left/right names' if flip_pairs is None else 'given'}; sigmas "
                      f"{sigma} for every keypoint (a default, not measured); upper/lower body ids empty "
                      "(half-body augmentation off)")}
    metainfo_from_dict(meta, report.meta)  # what tools/train.py will read must hold together
    write_json(os.path.join(staging, "meta.json"), meta, indent=1)
    report.yaml = os.path.join(out_dir, f"{name}.yaml")
    _write_yaml(os.path.join(staging, f"{name}.yaml"), template, name, out_dir, len(names), report.flip_pairs,
                report.train_instances, train_samples, report.source, fine_tuning, _rotation_note(report))
    report.centroid_yaml = os.path.join(out_dir, f"{name}_centroid.yaml")
    _write_centroid_yaml(os.path.join(staging, f"{name}_centroid.yaml"), out_dir, train, train_samples,
                         report.source)
    write_json(os.path.join(staging, "import_report.json"), asdict(report), indent=1)
