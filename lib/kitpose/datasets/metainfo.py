"""Dataset facts as data: keypoint names, flip pairs, body halves, skeleton, weights, OKS sigmas.

A metainfo file is a JSON object with the fields of the entries of
``reference/dataset_meta.json``::

    {"name": "my_animal",                  # optional: falls back to "dataset_name", then the file stem
     "keypoints": ["nose", "l_eye", ...],  # K names
     "num_keypoints": K,                    # optional, must equal len(keypoints)
     "flip_pairs": [[1, 2], ...],           # left/right ids swapped by a horizontal flip
     "upper_body_ids": [...], "lower_body_ids": [...],   # half-body augmentation
     "skeleton": [[0, 1], ...],             # limbs, for drawing
     "joint_weights": [1.0, ...],           # K loss weights (LOSS.USE_DIFFERENT_JOINTS_WEIGHT)
     "sigmas": [0.025, ...],                # K OKS sigmas
     "layout": {"annotations": "annotations/{set}.json", "images": "images"},  # optional, see below
     "loader": {...},                       # optional: the published loader's conventions
     "metric": "oks",                       # optional: 'oks' (COCO AP, default) or 'pck'
     "pck_rows": {"Shoulder": ["l_shoulder", "r_shoulder"], ...}}  # optional: PCK table rows

``layout`` (see ``DatasetLayout``) is where the dataset's release keeps its files under
DATASET.ROOT: the annotation file and the image folder, ``{set}`` standing for DATASET.TRAIN_SET
or DATASET.TEST_SET; the built-in files have one, a custom dataset names its files in the config.

``loader`` (see ``LoaderConventions``; every field optional, defaults = the AP-10K loader's,
except ``unique_box_ids``) holds how the dataset's published loader reads boxes and
annotations and writes results, so that each dataset behaves as its own published loader.
``joint_weights`` are the weights that loader applies: AP-10K's and COCO's loaders carry a
1.2 / 1.5 array but never apply it, so theirs are all 1. Other fields (e.g. "notes") are ignored.

Built-in names ('ap10k', 'animalpose', 'ak', 'coco') resolve to ``datasets/meta/<name>.json``, package
data read with importlib.resources (so in any install, not only a checkout).
Every id is 0-based. Anything inconsistent raises ``MetainfoError`` naming the file and the field.
"""
import json
import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from kitpose.codecs import BoxConvention
from kitpose.jsonio import read_json

__all__ = ["DatasetMeta", "DatasetLayout", "LoaderConventions", "MetainfoError", "load_metainfo", "BUILTIN_METAINFO",
           "builtin_metainfo_path"]

BUILTIN_METAINFO = ("ap10k", "animalpose", "ak", "coco")


class MetainfoError(ValueError):
    """A metainfo file, or its agreement with annotations, is inconsistent."""


RESULTS_CATEGORIES = ("annotation", "first")
METRICS = ("oks", "pck")


@dataclass(frozen=True)
class LoaderConventions:
    """How a dataset's published loader reads annotations and writes results (metainfo ``loader``).

    box_size_plus_one, box_center_minus_one: ``kitpose.codecs.BoxConvention``.
    skip_zero_num_keypoints: skip annotations whose ``num_keypoints`` is 0 (the COCO loader
    never reads the field). first_category_only: keep only annotations of the file's first
    category (COCO's person). results_category: 'annotation' (each result carries its ground
    truth's category; the file's only category for detector boxes) or 'first' (every result the
    first category's id, as the AnimalPose and COCO writers do). unique_box_ids: evaluation keeps
    the first of predictions repeating an image's box id (the AP-10K evaluation).
    pck_prediction_offset: added to predictions before PCK (the AnimalKingdom evaluation adds 1,
    meant as 0- to 1-based, to predictions compared with 0-based ground truth).
    detection_categories: the categories of detector boxes (TEST.COCO_BBOX_FILE) tested; empty: all
    (COCO's loader tests person boxes only).
    """
    box_size_plus_one: bool = False
    box_center_minus_one: bool = False
    skip_zero_num_keypoints: bool = True
    first_category_only: bool = False
    results_category: str = "annotation"
    unique_box_ids: bool = False
    pck_prediction_offset: float = 0.0
    detection_categories: tuple = ()

    @property
    def box(self):
        return BoxConvention(size_plus_one=self.box_size_plus_one, center_minus_one=self.box_center_minus_one)


@dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset's release keeps its files (metainfo ``layout``), relative to DATASET.ROOT:
    ``annotations`` the annotation file, ``images`` the folder its ``file_name`` entries are joined
    to ('' for ROOT itself); ``{set}`` stands for the split (DATASET.TRAIN_SET / TEST_SET)."""
    annotations: str
    images: str


@dataclass(frozen=True, eq=False)  # numpy fields: compare field by field, not with ==
class DatasetMeta:
    name: str
    keypoints: list
    num_keypoints: int
    flip_pairs: list
    upper_body_ids: list
    lower_body_ids: list
    skeleton: list
    joint_weights: np.ndarray
    sigmas: np.ndarray
    loader: LoaderConventions = LoaderConventions()
    layout: DatasetLayout = None  # None: the config names the files (DATASET.DATASET 'custom')
    metric: str = "oks"       # the dataset's evaluation: 'oks' (COCO keypoint AP) or 'pck'
    pck_rows: dict = None     # PCK table rows: name -> keypoint names (None: one row per keypoint)
    source: str = ""          # the file it was read from (named in error messages)

    @property
    def box_convention(self):
        return self.loader.box


def _builtin_metainfo(name):
    return resources.files("kitpose.datasets") / "meta" / f"{name}.json"


def builtin_metainfo_path(name):
    """Where the built-in metainfo `name` is installed (a file path in an ordinary, unzipped install)."""
    return str(_builtin_metainfo(name))


def _id_pairs(data, field, num_keypoints, source):
    value = data[field]
    pairs = np.asarray(value) if isinstance(value, list) else None
    if pairs is None or (pairs.size and (pairs.ndim != 2 or pairs.shape[1] != 2)):
        raise MetainfoError(f"{source}: field '{field}' must be a list of [a, b] id pairs, got {value!r}")
    pairs = pairs.reshape(-1, 2)
    if pairs.size and not np.issubdtype(pairs.dtype, np.integer):
        raise MetainfoError(f"{source}: field '{field}' must hold integer ids, got {value!r}")
    bad = pairs[((pairs < 0) | (pairs >= num_keypoints)).any(axis=1)]
    if len(bad):
        raise MetainfoError(f"{source}: field '{field}' has ids out of range 0..{num_keypoints - 1} "
                            f"(num_keypoints {num_keypoints}): {bad.tolist()}")
    if (pairs[:, 0] == pairs[:, 1]).any():
        raise MetainfoError(f"{source}: field '{field}' pairs a keypoint with itself: "
                            f"{pairs[pairs[:, 0] == pairs[:, 1]].tolist()}")
    return pairs.tolist()


def _id_list(data, field, num_keypoints, source):
    value = data[field]
    ids = np.asarray(value) if isinstance(value, list) else None
    if ids is None or ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise MetainfoError(f"{source}: field '{field}' must be a list of integer ids, got {value!r}")
    bad = ids[(ids < 0) | (ids >= num_keypoints)]
    if len(bad):
        raise MetainfoError(f"{source}: field '{field}' has ids out of range 0..{num_keypoints - 1} "
                            f"(num_keypoints {num_keypoints}): {bad.tolist()}")
    if len(np.unique(ids)) != len(ids):
        raise MetainfoError(f"{source}: field '{field}' repeats ids: {value!r}")
    return ids.tolist()


def _per_keypoint(data, field, num_keypoints, source, positive):
    value = data[field]
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise MetainfoError(f"{source}: field '{field}' must be a list of numbers, got {value!r}") from None
    if array.shape != (num_keypoints,):
        raise MetainfoError(f"{source}: field '{field}' has {array.size} values, "
                            f"expected one per keypoint ({num_keypoints})")
    out_of_range = (array <= 0) if positive else (array < 0)
    if not np.isfinite(array).all() or out_of_range.any():
        raise MetainfoError(f"{source}: field '{field}' must be {'positive' if positive else 'non-negative'}, "
                            f"got {value!r}")
    return array


def _metric(data, source):
    metric = data.get("metric", "oks")
    if metric not in METRICS:
        raise MetainfoError(f"{source}: field 'metric' must be one of {list(METRICS)}, got {metric!r}")
    return metric


def _loader_conventions(data, source):
    value = data.get("loader", {})
    defaults = LoaderConventions()
    if not isinstance(value, dict):
        raise MetainfoError(f"{source}: field 'loader' must be an object, got {value!r}")
    unknown = sorted(set(value) - set(defaults.__dataclass_fields__))
    if unknown:
        raise MetainfoError(f"{source}: field 'loader' has unknown entries {unknown}; known: "
                            f"{sorted(defaults.__dataclass_fields__)}")
    entries = {}
    for name, entry in value.items():
        default = getattr(defaults, name)
        if isinstance(default, bool):
            valid, kind = isinstance(entry, bool), "bool"
        elif isinstance(default, float):
            valid, kind = isinstance(entry, (int, float)) and not isinstance(entry, bool), "float"
        elif isinstance(default, tuple):
            valid = isinstance(entry, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in entry)
            kind = "list of integer ids"
        else:
            valid, kind = isinstance(entry, str), "str"
        if not valid:
            raise MetainfoError(f"{source}: field 'loader.{name}' must be a {kind}, got {entry!r}")
        if isinstance(default, float):
            entry = float(entry)
        elif isinstance(default, tuple):
            entry = tuple(entry)
        entries[name] = entry
    conventions = LoaderConventions(**entries)
    if conventions.results_category not in RESULTS_CATEGORIES:
        raise MetainfoError(f"{source}: field 'loader.results_category' must be one of {list(RESULTS_CATEGORIES)}, "
                            f"got {conventions.results_category!r}")
    return conventions


def _layout(data, source):
    value = data.get("layout")
    if value is None:
        return None
    fields = ("annotations", "images")
    if (not isinstance(value, dict) or sorted(value) != sorted(fields)
            or not all(isinstance(value[field], str) for field in fields) or not value["annotations"]):
        raise MetainfoError(f"{source}: field 'layout' must be an object with the strings 'annotations' (the "
                            f"annotation file under DATASET.ROOT, {{set}} for the split) and 'images' (the image "
                            f"folder, '' for ROOT itself), got {value!r}")
    return DatasetLayout(value["annotations"], value["images"])


def _pck_rows(data, keypoints, source):
    rows = data.get("pck_rows")
    if rows is None:
        return None
    if not isinstance(rows, dict) or not all(isinstance(names, list) and names for names in rows.values()):
        raise MetainfoError(f"{source}: field 'pck_rows' must map row names to non-empty lists of keypoint names")
    unknown = sorted({name for names in rows.values() for name in names} - set(keypoints))
    if unknown:
        raise MetainfoError(f"{source}: field 'pck_rows' names keypoints {unknown} that 'keypoints' does not list")
    return {row: list(names) for row, names in rows.items()}


def metainfo_from_dict(data, source):
    """Validate a metainfo mapping read from ``source`` and build a DatasetMeta."""
    if not isinstance(data, dict):
        raise MetainfoError(f"{source}: top level must be a JSON object of metainfo fields")
    required = ("keypoints", "flip_pairs", "upper_body_ids", "lower_body_ids", "skeleton", "joint_weights", "sigmas")
    missing = [field for field in required if field not in data]
    if missing:
        raise MetainfoError(f"{source}: missing field(s) {missing}")
    keypoints = data["keypoints"]
    if not isinstance(keypoints, list) or not keypoints or not all(isinstance(k, str) for k in keypoints):
        raise MetainfoError(f"{source}: field 'keypoints' must be a non-empty list of names, got {keypoints!r}")
    num_keypoints = len(keypoints)
    if "num_keypoints" in data and data["num_keypoints"] != num_keypoints:
        raise MetainfoError(f"{source}: field 'num_keypoints' is {data['num_keypoints']!r} but "
                            f"'keypoints' lists {num_keypoints} names")
    flip_pairs = _id_pairs(data, "flip_pairs", num_keypoints, source)
    flipped_ids = np.asarray(flip_pairs, dtype=np.int64).reshape(-1)
    if len(np.unique(flipped_ids)) != len(flipped_ids):
        raise MetainfoError(f"{source}: field 'flip_pairs' uses a keypoint in more than one pair: {flip_pairs}")
    name = data.get("name") or data.get("dataset_name") or os.path.splitext(os.path.basename(source))[0]
    return DatasetMeta(
        name=str(name),
        keypoints=list(keypoints),
        num_keypoints=num_keypoints,
        flip_pairs=flip_pairs,
        upper_body_ids=_id_list(data, "upper_body_ids", num_keypoints, source),
        lower_body_ids=_id_list(data, "lower_body_ids", num_keypoints, source),
        skeleton=_id_pairs(data, "skeleton", num_keypoints, source),
        joint_weights=_per_keypoint(data, "joint_weights", num_keypoints, source, positive=False),
        sigmas=_per_keypoint(data, "sigmas", num_keypoints, source, positive=True),
        loader=_loader_conventions(data, source),
        layout=_layout(data, source),
        metric=_metric(data, source),
        pck_rows=_pck_rows(data, keypoints, source),
        source=source,
    )


def load_metainfo(name_or_path):
    """DatasetMeta from a built-in name ('ap10k', 'animalpose', 'ak', 'coco') or a JSON file path."""
    if name_or_path in BUILTIN_METAINFO:
        resource = _builtin_metainfo(name_or_path)
        return metainfo_from_dict(json.loads(resource.read_text()), str(resource))
    path = str(name_or_path)
    data = read_json(path, "metainfo file", f" (built-in names: {', '.join(BUILTIN_METAINFO)})", MetainfoError)
    return metainfo_from_dict(data, path)
