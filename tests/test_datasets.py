"""Metainfo files, the top-down dataset (layouts, train/test pipelines, detector boxes) and custom datasets."""
import json

import cv2
import numpy as np
import pytest
import torch

from kitpose.codecs import affine_transform_points, box_to_center_scale, get_affine_transform
from kitpose.config import load_config
from kitpose.datasets import BUILTIN_METAINFO, DatasetLayout, MetainfoError, build_dataset, dataset_paths, load_metainfo
from kitpose.datasets.transforms import TopDownAugmentation, normalize_image, read_image
from tiny_coco import make_tiny_dataset, tiny_metainfo

META_FIELDS = ("keypoints", "flip_pairs", "upper_body_ids", "lower_body_ids", "skeleton")


def sample_opts(samples_dir, name, ann, num_joints, *extra):
    """Overrides that read a sample folder (annotation file beside its images) as a custom dataset."""
    return ["DATASET.DATASET", "custom", "DATASET.ROOT", str(samples_dir / name), "DATASET.META", name,
            "DATASET.TRAIN_ANN", ann, "DATASET.TEST_ANN", ann, "MODEL.NUM_JOINTS", str(num_joints), *extra]


# ---------------------------------------------------------------- metainfo
@pytest.mark.parametrize("name", BUILTIN_METAINFO)
def test_builtin_metainfo_matches_reference(reference_dir, name):
    reference = json.loads((reference_dir / "dataset_meta.json").read_text())[name]
    meta = load_metainfo(name)
    assert meta.name == name
    assert meta.num_keypoints == reference["num_keypoints"] == len(meta.keypoints)
    for field in META_FIELDS:
        assert getattr(meta, field) == reference[field], field
    assert meta.joint_weights.dtype == np.float32 and meta.sigmas.dtype == np.float32
    # the published AP-10K and COCO loaders define 1.2 / 1.5 weights but never apply them
    applied = np.ones(meta.num_keypoints) if name in ("ap10k", "coco") else reference["joint_weights"]
    np.testing.assert_allclose(meta.joint_weights, applied, rtol=1e-6)
    np.testing.assert_allclose(meta.sigmas, reference["sigmas"], rtol=1e-6)


@pytest.mark.parametrize("field, value, message", [
    ("flip_pairs", [[0, 1], [2, 4]], "out of range"),
    ("flip_pairs", [[0, 1], [1, 2]], "more than one pair"),
    ("skeleton", [[0, -1]], "out of range"),
    ("upper_body_ids", [0, 7], "out of range"),
    ("sigmas", [0.05, 0.05, 0.05], "expected one per keypoint"),
    ("sigmas", [0.05, 0.0, 0.05, 0.05], "positive"),
    ("joint_weights", [1.0, 1.0, 1.0, 1.0, 1.0], "expected one per keypoint"),
    ("num_keypoints", 5, "'keypoints' lists 4"),
])
def test_metainfo_inconsistency_names_file_and_field(tmp_path, field, value, message):
    path = tmp_path / "bad_meta.json"
    path.write_text(json.dumps(tiny_metainfo(4, **{field: value})))
    with pytest.raises(MetainfoError) as err:
        load_metainfo(str(path))
    assert str(path) in str(err.value) and field in str(err.value) and message in str(err.value)


def test_metainfo_missing_field_and_file(tmp_path):
    data = tiny_metainfo(4)
    del data["sigmas"]
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MetainfoError, match="sigmas"):
        load_metainfo(str(path))
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        load_metainfo(str(tmp_path / "nowhere.json"))


def test_folder_layouts_and_detection_categories_come_from_the_metainfo(tmp_path):
    assert {name: load_metainfo(name).layout for name in BUILTIN_METAINFO} == {
        "ap10k": DatasetLayout("annotations/ap10k-{set}-split1.json", "data"),
        "animalpose": DatasetLayout("annotations/animalpose_{set}.json", ""),
        "ak": DatasetLayout("annotation/ak_P3_mammal/{set}.json", "dataset"),
        "coco": DatasetLayout("annotations/person_keypoints_{set}.json", "images/{set}"),
    }
    assert {name: load_metainfo(name).loader.detection_categories for name in BUILTIN_METAINFO} == {
        "ap10k": (), "animalpose": (), "ak": (), "coco": (1,)}

    # a metainfo file with its own layout places the files of any non-custom dataset
    (tmp_path / "meta.json").write_text(json.dumps(tiny_metainfo(
        4, layout={"annotations": "labels/{set}.json", "images": "frames/{set}"})))
    opts = ["DATASET.ROOT", str(tmp_path), "DATASET.META", "meta.json", "MODEL.NUM_JOINTS", "4"]
    ann_file, image_dir, source, _ = dataset_paths(load_config(None, opts), is_train=True)
    assert (ann_file, image_dir, source) == (str(tmp_path / "labels" / "train.json"),
                                             str(tmp_path / "frames" / "train"), str(tmp_path / "meta.json"))
    # one without a layout needs the annotation file named
    (tmp_path / "meta.json").write_text(json.dumps(tiny_metainfo(4)))
    with pytest.raises(ValueError, match=r"meta.json has no 'layout', so DATASET.DATASET 'ap10k' needs "
                                         r"DATASET.TEST_ANN"):
        dataset_paths(load_config(None, opts), is_train=False)
    with pytest.raises(ValueError, match=r"unknown DATASET.DATASET 'ap10'; .*'custom'"):
        dataset_paths(load_config(None, ["DATASET.DATASET", "ap10"]), is_train=True)


@pytest.mark.parametrize("field, value, message", [
    ("layout", {"annotations": "a.json"}, "field 'layout' must be an object"),
    ("layout", {"annotations": "", "images": ""}, "field 'layout' must be an object"),
    ("loader", {"detection_categories": [1, "2"]}, "'loader.detection_categories' must be a list of integer ids"),
])
def test_bad_layout_or_detection_categories_name_the_field(tmp_path, field, value, message):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(tiny_metainfo(4, **{field: value})))
    with pytest.raises(MetainfoError, match=message) as err:
        load_metainfo(str(path))
    assert str(path) in str(err.value)


def test_detector_boxes_of_other_categories_follow_the_metainfo(tmp_path):
    make_tiny_dataset(tmp_path, 4)
    boxes = [{"image_id": 1, "category_id": 1, "bbox": [10, 12, 50, 40], "score": 0.9},
             {"image_id": 2, "category_id": 2, "bbox": [20, 8, 60, 64], "score": 0.8}]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    opts = ["DATASET.DATASET", "custom", "DATASET.ROOT", str(tmp_path), "DATASET.META", "meta.json",
            "DATASET.TEST_ANN", "annotations/train.json", "DATASET.IMAGE_DIR", "images", "MODEL.NUM_JOINTS", "4",
            "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", str(tmp_path / "boxes.json")]
    for categories, kept in (([], [1, 2]), ([1], [1]), ([2, 3], [2])):
        (tmp_path / "meta.json").write_text(json.dumps(tiny_metainfo(4, loader={"detection_categories": categories})))
        assert build_dataset(load_config(None, opts), is_train=False).image_ids.tolist() == kept


# ---------------------------------------------------------------- real samples
def test_ap10k_sample_test_pipeline_is_exact(samples_dir):
    cfg = load_config(None, sample_opts(samples_dir, "ap10k", "test_ap10k.json", 17))
    ds = build_dataset(cfg, is_train=False)
    coco = json.loads((samples_dir / "ap10k" / "test_ap10k.json").read_text())
    assert len(ds) == 2 and ds.meta.metric == "oks" and not ds.is_train
    assert ds.codec.image_size == (256, 256) and ds.codec.heatmap_size == (64, 64)
    for index, ann in enumerate(coco["annotations"]):
        image, target, target_weight, meta = ds[index]
        assert meta["ann_id"] == ann["id"] and meta["image_id"] == ann["image_id"]
        assert meta["rotation"] == 0.0 and meta["score"] == 1.0
        assert image.shape == (3, 256, 256) and image.dtype == torch.float32
        assert target.shape == (17, 64, 64) and target_weight.shape == (17, 1)

        # the crop is the GT box (clipped to the image) through the AP-10K box -> centre/scale rule
        file_image = cv2.cvtColor(cv2.imread(meta["image_file"]), cv2.COLOR_BGR2RGB)
        x, y, w, h = ann["bbox"]
        height, width = file_image.shape[:2]
        x2, y2 = min(width - 1, x + max(0, w - 1)), min(height - 1, y + max(0, h - 1))
        center, scale = box_to_center_scale([x, y, x2 - x, y2 - y], 1.0)
        np.testing.assert_array_equal(meta["center"], center)
        np.testing.assert_array_equal(meta["scale"], scale)
        matrix = get_affine_transform(center, scale, 0, (256, 256))
        expected = normalize_image(cv2.warpAffine(file_image, matrix, (256, 256), flags=cv2.INTER_LINEAR))
        np.testing.assert_array_equal(image.numpy(), expected)

        keypoints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        visible = keypoints[:, 2] > 0
        np.testing.assert_array_equal(meta["joints_vis"], visible.astype(np.float32))
        np.testing.assert_allclose(meta["joints"][visible, :2],
                                   affine_transform_points(keypoints[visible, :2], matrix), atol=1e-9)
        # the heatmap joints come from the same construction at 64 x 64 (not input / 4)
        heatmap_matrix = get_affine_transform(center, scale, 0, (64, 64))
        heatmap_joints = affine_transform_points(keypoints[visible, :2], heatmap_matrix)
        np.testing.assert_allclose(meta["heatmap_joints"][visible], heatmap_joints, atol=1e-9)
        assert np.abs(heatmap_joints - meta["joints"][visible, :2] / 4).max() > 0.05
        # each visible joint: a whole-map Gaussian centred on the sub-pixel heatmap joint
        drawn = target_weight[:, 0].numpy() > 0
        assert drawn.sum() == visible.sum()
        ys, xs = np.mgrid[0:64, 0:64]
        for joint, (mu_x, mu_y) in zip(np.flatnonzero(drawn), heatmap_joints):
            gaussian = np.exp(-((xs - mu_x) ** 2 + (ys - mu_y) ** 2) / 8.0)
            np.testing.assert_allclose(target[joint].numpy(), gaussian, atol=1e-6)
        assert (target[~torch.from_numpy(drawn)] == 0).all()


def test_ak_sample_subfolders_invisible_joints_and_pck_metric(samples_dir):
    cfg = load_config(None, sample_opts(samples_dir, "ak", "test_animalkingdom.json", 23))
    ds = build_dataset(cfg, is_train=False)
    assert ds.meta.metric == "pck" and len(ds) == 2
    _, _, target_weight, meta = ds[1]
    assert meta["image_file"].endswith("AAOYRUDX/AAOYRUDX_f000028.jpg")
    # AnimalKingdom marks missing joints as (-1, -1, 0): no target; the coordinates stay as written
    assert meta["joints_vis"].sum() == 6 == target_weight.sum()
    assert np.all(meta["joints"][meta["joints_vis"] == 0, :2] == -1)


def test_coco_sample_detector_boxes(samples_dir):
    bbox_file = samples_dir / "coco" / "test_coco_det_AP_H_56.json"
    opts = sample_opts(samples_dir, "coco", "test_coco.json", 17, "TEST.USE_GT_BBOX", "False",
                       "TEST.COCO_BBOX_FILE", str(bbox_file), "TEST.IMAGE_THRE", "0.2")
    cfg = load_config(None, opts)
    ds = build_dataset(cfg, is_train=False)
    detections = [d for d in json.loads(bbox_file.read_text()) if d["category_id"] == 1 and d["score"] >= 0.2]
    assert 0 < len(ds) == len(detections) < 118
    np.testing.assert_array_equal(ds.ann_ids, -1)
    # as published, detector boxes score 1 unless TEST.USE_DET_SCORE
    np.testing.assert_array_equal(ds.scores, 1.0)
    with_scores = build_dataset(load_config(None, opts + ["TEST.USE_DET_SCORE", "true"]), is_train=False)
    np.testing.assert_allclose(with_scores.scores, [d["score"] for d in detections], rtol=1e-6)
    _, target, target_weight, meta = ds[3]
    # the COCO loader's centre is x + (w - 1) / 2
    x, y, w, h = detections[3]["bbox"]
    center, scale = box_to_center_scale(detections[3]["bbox"], 1.0, ds.meta.box_convention)
    np.testing.assert_allclose(center, [x + (w - 1) / 2, y + (h - 1) / 2], rtol=1e-6)
    np.testing.assert_array_equal(meta["center"], center)
    np.testing.assert_array_equal(meta["scale"], scale)
    assert meta["ann_id"] == -1 and meta["score"] == 1.0
    assert meta["image_id"] == detections[3]["image_id"]
    assert target_weight.sum() == 0 and target.abs().sum() == 0
    # GT boxes of the same file: crowd-free instances with at least one visible keypoint (12 of 14)
    gt = build_dataset(load_config(None, sample_opts(samples_dir, "coco", "test_coco.json", 17)), is_train=False)
    assert len(gt) == 12 and (gt.ann_ids > 0).all()


def test_training_augmentation_varies_and_is_reproducible(samples_dir):
    opts = sample_opts(samples_dir, "ap10k", "test_ap10k.json", 17, "DATASET.ROT_FACTOR", "40",
                       "DATASET.SCALE_FACTOR", "0.5", "DATASET.PROB_HALF_BODY", "0.3")
    ds = build_dataset(load_config(None, opts), is_train=True)
    ds.set_random_seed(3)
    draws = [ds[0][3] for _ in range(6)]
    ds.set_random_seed(3)
    again = [ds[0][3] for _ in range(6)]
    for first, second in zip(draws, again):
        np.testing.assert_array_equal(first["joints"], second["joints"])
    scales = np.array([m["scale"][0] for m in draws])
    assert len(np.unique(scales)) == 6
    base_scale = ds.scales[0][0]
    # scale stays within 1 +/- SCALE_FACTOR of the box (half-body crops aside, which are smaller)
    assert np.all(scales <= base_scale * 1.5 + 1e-4)
    rotations = np.array([m["rotation"] for m in draws])
    assert np.all(np.abs(rotations) <= 80) and np.any(rotations != 0)


def test_dataloader_workers_draw_different_augmentations(samples_dir):
    opts = sample_opts(samples_dir, "ap10k", "test_ap10k.json", 17, "DATASET.ROT_FACTOR", "40",
                       "DATASET.SCALE_FACTOR", "0.5")
    ds = build_dataset(load_config(None, opts), is_train=True)
    ds.set_random_seed(0)  # the parent's stream must not leak into the workers
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, [0, 0, 0, 0]), batch_size=1, num_workers=2,
                                         generator=torch.Generator().manual_seed(1))
    # workers 0 and 1 take items 0, 2 and 1, 3: each augmentation draw must differ
    draws = {(meta["rotation"].item(), meta["joints"].numpy().tobytes()) for _, _, _, meta in loader}
    assert len(draws) == 4


def test_flip_mirrors_crop_and_swaps_pairs(samples_dir):
    ds = build_dataset(load_config(None, sample_opts(samples_dir, "ap10k", "test_ap10k.json", 17)), is_train=True)
    upper = np.zeros(17, dtype=bool)
    upper[ds.meta.upper_body_ids] = True

    def augmentation(flip):
        return TopDownAugmentation(aspect_ratio=1.0, flip_pairs=ds.meta.flip_pairs, upper_body_mask=upper,
                                   scale_factor=0.0, rotation_factor=0.0, flip=flip, flip_prob=1.0)
    ds.augmentation = augmentation(False)
    plain_image, _, plain_weight, plain = ds[0]
    ds.augmentation = augmentation(True)
    flip_image, _, flip_weight, flipped = ds[0]

    # as published: the image array is flipped, then warped
    file_image = read_image(flipped["image_file"])
    matrix = get_affine_transform(flipped["center"], flipped["scale"], 0, (256, 256))
    expected = normalize_image(cv2.warpAffine(np.ascontiguousarray(file_image[:, ::-1]), matrix, (256, 256),
                                              flags=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(flip_image.numpy(), expected)
    # with the (w - 1)-aligned crop the flipped crop is the mirrored crop, column x -> 255 - x
    assert np.abs(flip_image.numpy() - plain_image.numpy()[:, :, ::-1]).mean() < 0.01

    permutation = np.arange(17)
    pairs = np.asarray(ds.meta.flip_pairs)
    permutation[pairs[:, 0]], permutation[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
    np.testing.assert_array_equal(flipped["joints_vis"], plain["joints_vis"][permutation])
    visible = flipped["joints_vis"] > 0
    np.testing.assert_allclose(flipped["joints"][visible, 0], 255 - plain["joints"][permutation][visible, 0],
                               atol=1e-3)
    np.testing.assert_allclose(flipped["joints"][visible, 1], plain["joints"][permutation][visible, 1], atol=1e-3)
    # invisible joints of a flipped sample are zeroed, as published
    assert np.all(flipped["joints"][~visible, :2] == 0)
