"""Synthetic AP-10K-schema quadrupeds: determinism, COCO schema, visibility, left/right semantics."""
import dataclasses
import importlib.util
import json
import os

import cv2
import numpy as np
import pytest

from kitpose.config import load_config
from kitpose.datasets import build_dataset, load_metainfo
from kitpose.demo import synthetic
from kitpose.demo.synthetic import (MANIFEST_NAME, SPLITS, animal_geometry, annotation_path,
                                        generate_synthetic_dataset, render_image, render_scene, sample_animal)

META = load_metainfo("ap10k")
INDEX = {name: i for i, name in enumerate(META.keypoints)}
COUNTS = {"train": 10, "val": 4, "test": 3}


def _generate(root, seed=3, workers=1, **overrides):
    counts = {**COUNTS, **overrides}
    return generate_synthetic_dataset(str(root), counts["train"], counts["val"], counts["test"], seed=seed,
                                      workers=workers)


def _tree_bytes(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "synthetic_ap10k"
    assert _generate(root) is True
    return root


def test_same_seed_gives_identical_bytes(small_set, tmp_path):
    other = tmp_path / "again"
    _generate(other)
    first, second = _tree_bytes(small_set), _tree_bytes(other)
    assert sorted(first) == sorted(second)
    assert len([name for name in first if name.endswith(".jpg")]) == sum(COUNTS.values())
    assert all(first[name] == second[name] for name in first)

    different = tmp_path / "other_seed"
    _generate(different, seed=4)
    changed = _tree_bytes(different)
    assert changed["annotations/ap10k-train-split1.json"] != first["annotations/ap10k-train-split1.json"]


def test_worker_processes_write_the_same_bytes(small_set, tmp_path):
    parallel = tmp_path / "two_workers"
    _generate(parallel, workers=2)
    first, second = _tree_bytes(small_set), _tree_bytes(parallel)
    assert sorted(first) == sorted(second)
    assert all(first[name] == second[name] for name in first)
    with pytest.raises(ValueError, match="--workers must be >= 1, got 0"):
        _generate(tmp_path / "none", workers=0)


def test_rerun_with_same_parameters_is_skipped(small_set, tmp_path):
    manifest = small_set / MANIFEST_NAME
    before = manifest.stat().st_mtime_ns
    assert _generate(small_set) is False
    assert manifest.stat().st_mtime_ns == before

    root = tmp_path / "resized"
    _generate(root)
    assert _generate(root, val=2) is True          # changed parameters regenerate
    assert len(os.listdir(root / "data")) == COUNTS["train"] + 2 + COUNTS["test"]
    assert json.loads((root / MANIFEST_NAME).read_text())["counts"]["val"] == 2
    # each picture depends on (seed, split, index) only, not on the split sizes
    resized, original = _tree_bytes(root), _tree_bytes(small_set)
    train_images = [name for name in original if name.startswith("data/00001")]
    assert len(train_images) == COUNTS["train"]
    assert all(resized[name] == original[name] for name in train_images)


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    foreign = tmp_path / "ap10k"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("real data")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        _generate(foreign)
    assert (foreign / "precious.txt").read_text() == "real data"


def test_cli_generates_and_rejects_bad_counts(tmp_path, repo_root):
    spec = importlib.util.spec_from_file_location("make_synthetic", repo_root / "tools" / "make_synthetic.py")
    make_synthetic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_synthetic)
    root = tmp_path / "cli"
    assert make_synthetic.main(["--out", str(root), "--train", "2", "--val", "1", "--seed", "1"]) == 0
    assert json.loads((root / MANIFEST_NAME).read_text())["counts"] == {"train": 2, "val": 1, "test": 1}
    assert make_synthetic.main(["--out", str(tmp_path / "bad"), "--train", "-1"]) == 2


def test_coco_schema(small_set):
    from xtcocotools.coco import COCO
    image_ids = set()
    for split in SPLITS:
        coco = COCO(annotation_path(str(small_set), split))
        (category,) = coco.loadCats(coco.getCatIds())
        assert category["keypoints"] == META.keypoints
        assert category["skeleton"] == [[a + 1, b + 1] for a, b in META.skeleton]
        assert len(coco.getImgIds()) == COUNTS[split]
        assert not image_ids & set(coco.getImgIds())
        image_ids |= set(coco.getImgIds())
        for image in coco.loadImgs(coco.getImgIds()):
            picture = cv2.imread(str(small_set / "data" / image["file_name"]))
            assert picture.shape == (image["height"], image["width"], 3)
            assert len(coco.getAnnIds(imgIds=image["id"])) >= 1
        for ann in coco.loadAnns(coco.getAnnIds()):
            image = coco.imgs[ann["image_id"]]
            keypoints = np.asarray(ann["keypoints"]).reshape(17, 3)
            x, y, w, h = ann["bbox"]
            assert ann["iscrowd"] == 0 and ann["category_id"] == category["id"]
            assert w > 0 and h > 0 and ann["area"] == pytest.approx(w * h, abs=0.01)
            assert 0 <= x and 0 <= y and x + w <= image["width"] - 1 + 1e-6 and y + h <= image["height"] - 1 + 1e-6
            assert set(keypoints[:, 2]) <= {0, 1, 2}
            assert ann["num_keypoints"] == int((keypoints[:, 2] > 0).sum()) >= synthetic.MIN_LABELLED_KEYPOINTS
            assert (keypoints[keypoints[:, 2] == 0, :2] == 0).all()
            labelled = keypoints[keypoints[:, 2] > 0, :2]
            assert ((labelled >= [x - 1e-6, y - 1e-6]) & (labelled <= [x + w + 1e-6, y + h + 1e-6])).all()


def test_visibility_flags_and_several_animals_occur():
    flags, animals_per_image = [], []
    for index in range(40):
        _, instances, width, height = render_image(11, "train", index, META.keypoints)
        animals_per_image.append(len(instances))
        for keypoints, _ in instances:
            flags.append(keypoints[:, 2])
            outside = keypoints[:, 2] == 0
            assert (keypoints[~outside, :2] >= 0).all() and (keypoints[~outside, :2] <= [width - 1, height - 1]).all()
    flags = np.concatenate(flags)
    assert max(animals_per_image) >= 2 and min(animals_per_image) >= 1
    assert (flags == 0).any() and (flags == 1).any()
    assert 0.5 < (flags == 2).mean() < 0.95


def _side_view(yaw):
    spec = sample_animal(np.random.default_rng(0))
    return dataclasses.replace(
        spec, yaw=yaw, elevation=0.2, roll=0.0, head_turn=0.0, head_pitch=-0.4, neck_elevation=0.7,
        tail_angle=0.3, leg_swing=np.array([-0.35, 0.35, -0.3, 0.3]), leg_bend=np.array([-0.2, -0.2, -0.3, -0.3]),
        body_colour=np.full(3, 170.0), near_shade=1.0, far_shade=0.55)


def _render_alone(spec):
    image, [(keypoints, _)] = render_scene(np.random.default_rng(1), 256, 256, META.keypoints,
                                           animals=[spec], occluders=False)
    return image, keypoints


@pytest.mark.parametrize("yaw, near", [(0.0, "R"), (np.pi, "L")])
def test_side_view_shows_the_named_side(yaw, near):
    """Facing image-right an animal shows its right side: R keypoints visible, L hidden behind the body."""
    image, keypoints = _render_alone(_side_view(yaw))
    far = "L" if near == "R" else "R"
    facing_right = keypoints[INDEX["Nose"], 0] > keypoints[INDEX["Root of tail"], 0]
    assert facing_right == (near == "R")
    for part in ("Eye", "Shoulder", "Hip"):
        assert keypoints[INDEX[f"{near}_{part}"], 2] == 2
        assert keypoints[INDEX[f"{far}_{part}"], 2] == 1
    # the near legs are drawn in the lit body colour, the far ones darker
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    for joint in ("Elbow", "Knee"):
        near_xy = np.rint(keypoints[INDEX[f"{near}_{joint}"], :2]).astype(int)
        far_xy = np.rint(keypoints[INDEX[f"{far}_{joint}"], :2]).astype(int)
        assert keypoints[INDEX[f"{far}_{joint}"], 2] == 2
        near_value = gray[near_xy[1] - 1:near_xy[1] + 2, near_xy[0] - 1:near_xy[0] + 2].mean()
        far_value = gray[far_xy[1] - 1:far_xy[1] + 2, far_xy[0] - 1:far_xy[0] + 2].mean()
        assert near_value > far_value + 25


@pytest.mark.parametrize("seed", range(5))
def test_mirrored_animal_is_the_flip_pair_swap(seed):
    """Mirroring the puppet (yaw -> pi - yaw, roll and head turn negated, left and right legs exchanged)
    mirrors its keypoints with the metainfo flip pairs exchanged: labels agree with flip augmentation."""
    spec = sample_animal(np.random.default_rng(seed))
    swap_legs = [1, 0, 3, 2]            # LEGS order L_F, R_F, L_B, R_B
    mirrored = dataclasses.replace(
        spec, yaw=np.pi - spec.yaw, roll=-spec.roll, head_turn=-spec.head_turn,
        leg_swing=spec.leg_swing[swap_legs], leg_bend=spec.leg_bend[swap_legs], leg_splay=spec.leg_splay[swap_legs])
    original = np.stack([animal_geometry(spec).keypoints[name] for name in META.keypoints])
    reflected = np.stack([animal_geometry(mirrored).keypoints[name] for name in META.keypoints])
    expected = original * [-1.0, 1.0]
    pairs = np.asarray(META.flip_pairs)
    expected[pairs[:, 0]], expected[pairs[:, 1]] = expected[pairs[:, 1]].copy(), expected[pairs[:, 0]].copy()
    np.testing.assert_allclose(reflected, expected, atol=1e-9)


def test_loads_as_ap10k_dataset(small_set):
    cfg = load_config(opts=["DATASET.DATASET", "ap10k", "DATASET.ROOT", str(small_set), "DATASET.TEST_SET", "val",
                            "MODEL.IMAGE_SIZE", "[128, 128]", "MODEL.HEATMAP_SIZE", "[32, 32]", "MODEL.SIGMA", "1.0"])
    dataset = build_dataset(cfg, is_train=False)
    with open(annotation_path(str(small_set), "val")) as f:
        assert len(dataset) == len(json.load(f)["annotations"])
    image, target, target_weight, meta = dataset[0]
    assert tuple(image.shape) == (3, 128, 128) and tuple(target.shape) == (17, 32, 32)
    assert float(target_weight.sum()) > 0
