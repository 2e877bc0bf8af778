"""Tiny COCO-format keypoint datasets written into a test's tmp_path (images made with cv2)."""
import json
from pathlib import Path

import cv2
import numpy as np


def tiny_metainfo(count=4, **overrides):
    """Metainfo dict of a made-up animal with ``count`` keypoints: 0/1, 2/3, ... are left/right pairs."""
    num_keypoints = count
    meta = {
        "name": "tiny_animal",
        "keypoints": [f"kp{i}" for i in range(num_keypoints)],
        "flip_pairs": [[i, i + 1] for i in range(0, num_keypoints - 1, 2)],
        "upper_body_ids": list(range(num_keypoints // 2)),
        "lower_body_ids": list(range(num_keypoints // 2, num_keypoints)),
        "skeleton": [[i, i + 1] for i in range(num_keypoints - 1)],
        "joint_weights": [1.0 + 0.5 * (i % 2) for i in range(num_keypoints)],
        "sigmas": [0.05] * num_keypoints,
    }
    meta.update(overrides)
    return meta


def write_image(path, width, height, seed=0):
    """A textured colour image (smooth gradient + noise) so crops are not constant."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1),
                      rng.integers(0, 256, (height, width))], axis=2).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def instance(ann_id, image_id, bbox, keypoints, **extra):
    """An annotation dict; keypoints [K, 3] (x, y, v)."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": list(map(float, bbox)),
           "area": float(bbox[2] * bbox[3]), "iscrowd": 0, "num_keypoints": int((keypoints[:, 2] > 0).sum()),
           "keypoints": keypoints.reshape(-1).tolist()}
    ann.update(extra)
    return ann


def box_keypoints(bbox, num_keypoints, visibility=2):
    """Keypoints spread on a diagonal inside ``bbox`` (x, y, w, h)."""
    x, y, w, h = bbox
    t = (np.arange(num_keypoints) + 1) / (num_keypoints + 1)
    return np.stack([x + t * w, y + t[::-1] * h, np.full(num_keypoints, visibility)], axis=1)


def write_coco(path, images, annotations, num_keypoints):
    """Write a COCO keypoint file; ``images`` are (id, file_name, width, height) tuples."""
    data = {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in images],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "tiny_animal", "supercategory": "animal",
                        "keypoints": [f"kp{i}" for i in range(num_keypoints)], "skeleton": []}],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def make_tiny_dataset(root, num_keypoints=4, ann_path="annotations/train.json", image_dir="images",
                      annotations=None, image_size=(96, 80)):
    """Two images with one instance each (ids 1, 2) unless ``annotations`` is given. Returns the ann path."""
    root = Path(root)
    width, height = image_size
    images = [(1, "a.jpg", width, height), (2, "sub/b.jpg", width, height)]
    for seed, (_, file_name, w, h) in enumerate(images):
        write_image(root / image_dir / file_name, w, h, seed)
    if annotations is None:
        boxes = [(10, 12, 50, 40), (20, 8, 60, 64)]
        annotations = [instance(ann_id, ann_id, box, box_keypoints(box, num_keypoints))
                       for ann_id, box in zip((1, 2), boxes)]
    return write_coco(root / ann_path, images, annotations, num_keypoints)


def custom_opts(root, num_keypoints=4, meta="meta.json", train_ann="annotations/train.json",
                test_ann="annotations/train.json", image_dir="images"):
    """Command-line style overrides for a small custom dataset under ``root``."""
    return ["DATASET.DATASET", "custom", "DATASET.ROOT", str(root), "DATASET.META", meta,
            "DATASET.TRAIN_ANN", train_ann, "DATASET.TEST_ANN", test_ann, "DATASET.IMAGE_DIR", image_dir,
            "MODEL.NUM_JOINTS", str(num_keypoints), "MODEL.IMAGE_SIZE", "[64, 64]",
            "MODEL.HEATMAP_SIZE", "[16, 16]", "MODEL.SIGMA", "1"]
