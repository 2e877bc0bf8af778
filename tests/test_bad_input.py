"""Bad dataset input: clear errors naming the file / annotation, or counted and logged skips."""
import json
import logging

import numpy as np
import pytest

from kitpose.config import load_config
from kitpose.datasets import AnnotationError, ImageReadError, MetainfoError, build_dataset
from tiny_coco import box_keypoints, custom_opts, instance, make_tiny_dataset, tiny_metainfo

K = 4


@pytest.fixture
def tiny_root(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps(tiny_metainfo(K)))
    return tmp_path


def build(root, is_train=True, *extra):
    return build_dataset(load_config(None, custom_opts(root, K) + list(extra)), is_train=is_train)


def test_missing_image_file_names_path(tiny_root):
    make_tiny_dataset(tiny_root, K)
    (tiny_root / "images" / "sub" / "b.jpg").unlink()
    ds = build(tiny_root)
    ds[0]
    with pytest.raises(FileNotFoundError, match=r"images/sub/b\.jpg"):
        ds[1]


def test_corrupt_image_names_path(tiny_root):
    make_tiny_dataset(tiny_root, K)
    (tiny_root / "images" / "a.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    ds = build(tiny_root)
    with pytest.raises(ImageReadError, match=r"images/a\.jpg"):
        ds[0]


def test_wrong_keypoint_count_names_annotation_and_file(tiny_root):
    box = (10, 12, 50, 40)
    annotations = [instance(1, 1, box, box_keypoints(box, K)), instance(77, 2, box, box_keypoints(box, K + 1))]
    ann_file = make_tiny_dataset(tiny_root, K, annotations=annotations)
    with pytest.raises(AnnotationError) as err:
        build(tiny_root)
    assert "annotation id 77" in str(err.value) and str(ann_file) in str(err.value)
    assert "15 keypoint values, expected 12" in str(err.value)


def test_bad_and_outside_boxes_are_skipped_or_clipped_and_counted(tiny_root, caplog):
    width, height = 96, 80
    inside = (10, 12, 50, 40)
    # clean box: near corner clipped to (0, 30), far corner min(image - 1, near + size - 1) = (49, 79)
    partly_outside = (-10, 30, 50, 70)
    annotations = [
        instance(1, 1, inside, box_keypoints(inside, K)),
        instance(2, 1, partly_outside, box_keypoints((0, 30, 49, 49), K)),
        instance(3, 2, (20, 20, 0, 30), box_keypoints(inside, K)),      # zero width, so area 0
        instance(4, 2, (20, 20, 30, -5), box_keypoints(inside, K)),     # negative height, so area < 0
        instance(5, 2, (120, 10, 30, 30), box_keypoints(inside, K)),    # right of the image
        instance(6, 2, inside, box_keypoints(inside, K), iscrowd=1),
        instance(7, 2, (20, 20, 0, 30), box_keypoints(inside, K), area=12.0),  # zero width, area > 0: kept
        instance(8, 2, (20, 20, 0.5, 0.5), box_keypoints(inside, K)),   # under 1 px: scale 0
    ]
    make_tiny_dataset(tiny_root, K, annotations=annotations, image_size=(width, height))
    with caplog.at_level(logging.INFO, logger="kitpose.datasets"):
        ds = build(tiny_root)
    assert ds.ann_ids.tolist() == [1, 2, 7]
    assert "skipped 3 annotation(s) with an empty box after clipping or area <= 0" in caplog.text
    assert "skipped 1 annotation(s) with crowd" in caplog.text
    assert "skipped 1 annotation(s) with a box under 1 px (scale 0)" in caplog.text
    assert "clipped 1 box(es)" in caplog.text
    # the clean box (x 0, y 30, w 49, h 49) sets centre and scale
    np.testing.assert_allclose(ds.centers[1], [24.5, 54.5])
    np.testing.assert_allclose(ds.scales[1], [49 / 200 * 1.25, 49 / 200 * 1.25], rtol=1e-6)
    # the zero-width box: clean height 29, the width follows from the aspect ratio
    np.testing.assert_allclose(ds.scales[2], [29 / 200 * 1.25, 29 / 200 * 1.25], rtol=1e-6)
    for index in range(3):
        image, *_ = ds[index]
        assert np.isfinite(image.numpy()).all() and image.std() > 0


def test_instances_without_keypoints_are_skipped_and_counted(tiny_root, caplog):
    box = (10, 12, 50, 40)
    invisible = box_keypoints(box, K, visibility=0)
    annotations = [instance(1, 1, box, box_keypoints(box, K)), instance(2, 2, box, invisible),
                   instance(3, 2, box, np.full((K, 3), -1.0) * [1, 1, 0]),  # AnimalKingdom style (-1, -1, 0)
                   instance(4, 2, box, np.zeros((K, 3)), num_keypoints=3),   # no num_keypoints 0, every value 0
                   instance(5, 2, box, invisible, num_keypoints=2)]          # labelled x, y, all v = 0: kept
    make_tiny_dataset(tiny_root, K, annotations=annotations)
    with caplog.at_level(logging.WARNING, logger="kitpose.datasets"):
        ds = build(tiny_root)
    assert ds.ann_ids.tolist() == [1, 5]
    assert "skipped 2 annotation(s) with num_keypoints 0" in caplog.text
    assert "skipped 1 annotation(s) with all keypoint values 0" in caplog.text
    # the kept unlabelled instance trains nothing: all its joints weigh 0
    _, target, target_weight, _ = ds[1]
    assert target_weight.sum() == 0 and target.abs().sum() == 0


def test_missing_annotation_file_names_path_and_layout(tmp_path):
    opts = ["DATASET.DATASET", "ap10k", "DATASET.ROOT", str(tmp_path / "ap10k")]
    with pytest.raises(FileNotFoundError) as err:
        build_dataset(load_config(None, opts), is_train=True)
    message = str(err.value)
    assert str(tmp_path / "ap10k" / "annotations" / "ap10k-train-split1.json") in message
    assert "ROOT/annotations/ap10k-train-split1.json" in message and "ROOT/data" in message


def test_missing_custom_annotation_file_and_image_folder(tiny_root):
    with pytest.raises(FileNotFoundError, match=r"annotations/train\.json"):
        build(tiny_root)
    make_tiny_dataset(tiny_root, K)
    with pytest.raises(FileNotFoundError, match="image folder not found: .*pictures"):
        build_dataset(load_config(None, custom_opts(tiny_root, K, image_dir="pictures")), is_train=True)
    with pytest.raises(ValueError, match="DATASET.TEST_ANN"):
        build_dataset(load_config(None, custom_opts(tiny_root, K, test_ann="")), is_train=False)


def test_annotation_file_that_is_not_coco(tiny_root):
    make_tiny_dataset(tiny_root, K)
    (tiny_root / "annotations" / "train.json").write_text("{not json")
    with pytest.raises(AnnotationError, match=r"train\.json: not valid JSON"):
        build(tiny_root)
    (tiny_root / "annotations" / "train.json").write_text(json.dumps({"images": []}))
    with pytest.raises(AnnotationError, match="needs 'images' and 'annotations'"):
        build(tiny_root)


def test_metainfo_keypoint_count_differs_from_annotations(tiny_root):
    ann_file = make_tiny_dataset(tiny_root, K)
    meta_file = tiny_root / "meta5.json"
    meta_file.write_text(json.dumps(tiny_metainfo(K + 1)))
    opts = custom_opts(tiny_root, K + 1, meta="meta5.json")
    with pytest.raises(MetainfoError) as err:
        build_dataset(load_config(None, opts), is_train=True)
    assert str(meta_file) in str(err.value) and str(ann_file) in str(err.value)

    # without keypoint names in the categories the per-annotation check names both files
    data = json.loads(ann_file.read_text())
    data["categories"] = [{"id": 1, "name": "tiny_animal"}]
    ann_file.write_text(json.dumps(data))
    with pytest.raises(AnnotationError) as err:
        build_dataset(load_config(None, opts), is_train=True)
    assert str(meta_file) in str(err.value) and str(ann_file) in str(err.value)
    assert "annotation id 1" in str(err.value)


def test_flip_pair_out_of_range_names_meta_file(tiny_root):
    make_tiny_dataset(tiny_root, K)
    (tiny_root / "meta.json").write_text(json.dumps(tiny_metainfo(K, flip_pairs=[[0, 1], [2, K]])))
    with pytest.raises(MetainfoError) as err:
        build(tiny_root)
    assert str(tiny_root / "meta.json") in str(err.value) and "flip_pairs" in str(err.value)
    assert f"[[2, {K}]]" in str(err.value)


def test_model_num_joints_must_match_metainfo(tiny_root):
    make_tiny_dataset(tiny_root, K)
    with pytest.raises(MetainfoError, match=r"MODEL.NUM_JOINTS is 17 but metainfo .*meta\.json has 4"):
        build(tiny_root, True, "MODEL.NUM_JOINTS", "17")


def test_detection_file_problems(tiny_root, caplog):
    make_tiny_dataset(tiny_root, K)
    missing = tiny_root / "dets_missing.json"
    with pytest.raises(FileNotFoundError, match="dets_missing.json .*TEST.COCO_BBOX_FILE"):
        build(tiny_root, False, "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", str(missing))
    dets = tiny_root / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [5, 5, 30, 30], "score": 0.9},
                                {"image_id": 2, "category_id": 1, "bbox": [5, 5, 0, 0], "score": 0.9},
                                {"image_id": 2, "category_id": 1, "bbox": [5, 5, 0, 30], "score": 0.9},
                                {"image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 30], "score": 0.1}]))
    with caplog.at_level(logging.WARNING, logger="kitpose.datasets"):
        ds = build(tiny_root, False, "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", str(dets),
                   "TEST.IMAGE_THRE", "0.5")
    # the 0 x 30 box is a valid crop (its width follows from the aspect ratio); 0 x 0 is not
    assert len(ds) == 2 and ds.image_ids.tolist() == [1, 2] and ds.ann_ids.tolist() == [-1, -1]
    assert "skipped 1 detection(s) with w and h <= 0 (scale 0)" in caplog.text
    dets.write_text(json.dumps([{"image_id": 99, "category_id": 1, "bbox": [5, 5, 30, 30], "score": 0.9}]))
    with pytest.raises(AnnotationError, match=r"image ids \[99\].*train\.json"):
        build(tiny_root, False, "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", str(dets))


def test_annotation_pointing_to_unknown_image(tiny_root):
    box = (10, 12, 50, 40)
    ann_file = make_tiny_dataset(tiny_root, K, annotations=[instance(5, 42, box, box_keypoints(box, K))])
    with pytest.raises(AnnotationError, match=f"{ann_file}: annotation id 5 refers to image_id 42"):
        build(tiny_root)


def test_image_without_size_fields(tiny_root):
    ann_file = make_tiny_dataset(tiny_root, K)
    data = json.loads(ann_file.read_text())
    del data["images"][1]["width"]
    ann_file.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"image 2 lacks field\(s\) \['width'\]"):
        build(tiny_root)
