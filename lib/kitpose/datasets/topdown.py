"""One top-down dataset for every COCO-format keypoint annotation file.

Each sample is one instance box: a ground-truth box (training, or testing with
TEST.USE_GT_BBOX) or a detector box from a COCO detection-results file. The
annotation file is parsed once at construction into flat arrays of instance
records (image file, ids, centre/scale, joints), so epochs never re-parse it.

Records follow the published loaders (docs/published_behaviour.md): images in the
order of the file's ``images`` list, each image's annotations in file order, a
per-image ``bbox_id`` counting the kept instances. An annotation is skipped when it
is a crowd, when its box is empty after clipping (``clean_boxes``) or its ``area``
is not positive, when ``num_keypoints`` is 0, or when every keypoint value is 0.
One whose keypoints are all unlabelled (v = 0) but have x, y is kept (its joints
weigh 0). Unlike the published loaders, a box whose clean width and height are
both 0 (under 1 px: scale 0, a black crop) is skipped too. Every skip and clip is
counted and logged. The box -> centre/scale convention is the metainfo's
``box_convention``.
"""
import logging
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from kitpose.codecs import clean_boxes
from kitpose.jsonio import read_json

from .metainfo import MetainfoError
from .transforms import ProcessRandomSource, TopDownAugmentation, normalize_image, read_image

logger = logging.getLogger(__name__)

__all__ = ["TopDownCocoDataset", "AnnotationError", "load_coco_json"]


class AnnotationError(ValueError):
    """An annotation or detection file does not fit the expected COCO format or the metainfo."""


def load_coco_json(path, expected_layout=""):
    """Parsed JSON of an annotation file; a missing file names the path and the expected layout."""
    hint = f" (expected layout: {expected_layout})" if expected_layout else ""
    return read_json(path, "annotation file", hint, AnnotationError)


def _check_keys(entries, keys, what, path):
    for entry in entries:
        missing = [key for key in keys if key not in entry]
        if missing:
            raise AnnotationError(f"{path}: {what} {entry.get('id', '?')} lacks field(s) {missing}")


def read_coco_keypoint_file(ann_file, image_dir, expected_layout=""):
    """The COCO dict of `ann_file` after the checks every dataset makes: 'images' and 'annotations'
    present, the image folder there, every image with id, file_name, width and height."""
    coco = load_coco_json(ann_file, expected_layout)
    if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
        raise AnnotationError(f"{ann_file}: not a COCO keypoint file (needs 'images' and 'annotations')")
    if not os.path.isdir(image_dir):
        hint = f" (expected layout: {expected_layout})" if expected_layout else ""
        raise FileNotFoundError(f"image folder not found: {image_dir}{hint}")
    _check_keys(coco["images"], ("id", "file_name", "width", "height"), "image", ann_file)
    return coco


def _per_image_ids(image_ids):
    """0, 1, 2, ... within each run of equal image ids (records are grouped by image)."""
    ids = np.zeros(len(image_ids), dtype=np.int64)
    for position in range(1, len(image_ids)):
        if image_ids[position] == image_ids[position - 1]:
            ids[position] = ids[position - 1] + 1
    return ids


class TopDownCocoDataset(ProcessRandomSource, Dataset):
    """Top-down instances of a COCO-format keypoint file (see module docstring), cropped and
    encoded by ``codec`` (a ``kitpose.codecs.HeatmapCodec``).

    ``ds[i] -> (image [3, H, W] float32 normalised, target [K, h, w], target_weight [K, 1], meta dict)``.
    """

    def __init__(self, ann_file, image_dir, meta, codec, is_train, augmentation=None, color_rgb=True, use_joint_weights=False, use_gt_bbox=True,
                 bbox_file="", image_thre=0.0, det_category_ids=None, use_det_score=False,
                 image_set="", expected_layout=""):
        self.ann_file = str(ann_file)
        self.image_dir = str(image_dir)
        self.meta = meta
        self.num_joints = meta.num_keypoints
        self.codec = codec
        self.is_train = bool(is_train)
        self.augmentation = augmentation
        if self.is_train and augmentation is None:
            raise ValueError("TopDownCocoDataset: is_train=True needs a TopDownAugmentation")
        self.color_rgb = color_rgb
        self.use_joint_weights = use_joint_weights
        self.image_set = image_set

        coco = read_coco_keypoint_file(self.ann_file, self.image_dir, expected_layout)
        self._check_categories(coco.get("categories", []))
        self.images = {image["id"]: image for image in coco["images"]}

        categories = coco.get("categories") or [{}]
        if self.is_train or use_gt_bbox:
            records = self._load_gt_records(coco["annotations"], categories[0].get("id"))
        else:
            records = self._load_detection_records(str(bbox_file), image_thre, det_category_ids, use_det_score)
        (self.image_files, self.image_ids, self.ann_ids, self.centers, self.scales, self.scores,
         self.joints) = records
        self.bbox_ids = _per_image_ids(self.image_ids)
        logger.info("%s: %d instances (%s boxes) from %d images", self.ann_file, len(self.image_ids),
                    "ground-truth" if self.is_train or use_gt_bbox else "detector", len(self.images))

    # ------------------------------------------------------------ annotation parsing
    def _check_categories(self, categories):
        for category in categories:
            names = category.get("keypoints")
            if names is not None and len(names) != self.num_joints:
                raise MetainfoError(
                    f"metainfo {self.meta.source or self.meta.name} has {self.num_joints} keypoints but "
                    f"category {category.get('id')} of {self.ann_file} lists {len(names)}")

    def _load_gt_records(self, annotations, first_category):
        _check_keys(annotations, ("id", "image_id"), "annotation", self.ann_file)
        expected = 3 * self.num_joints
        for ann in annotations:
            if "keypoints" in ann and len(ann["keypoints"]) != expected:
                raise AnnotationError(
                    f"{self.ann_file}: annotation id {ann['id']} has {len(ann['keypoints'])} keypoint values, "
                    f"expected {expected} (3 x {self.num_joints} keypoints of metainfo "
                    f"{self.meta.source or self.meta.name})")
            if ann["image_id"] not in self.images:
                raise AnnotationError(f"{self.ann_file}: annotation id {ann['id']} refers to "
                                      f"image_id {ann['image_id']}, which is not in 'images'")
        # the published loaders visit images in file order, then each image's annotations
        image_rank = {image_id: rank for rank, image_id in enumerate(self.images)}
        order = sorted(range(len(annotations)), key=lambda i: image_rank[annotations[i]["image_id"]])
        annotations = [annotations[i] for i in order]
        num = len(annotations)
        loader = self.meta.loader
        crowd = np.array([bool(ann.get("iscrowd", 0)) for ann in annotations], dtype=bool).reshape(num)
        unlabelled = np.array(["bbox" not in ann or "keypoints" not in ann for ann in annotations],
                              dtype=bool).reshape(num)
        other_category = np.array([loader.first_category_only and ann.get("category_id") != first_category
                                   for ann in annotations], dtype=bool).reshape(num)
        boxes = np.array([ann.get("bbox", [0, 0, 0, 0])[:4] for ann in annotations], dtype=np.float64).reshape(num, 4)
        areas = np.array([ann.get("area", box[2] * box[3]) for ann, box in zip(annotations, boxes)],
                         dtype=np.float64).reshape(num)
        keypoints = np.array([ann.get("keypoints", [0] * expected) for ann in annotations],
                             dtype=np.float64).reshape(num, -1, 3)
        no_keypoints = np.array([loader.skip_zero_num_keypoints and ann.get("num_keypoints", 1) == 0
                                 for ann in annotations], dtype=bool).reshape(num)
        all_zero = (keypoints.reshape(num, -1) == 0).all(axis=1) if num else np.zeros(0, dtype=bool)
        sizes = np.array([[self.images[ann["image_id"]]["width"], self.images[ann["image_id"]]["height"]]
                          for ann in annotations], dtype=np.float64).reshape(num, 2)

        convention = loader.box
        clean, inside = clean_boxes(boxes, sizes, convention)
        extent = clean[:, 2:] - (1.0 if convention.size_plus_one else 0.0)
        clipped = ((clean[:, :2] != boxes[:, :2]) | (extent != np.maximum(boxes[:, 2:] - 1.0, 0.0))).any(axis=1)

        # in the published order; each annotation is counted under the first reason that applies
        skips = [("crowd", crowd),
                 ("no 'bbox' or no 'keypoints'", unlabelled),
                 ("an empty box after clipping or area <= 0", ~inside | (areas <= 0)),
                 ("num_keypoints 0", no_keypoints),
                 ("a category other than the first (metainfo loader.first_category_only)", other_category),
                 ("all keypoint values 0", all_zero),
                 # quirk: below 1 px a clean box without the + 1 is 0 x 0 (scale 0); the published loaders kept it
                 ("a box under 1 px (scale 0)", (clean[:, 2:] == 0).all(axis=1))]
        keep = np.ones(num, dtype=bool)
        for reason, mask in skips:
            skipped = keep & mask
            keep &= ~mask
            if skipped.sum():
                logger.warning("%s: skipped %d annotation(s) with %s", self.ann_file, int(skipped.sum()), reason)
        if (clipped & keep).sum():
            logger.info("%s: clipped %d box(es) to their image", self.ann_file, int((clipped & keep).sum()))

        kept = np.flatnonzero(keep)
        centers, scales = self._centers_scales(clean[kept])
        visibility = np.minimum(keypoints[kept, :, 2], 1.0).clip(min=0.0)
        # x, y of unlabelled joints stay as written (they weigh 0), as published
        joints = np.concatenate([keypoints[kept, :, :2], visibility[:, :, None]], axis=2)
        image_ids = np.array([annotations[i]["image_id"] for i in kept], dtype=np.int64)
        ann_ids = np.array([annotations[i]["id"] for i in kept], dtype=np.int64)
        return (self._image_paths(image_ids), image_ids, ann_ids, centers, scales,
                np.ones(len(kept), dtype=np.float32), joints)

    def _load_detection_records(self, bbox_file, image_thre, det_category_ids, use_det_score):
        detections = read_json(bbox_file, "detection file",
                               " (TEST.COCO_BBOX_FILE, used when TEST.USE_GT_BBOX is false)", AnnotationError)
        if not isinstance(detections, list):
            raise AnnotationError(f"{bbox_file}: expected a list of COCO detection results")
        for position, detection in enumerate(detections):
            if not isinstance(detection, dict) or not {"image_id", "bbox", "score"} <= set(detection):
                raise AnnotationError(f"{bbox_file}: detection #{position} needs 'image_id', 'bbox' and 'score', "
                                      f"got {detection!r}")
        if det_category_ids is not None:
            detections = [d for d in detections if d.get("category_id", 1) in det_category_ids]
        num_category = len(detections)
        detections = [d for d in detections if d["score"] >= image_thre]
        missing = sorted({d["image_id"] for d in detections} - set(self.images))
        if missing:
            raise AnnotationError(f"{bbox_file}: detections refer to image ids {missing[:10]} that are not in "
                                  f"{self.ann_file}")
        boxes = np.array([d["bbox"][:4] for d in detections], dtype=np.float64).reshape(-1, 4)
        valid = (boxes[:, 2:] > 0).any(axis=1)
        if (~valid).sum():
            logger.warning("%s: skipped %d detection(s) with w and h <= 0 (scale 0)", bbox_file, int((~valid).sum()))
        logger.info("%s: %d of %d detections have score >= TEST.IMAGE_THRE %.3g", bbox_file,
                    len(detections), num_category, image_thre)
        kept = np.flatnonzero(valid)
        centers, scales = self._centers_scales(boxes[kept])
        image_ids = np.array([detections[i]["image_id"] for i in kept], dtype=np.int64)
        # quirk: the published loaders give detector boxes a box score of 1 (their detection
        # records carry 'score', the test loop reads 'bbox_score'), so rescoring ignores them
        scores = (np.array([detections[i]["score"] for i in kept], dtype=np.float32) if use_det_score
                  else np.ones(len(kept), dtype=np.float32))
        joints = np.zeros((len(kept), self.num_joints, 3), dtype=np.float64)
        return (self._image_paths(image_ids), image_ids, np.full(len(kept), -1, dtype=np.int64),
                centers, scales, scores, joints)

    def _centers_scales(self, boxes):
        centers = np.zeros((len(boxes), 2), dtype=np.float32)
        scales = np.zeros((len(boxes), 2), dtype=np.float32)
        for i, box in enumerate(boxes):
            centers[i], scales[i] = self.codec.center_scale(box, self.meta.box_convention)
        return centers, scales

    def _image_paths(self, image_ids):
        return [os.path.join(self.image_dir, self.images[int(i)]["file_name"]) for i in image_ids]

    # ------------------------------------------------------------ samples
    def __len__(self):
        return len(self.image_ids)

    def __getitem__(self, index):
        image_file = self.image_files[index]
        image = read_image(image_file, self.color_rgb)
        joints = self.joints[index].copy()
        center, scale = self.centers[index].copy(), self.scales[index].copy()
        rotation, flipped = 0.0, False
        if self.is_train:
            joints, center, scale, rotation, flipped = self.augmentation(
                joints, center, scale, image.shape[1], self._generator())
            if flipped:
                image = image[:, ::-1]

        crop = self.codec.crop(image, center, scale, rotation)
        encoded = self.codec.encode(joints, center, scale, rotation)
        target_weight = encoded.target_weight
        if self.use_joint_weights:
            target_weight = target_weight * self.meta.joint_weights[:, None]

        meta = {
            "image_file": image_file,
            "image_id": int(self.image_ids[index]),
            "ann_id": int(self.ann_ids[index]),
            "bbox_id": int(self.bbox_ids[index]),
            "center": center.astype(np.float32),
            "scale": scale.astype(np.float32),
            "rotation": float(rotation),
            "flipped": flipped,
            "score": float(self.scores[index]),
            "joints": encoded.input_joints,
            "heatmap_joints": encoded.heatmap_joints,
            "joints_vis": encoded.input_joints[:, 2].astype(np.float32),
        }
        return (torch.from_numpy(normalize_image(crop)), torch.from_numpy(encoded.target),
                torch.from_numpy(target_weight.astype(np.float32)), meta)


def build_augmentation(cfg, meta, aspect_ratio):
    upper_body_mask = np.zeros(meta.num_keypoints, dtype=bool)
    upper_body_mask[meta.upper_body_ids] = True
    return TopDownAugmentation(
        aspect_ratio=aspect_ratio,
        flip_pairs=meta.flip_pairs,
        upper_body_mask=upper_body_mask,
        scale_factor=cfg.DATASET.SCALE_FACTOR,
        rotation_factor=cfg.DATASET.ROT_FACTOR,
        rotation_prob=cfg.DATASET.ROT_PROB,
        flip=cfg.DATASET.FLIP,
        prob_half_body=cfg.DATASET.PROB_HALF_BODY,
        num_joints_half_body=cfg.DATASET.NUM_JOINTS_HALF_BODY,
    )
