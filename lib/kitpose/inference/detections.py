"""Boxes for `tools/infer.py --boxes FILE`: which boxes belong to which input image.

Two file layouts are read:

1. COCO detection results (what detectors write, e.g. HRNet's person-box files): a list of
   ``{"image_id": ..., "bbox": [x, y, w, h], "score": s, "category_id": c}``
   (score defaults to 1, category_id to 1). An entry may also carry ``"file_name"``.
2. A COCO dataset file (``{"images": [...], "annotations": [...]}``, e.g. ground truth):
   every annotation's ``bbox`` is a box (score 1), its image found through ``images``.

Matching an input image to a box's image:
- by file name when the box has one (layout 2 always, layout 1 with ``file_name``): the
  input path ends with that name (``AAOYRUDX/AAOYRUDX_f000027.jpg`` matches
  ``.../AAOYRUDX/AAOYRUDX_f000027.jpg``) or, failing that, the base names are equal;
- otherwise by ``image_id``: a string id equals the input's base name or its stem
  (``"dog.jpg"`` or ``"dog"``); an integer id equals the number the stem spells
  (COCO's ``000000000785.jpg`` is image 785);
- video frames: ``image_id`` is the frame number (0-based).

Boxes with w or h <= 0, with score below the threshold or of other categories (when
categories are given) are dropped.
"""
import logging
import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from kitpose.jsonio import read_json

logger = logging.getLogger(__name__)

__all__ = ["BoxFileError", "ImageBoxes", "Detections", "load_detections"]


class BoxFileError(ValueError):
    """A --boxes file is missing fields or is not one of the two accepted layouts."""


@dataclass
class ImageBoxes:
    """Boxes of one image: boxes [N,4] (x, y, w, h), scores [N], category_ids [N], image_id (as in the file)."""
    image_id: object
    boxes: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray


def _stem_number(stem):
    return int(stem) if stem.isdigit() else None


class Detections:
    """Boxes grouped by image, with the matching rules of the module docstring."""

    def __init__(self, entries, source):
        self.source = source
        self._by_file = defaultdict(list)
        self._by_id = defaultdict(list)
        for entry in entries:
            if entry["file_name"] is not None:
                self._by_file[entry["file_name"].replace("\\", "/")].append(entry)
            else:
                self._by_id[entry["image_id"]].append(entry)
        self._matched = set()

    def __len__(self):
        return sum(map(len, self._by_file.values())) + sum(map(len, self._by_id.values()))

    def _file_key(self, path):
        path = os.path.normpath(path).replace("\\", "/")
        for name in self._by_file:
            if path == name or path.endswith("/" + name.lstrip("/")):
                return name
        base = os.path.basename(path)
        return next((name for name in self._by_file if os.path.basename(name) == base), None)

    def _id_key(self, path):
        base = os.path.basename(path)
        stem = os.path.splitext(base)[0]
        for key in (base, stem, _stem_number(stem)):
            if key is not None and key in self._by_id:
                return key
        return None

    def for_image(self, path):
        """ImageBoxes of an image file (empty when nothing matches)."""
        name = self._file_key(path) if self._by_file else None
        if name is not None:
            return self._collect(("file", name), self._by_file[name])
        key = self._id_key(path) if self._by_id else None
        if key is not None:
            return self._collect(("id", key), self._by_id[key])
        return self._collect(None, [], image_id=None)

    def for_frame(self, frame_index):
        """ImageBoxes of video frame `frame_index` (image_id = frame number)."""
        entries = self._by_id.get(frame_index, [])
        return self._collect(("id", frame_index) if entries else None, entries, image_id=frame_index)

    def _collect(self, key, entries, image_id=None):
        if key is not None:
            self._matched.add(key)
        if entries and image_id is None:
            image_id = entries[0]["image_id"]
        return ImageBoxes(
            image_id,
            np.array([e["bbox"] for e in entries], dtype=np.float64).reshape(-1, 4),
            np.array([e["score"] for e in entries], dtype=np.float32),
            np.array([e["category_id"] for e in entries], dtype=np.int64))

    def unmatched_images(self):
        """How many of the file's images no input used (said at the end of a run)."""
        keys = {("file", name) for name in self._by_file} | {("id", key) for key in self._by_id}
        return len(keys - self._matched)


def _number(value, what, source, position):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BoxFileError(f"{source}: entry {position}: {what} must be a number, got {value!r}")
    return value


def _entry(raw, source, position, file_name=None):
    if not isinstance(raw, dict) or "bbox" not in raw:
        raise BoxFileError(f"{source}: entry {position} has no 'bbox' (expected {{'image_id', 'bbox': [x, y, w, h], "
                           f"'score'}})")
    bbox = raw["bbox"]
    if not isinstance(bbox, (list, tuple)) or len(bbox) < 4:
        raise BoxFileError(f"{source}: entry {position}: 'bbox' must be [x, y, w, h], got {bbox!r}")
    if "image_id" not in raw and file_name is None and "file_name" not in raw:
        raise BoxFileError(f"{source}: entry {position} has neither 'image_id' nor 'file_name'")
    return {
        "image_id": raw.get("image_id"),
        "file_name": file_name if file_name is not None else raw.get("file_name"),
        "bbox": [float(_number(v, "bbox value", source, position)) for v in bbox[:4]],
        "score": float(_number(raw.get("score", 1.0), "score", source, position)),
        "category_id": int(_number(raw.get("category_id", 1), "category_id", source, position)),
    }


def load_detections(path, score_threshold=0.0, category_ids=None):
    """Detections from a --boxes file (either layout of the module docstring)."""
    path = os.fspath(path)
    data = read_json(path, "--boxes file", error_type=BoxFileError)
    if isinstance(data, list):
        entries = [_entry(raw, path, i) for i, raw in enumerate(data)]
    elif isinstance(data, dict) and "annotations" in data:
        images = data.get("images")
        if not isinstance(images, list):
            raise BoxFileError(f"{path}: a COCO dataset file needs 'images' (id, file_name) to place its boxes")
        file_names = {image["id"]: image["file_name"] for image in images}
        entries = []
        for i, raw in enumerate(data["annotations"]):
            if raw.get("image_id") not in file_names:
                raise BoxFileError(f"{path}: annotation {raw.get('id', i)} refers to image_id "
                                   f"{raw.get('image_id')!r}, which is not in 'images'")
            entries.append(_entry(raw, path, i, file_name=file_names[raw["image_id"]]))
    else:
        raise BoxFileError(f"{path}: expected a list of detections or a COCO file with 'annotations'")
    total = len(entries)
    valid = [e for e in entries if e["bbox"][2] > 0 and e["bbox"][3] > 0]
    if len(valid) < total:
        logger.warning("%s: skipped %d box(es) with w or h <= 0", path, total - len(valid))
    kept = [e for e in valid if e["score"] >= score_threshold
            and (category_ids is None or e["category_id"] in category_ids)]
    logger.info("%s: %d of %d boxes kept (score >= %g%s)", path, len(kept), total, score_threshold,
                f", category in {sorted(category_ids)}" if category_ids is not None else "")
    return Detections(kept, path)
