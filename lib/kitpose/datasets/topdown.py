"""One top-down dataset for every COCO-format keypoint annotation file.

Each sample is one instance box: a ground-truth box (training, or testing with
TEST.USE_GT_BBOX) or a detector box from a COCO detection-results file. The
annotation file is parsed once at construction into flat arrays of instance
records (image file, ids, centre/scale, joints), so epochs never re-parse it.

Ground-truth boxes follow HRNet's clean-box convention: clipped to the image
(x1 = max(0, x), x2 = min(W - 1, x1 + max(0, w - 1)), same for y); boxes with
w or h <= 0, area <= 0 or nothing left after clipping are skipped; crowd
annotations and instances with no visible keypoint are skipped too. Every skip
and clip is counted and logged.
"""
import logging
import os

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from kitpose.codecs import (affine_transform_points, box_to_center_scale, generate_gaussian_targets,
                            get_affine_transform)
from kitpose.jsonio import read_json

from .metainfo import MetainfoError
from .transforms import TopDownAugmentation, flip_matrix, normalize_image, read_image

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


class TopDownCocoDataset(Dataset):
    """Top-down instances of a COCO-format keypoint file (see module docstring).

    ``ds[i] -> (image [3, H, W] float32 normalised, target [K, h, w], target_weight [K, 1], meta dict)``.
    """

    def __init__(self, ann_file, image_dir, meta, image_size, heatmap_size, sigma, is_train,
                 augmentation=None, color_rgb=True, use_joint_weights=False, use_gt_bbox=True,
                 bbox_file="", image_thre=0.0, det_category_ids=None, metric="oks", test_cfg=None,
                 image_set="", expected_layout=""):
        self.ann_file = str(ann_file)
        self.image_dir = str(image_dir)
        self.meta = meta
        self.num_joints = meta.num_keypoints
        self.image_size = np.asarray(image_size, dtype=np.int64)
        self.heatmap_size = np.asarray(heatmap_size, dtype=np.int64)
        self.aspect_ratio = float(self.image_size[0]) / float(self.image_size[1])
        self.sigma = sigma
        self.is_train = bool(is_train)
        self.augmentation = augmentation
        if self.is_train and augmentation is None:
            raise ValueError("TopDownCocoDataset: is_train=True needs a TopDownAugmentation")
        self.color_rgb = color_rgb
        self.use_joint_weights = use_joint_weights
        self.metric = metric
        self.test_cfg = test_cfg
        self.image_set = image_set
        self._rng = None
        self._rng_pid = None

        coco = load_coco_json(self.ann_file, expected_layout)
        if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
            raise AnnotationError(f"{self.ann_file}: not a COCO keypoint file (needs 'images' and 'annotations')")
        if not os.path.isdir(self.image_dir):
            hint = f" (expected layout: {expected_layout})" if expected_layout else ""
            raise FileNotFoundError(f"image folder not found: {self.image_dir}{hint}")
        self._check_categories(coco.get("categories", []))
        _check_keys(coco["images"], ("id", "file_name", "width", "height"), "image", self.ann_file)
        self.images = {image["id"]: image for image in coco["images"]}

        if self.is_train or use_gt_bbox:
            records = self._load_gt_records(coco["annotations"])
        else:
            records = self._load_detection_records(str(bbox_file), image_thre, det_category_ids)
        self.image_files, self.image_ids, self.ann_ids, self.centers, self.scales, self.scores, self.joints = records
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

    def _load_gt_records(self, annotations):
        _check_keys(annotations, ("id", "image_id", "bbox", "keypoints"), "annotation", self.ann_file)
        expected = 3 * self.num_joints
        for ann in annotations:
            if len(ann["keypoints"]) != expected:
                raise AnnotationError(
                    f"{self.ann_file}: annotation id {ann['id']} has {len(ann['keypoints'])} keypoint values, "
                    f"expected {expected} (3 x {self.num_joints} keypoints of metainfo "
                    f"{self.meta.source or self.meta.name})")
            if ann["image_id"] not in self.images:
                raise AnnotationError(f"{self.ann_file}: annotation id {ann['id']} refers to "
                                      f"image_id {ann['image_id']}, which is not in 'images'")
        crowd = np.array([bool(ann.get("iscrowd", 0)) for ann in annotations], dtype=bool)
        annotations = [ann for ann, is_crowd in zip(annotations, crowd) if not is_crowd]
        num = len(annotations)
        boxes = np.array([ann["bbox"][:4] for ann in annotations], dtype=np.float64).reshape(num, 4)
        areas = np.array([ann.get("area", ann["bbox"][2] * ann["bbox"][3]) for ann in annotations], dtype=np.float64)
        keypoints = np.array([ann["keypoints"] for ann in annotations], dtype=np.float32).reshape(num, -1, 3)
        sizes = np.array([[self.images[ann["image_id"]]["width"], self.images[ann["image_id"]]["height"]]
                          for ann in annotations], dtype=np.float64).reshape(num, 2)

        # quirk: HRNet's clean box measures the far corner from the clipped near corner and
        # gives every box w - 1, h - 1 (the published models were trained on these boxes)
        near = np.maximum(boxes[:, :2], 0.0)
        unclipped_size = np.maximum(boxes[:, 2:] - 1.0, 0.0)
        far = np.minimum(sizes - 1.0, near + unclipped_size)
        # w or h <= 0 is skipped outright (HRNet would keep such a box when its area field is positive)
        valid_box = (boxes[:, 2:] > 0).all(axis=1) & (areas > 0) & (far >= near).all(axis=1)
        clipped = valid_box & ((near != boxes[:, :2]) | (far - near != unclipped_size)).any(axis=1)
        clean_boxes = np.concatenate([near, far - near], axis=1)

        visibility = np.minimum(keypoints[:, :, 2], 1.0).clip(min=0.0)
        has_visible = (visibility > 0).any(axis=1)
        keep = valid_box & has_visible
        counts = {"crowd": int(crowd.sum()), "invalid box": int((~valid_box).sum()),
                  "no visible keypoint": int((valid_box & ~has_visible).sum())}
        for reason, count in counts.items():
            if count:
                logger.warning("%s: skipped %d annotation(s) with %s", self.ann_file, count, reason)
        if clipped.sum():
            logger.info("%s: clipped %d box(es) to their image", self.ann_file, int(clipped.sum()))

        kept = np.flatnonzero(keep)
        centers, scales = self._centers_scales(clean_boxes[kept])
        joints = np.concatenate([keypoints[kept, :, :2], visibility[kept, :, None]], axis=2)
        joints[joints[:, :, 2] == 0, :2] = 0.0
        image_ids = np.array([annotations[i]["image_id"] for i in kept], dtype=np.int64)
        ann_ids = np.array([annotations[i]["id"] for i in kept], dtype=np.int64)
        return (self._image_paths(image_ids), image_ids, ann_ids, centers, scales,
                np.ones(len(kept), dtype=np.float32), joints.astype(np.float32))

    def _load_detection_records(self, bbox_file, image_thre, det_category_ids):
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
        valid = (boxes[:, 2:] > 0).all(axis=1)
        if (~valid).sum():
            logger.warning("%s: skipped %d detection(s) with w or h <= 0", bbox_file, int((~valid).sum()))
        logger.info("%s: %d of %d detections have score >= TEST.IMAGE_THRE %.3g", bbox_file,
                    len(detections), num_category, image_thre)
        kept = np.flatnonzero(valid)
        centers, scales = self._centers_scales(boxes[kept])
        image_ids = np.array([detections[i]["image_id"] for i in kept], dtype=np.int64)
        scores = np.array([detections[i]["score"] for i in kept], dtype=np.float32)
        joints = np.zeros((len(kept), self.num_joints, 3), dtype=np.float32)
        return (self._image_paths(image_ids), image_ids, np.full(len(kept), -1, dtype=np.int64),
                centers, scales, scores, joints)

    def _centers_scales(self, boxes):
        centers = np.zeros((len(boxes), 2), dtype=np.float32)
        scales = np.zeros((len(boxes), 2), dtype=np.float32)
        for i, box in enumerate(boxes):
            centers[i], scales[i] = box_to_center_scale(box, self.aspect_ratio)
        return centers, scales

    def _image_paths(self, image_ids):
        return [os.path.join(self.image_dir, self.images[int(i)]["file_name"]) for i in image_ids]

    # ------------------------------------------------------------ samples
    def __len__(self):
        return len(self.image_ids)

    def set_random_seed(self, seed):
        """Fix the augmentation stream of this process (any numpy seed: int or sequence of ints).

        DataLoader worker processes do not inherit it: each seeds itself from torch's per-worker seed.
        """
        self._rng = np.random.default_rng(seed)
        self._rng_pid = os.getpid()

    def _generator(self):
        # torch gives every DataLoader worker its own initial seed (fresh each epoch unless persistent),
        # so a generator created lazily per process never repeats another worker's augmentation
        if self._rng is None or self._rng_pid != os.getpid():
            self.set_random_seed(torch.initial_seed())
        return self._rng

    def __getitem__(self, index):
        image_file = self.image_files[index]
        image = read_image(image_file, self.color_rgb)
        joints = self.joints[index].copy()
        center, scale = self.centers[index].copy(), self.scales[index].copy()
        rotation, flipped = 0.0, False
        if self.is_train:
            joints, center, scale, rotation, flipped = self.augmentation(
                joints, center, scale, image.shape[1], self._generator())

        output_size = (int(self.image_size[0]), int(self.image_size[1]))
        matrix = get_affine_transform(center, scale, rotation, output_size)
        # the flipped crop is sampled straight from the unflipped image (no mirrored copy)
        sampling = matrix @ flip_matrix(image.shape[1]) if flipped else matrix
        crop = cv2.warpAffine(image, sampling, output_size, flags=cv2.INTER_LINEAR)

        visible = joints[:, 2] > 0
        joints[visible, :2] = affine_transform_points(joints[visible, :2], matrix)
        target, target_weight = generate_gaussian_targets(joints[:, :2], joints[:, 2], self.image_size,
                                                          self.heatmap_size, self.sigma)
        if self.use_joint_weights:
            target_weight = target_weight * self.meta.joint_weights[:, None]

        meta = {
            "image_file": image_file,
            "image_id": int(self.image_ids[index]),
            "ann_id": int(self.ann_ids[index]),
            "center": center.astype(np.float32),
            "scale": scale.astype(np.float32),
            "rotation": float(rotation),
            "score": float(self.scores[index]),
            "joints": joints.astype(np.float32),
            "joints_vis": joints[:, 2].astype(np.float32),
        }
        return (torch.from_numpy(normalize_image(crop)), torch.from_numpy(target),
                torch.from_numpy(target_weight.astype(np.float32)), meta)

    # ------------------------------------------------------------ evaluation
    def evaluate(self, preds, boxes, image_ids, ann_ids, output_dir):
        """Metrics of predictions [N, K, 3] (x, y, maxval in image pixels) -> (OrderedDict, primary value)."""
        from kitpose.evaluation import evaluate_topdown
        return evaluate_topdown(self.meta, self.ann_file, preds, boxes, image_ids, ann_ids, output_dir,
                                self.test_cfg, metric=self.metric, set_name=self.image_set or "val")


def build_augmentation(cfg, meta, aspect_ratio):
    upper_body_mask = np.zeros(meta.num_keypoints, dtype=bool)
    upper_body_mask[meta.upper_body_ids] = True
    return TopDownAugmentation(
        aspect_ratio=aspect_ratio,
        flip_pairs=meta.flip_pairs,
        upper_body_mask=upper_body_mask,
        scale_factor=cfg.DATASET.SCALE_FACTOR,
        rotation_factor=cfg.DATASET.ROT_FACTOR,
        flip=cfg.DATASET.FLIP,
        prob_half_body=cfg.DATASET.PROB_HALF_BODY,
        num_joints_half_body=cfg.DATASET.NUM_JOINTS_HALF_BODY,
    )
