"""The centroid detection stage (MODEL.NAME centroid_hrnet): letterbox and peak decoding, the whole-frame
dataset's targets, the detection metric, the importer's centroid YAML, a short training on a synthetic
video of several animals, and tools/infer.py with the trained stage as its box source."""
import json

import cv2
import numpy as np
import pytest
import torch

from kitpose.codecs.centroid import (anchor_boxes, anchor_points, centroid_target, find_peaks, letterbox,
                                     peaks_to_frame)
from kitpose.config import ConfigError, load_config
from kitpose.datasets import CentroidDataset, build_dataset
from kitpose.datasets.centroid import CentroidAugmentation
from kitpose.evaluation import centroid_metrics

INPUT, HEATMAP = (256, 176), (64, 44)


@pytest.mark.parametrize("frame_size", [(384, 256), (100, 700), (1024, 1024), (64, 40)])
def test_anchors_survive_letterbox_target_and_decoding_in_any_frame_size(frame_size):
    rng = np.random.default_rng(sum(frame_size))
    width, height = frame_size
    anchors = np.array([[0.2 * width, 0.3 * height], [0.8 * width, 0.7 * height], [0.5 * width, 0.5 * height]])
    anchors += rng.uniform(-0.02, 0.02, anchors.shape) * [width, height]
    scale, offset = letterbox(frame_size, INPUT)
    assert min(INPUT[0] / width, INPUT[1] / height) == pytest.approx(scale)
    assert (offset >= 0).all() and (np.array(frame_size) * scale + 2 * offset == pytest.approx(np.array(INPUT)))
    stride = np.array(INPUT) / np.array(HEATMAP)
    target = centroid_target((anchors * scale + offset) / stride, HEATMAP, sigma=1.5)
    points, values = find_peaks(target[0], threshold=0.3, min_distance=2)
    assert len(points) == 3 and (values > 0.5).all()
    found = peaks_to_frame(points, INPUT, HEATMAP, scale, offset)
    order = [int(np.argmin(np.linalg.norm(anchors - point, axis=1))) for point in found]
    assert sorted(order) == [0, 1, 2]
    # within half a heatmap pixel plus the quarter-pixel step, in frame pixels
    assert np.abs(found - anchors[order]).max() <= 0.76 * stride.max() / scale


def test_find_peaks_threshold_min_distance_and_cap():
    heatmap = np.zeros((40, 40), np.float32)
    for (x, y), value in {(5, 5): 0.9, (7, 5): 0.8, (30, 30): 0.7, (20, 10): 0.5, (35, 5): 0.1}.items():
        heatmap[y, x] = value
    points, values = find_peaks(heatmap, threshold=0.2, min_distance=3)
    assert points.round().tolist() == [[5, 5], [30, 30], [20, 10]]     # (7, 5) is within 3 of (5, 5); 0.1 < 0.2
    assert values.tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert len(find_peaks(heatmap, threshold=0.2, min_distance=1)[0]) == 4
    capped, capped_values = find_peaks(heatmap, threshold=0.2, min_distance=3, max_peaks=2)
    assert capped.round().tolist() == [[5, 5], [30, 30]] and capped_values.tolist() == pytest.approx([0.9, 0.7])
    assert len(find_peaks(np.zeros((8, 8)), threshold=0.2, min_distance=2)[0]) == 0
    plateau = np.zeros((10, 10), np.float32)
    plateau[4:6, 4:6] = 1.0
    assert len(find_peaks(plateau, threshold=0.5, min_distance=2)[0]) == 1


def test_anchor_points_boxes_and_metrics():
    keypoints = np.zeros((3, 4, 3))
    keypoints[0, :, :] = [[10, 20, 2], [30, 40, 2], [0, 0, 0], [20, 100, 2]]
    keypoints[1, 1] = [50, 60, 2]
    anchors, valid = anchor_points(keypoints)
    assert valid.tolist() == [True, True, False]
    assert anchors[:2].tolist() == [[20, 60], [50, 60]]
    named, _ = anchor_points(keypoints, anchor_index=0)
    assert named[:2].tolist() == [[10, 20], [50, 60]]      # animal 1 has no keypoint 0: its box centre
    assert anchor_boxes([[50, 60]], [20, 30]).tolist() == [[40, 45, 20, 30]]

    truth = [np.array([[0.0, 0.0], [100.0, 0.0]]), np.array([[50.0, 50.0]])]
    sizes = [np.array([40.0, 40.0]), np.array([40.0])]
    found = [np.array([[3.0, 4.0], [100.0, 30.0], [98.0, 0.0]]), np.zeros((0, 2))]
    values, primary = centroid_metrics(found, truth, sizes, match_distance=0.25)
    # (3, 4) and (98, 0) match (within 10 px); (100, 30) is 28 px from its animal; the second image finds nothing
    assert values["precision"] == pytest.approx(2 / 3) and values["recall"] == pytest.approx(2 / 3)
    assert primary == pytest.approx(2 / 3) and values["distance_px"] == pytest.approx(3.5)


def _frame_set(root, frame_size, animals):
    """A COCO file of one black frame with a white dot at each animal's anchor."""
    width, height = frame_size
    image = np.zeros((height, width, 3), np.uint8)
    annotations = []
    for number, (x, y) in enumerate(animals):
        cv2.circle(image, (int(x), int(y)), 4, (255, 255, 255), -1)
        keypoints = [x - 10, y - 5, 2, x + 10, y + 5, 2]
        annotations.append({"id": number + 1, "image_id": 1, "category_id": 1, "keypoints": keypoints,
                            "num_keypoints": 2, "bbox": [x - 12, y - 7, 24, 14], "area": 336, "iscrowd": 0})
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "f.png"), image)
    coco = {"images": [{"id": 1, "file_name": "f.png", "width": width, "height": height}],
            "annotations": annotations, "categories": [{"id": 1, "name": "animal", "keypoints": ["a", "b"]}]}
    (root / "ann.json").write_text(json.dumps(coco))
    return root / "ann.json", root / "images"


def _bright_spots(image_tensor, count):
    brightness = image_tensor.numpy().sum(axis=0)
    points, _ = find_peaks(torch.from_numpy(cv2.GaussianBlur(brightness, (9, 9), 2)), brightness.min() + 1.0, 6, count)
    return points


@pytest.mark.parametrize("is_train", [False, True])
def test_dataset_targets_lie_on_the_animals_of_the_letterboxed_augmented_frame(tmp_path, is_train):
    animals = [(60, 50), (300, 200), (200, 120)]
    ann_file, image_dir = _frame_set(tmp_path, (384, 256), animals)
    augmentation = CentroidAugmentation(scale_factor=0.2, rotation_factor=20, rotation_prob=1.0, flip=True)
    dataset = CentroidDataset(ann_file, image_dir, INPUT, HEATMAP, sigma=1.5, is_train=is_train,
                              augmentation=augmentation if is_train else None)
    assert len(dataset) == 1 and dataset.anchors[0].tolist() == [list(map(float, a)) for a in animals]
    for seed in range(4 if is_train else 1):
        dataset.set_random_seed(seed)
        image, target, weight, meta = dataset[0]
        assert tuple(image.shape) == (3, INPUT[1], INPUT[0]) and tuple(target.shape) == (1, HEATMAP[1], HEATMAP[0])
        assert weight.tolist() == [[1.0]]
        peaks, _ = find_peaks(target[0], 0.5, 2)
        assert len(peaks) == 3
        spots = _bright_spots(image, 3) / 4.0       # input pixels -> heatmap pixels
        for peak in peaks:
            assert np.linalg.norm(spots - peak, axis=1).min() <= 1.0
        if not is_train:
            found = peaks_to_frame(peaks, INPUT, HEATMAP, float(meta["scale"]), meta["offset"])
            for anchor in animals:
                assert np.linalg.norm(found - anchor, axis=1).min() <= 4.0


def test_config_checks_of_the_centroid_model(tmp_path):
    yaml = tmp_path / "c.yaml"
    yaml.write_text("MODEL:\n  NAME: centroid_hrnet\n  NUM_JOINTS: 3\nDATASET:\n  CUTMIX: false\n")
    with pytest.raises(ConfigError, match="MODEL.NUM_JOINTS = 3 must be 1"):
        load_config(str(yaml))
    yaml.write_text("MODEL:\n  NAME: centroid_hrnet\n  NUM_JOINTS: 1\nDATASET:\n  CUTMIX: true\n")
    with pytest.raises(ConfigError, match="DATASET.CUTMIX must be false"):
        load_config(str(yaml))


# ---------------------------------------------------------------- import, train, infer
FRAMES, ANIMALS = 60, 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A synthetic 3-animal video imported with import_labels; the centroid YAML trained for a few epochs."""
    from kitpose.datasets import load_metainfo
    from kitpose.demo.video import render_multi_animal_video, write_video
    from kitpose.engine import run_training
    from kitpose.interop.labels_in import import_labels
    from kitpose.interop.tracks_io import save_tracked_labels

    root = tmp_path_factory.mktemp("centroid")
    video = render_multi_animal_video(FRAMES, ANIMALS, seed=0)
    write_video(root / "v.mp4", video.frames, video.fps)
    meta = load_metainfo("ap10k")
    save_tracked_labels(str(root / "v.slp"), str(root / "v.mp4"), video.keypoints, video.track_names,
                        meta.keypoints, meta.skeleton)
    report = import_labels(root / "v.slp", root / "data")
    cfg = load_config(report.centroid_yaml, ["OUTPUT_DIR", str(root / "output"), "LOG_DIR", str(root / "log"),
                                             "TRAIN.END_EPOCH", "12", "TRAIN.WARMUP_EPOCHS", "0.3",
                                             "PRINT_FREQ", "1000"])
    torch.manual_seed(0)
    summary = run_training(cfg)
    return {"root": root, "video": video, "report": report, "cfg": cfg, "summary": summary}


def test_import_writes_a_centroid_yaml_fitted_to_frames_and_animals(trained):
    report = trained["report"]
    assert report.centroid_yaml.endswith("data_centroid.yaml")
    cfg = load_config(report.centroid_yaml)
    assert cfg.MODEL.NAME == "centroid_hrnet" and cfg.MODEL.NUM_JOINTS == 1 and not cfg.DATASET.CUTMIX
    assert list(cfg.MODEL.IMAGE_SIZE) == [256, 176]               # 384x256 frames scaled by 2/3, sides % 16
    assert list(cfg.MODEL.HEATMAP_SIZE) == [64, 44]
    boxes = [ann["bbox"] for ann in json.loads((trained["root"] / "data/annotations/train.json").read_text())
             ["annotations"]]
    sides = np.array([max(box[2], box[3]) for box in boxes])
    assert cfg.CENTROID.BOX_SIZE[0] == pytest.approx(np.percentile(sides, 90), abs=0.06)
    assert cfg.CENTROID.MIN_DISTANCE >= 1
    # the pose YAML is unchanged beside it, and an --overwrite import replaces both
    assert load_config(report.yaml).MODEL.NAME == "kitpose_part"
    assert "data_centroid.yaml" in json.loads((trained["root"] / "data/import_report.json").read_text())[
        "centroid_yaml"]
    dataset = build_dataset(cfg, is_train=True)
    assert isinstance(dataset, CentroidDataset) and len(dataset) == report.train_images


def test_a_short_training_finds_the_animals(trained):
    summary = trained["summary"]
    # measured: validation F1 0.96 (2 threads) and 0.93 (1 thread) after 12 epochs of 6 steps; the margin
    # absorbs other CPUs' rounding, which changes the training's path
    assert summary.best_perf >= 0.5
    assert (summary.output_dir / "model_best.pth").is_file()
    # tools/test.py scores the same detections (its fast path changes only the last bits of the maps)
    from kitpose.engine import run_test
    cfg = trained["cfg"].clone()
    cfg.defrost()
    cfg.TEST.MODEL_FILE = str(summary.output_dir / "model_best.pth")
    report = run_test(cfg)
    assert report["metric"] == "centroid" and list(report["metrics"]) == ["F1", "precision", "recall", "distance_px"]
    assert report["primary"] == pytest.approx(summary.best_perf, abs=0.05)


def test_centroid_anchor_names_a_keypoint(trained):
    from kitpose.datasets import MetainfoError, centroid_anchor_index, config_metainfo

    cfg = trained["cfg"].clone()
    cfg.defrost()
    meta = config_metainfo(cfg)
    assert centroid_anchor_index(cfg, meta) is None
    cfg.CENTROID.ANCHOR = meta.keypoints[3]
    assert centroid_anchor_index(cfg, meta) == 3
    cfg.CENTROID.ANCHOR = "tail_tip_of_nothing"
    with pytest.raises(MetainfoError, match="CENTROID.ANCHOR 'tail_tip_of_nothing' is not a keypoint"):
        centroid_anchor_index(cfg, meta)


def test_centroid_detector_finds_what_validation_found_in_frames_of_any_size(trained):
    from kitpose.engine.validation import predict_centroids
    from kitpose.inference.centroid import CentroidDetector
    from kitpose.models import build_model, load_model_file

    cfg = trained["cfg"]
    checkpoint = trained["summary"].output_dir / "model_best.pth"
    dataset = build_dataset(cfg, is_train=False)
    model = build_model(cfg)
    load_model_file(model, checkpoint)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    context = type("Context", (), {"device": torch.device("cpu"), "is_main": True})()
    validated = predict_centroids(model, loader, cfg, context)
    detector = CentroidDetector(cfg, checkpoint)
    for index in range(0, len(dataset), 3):
        frame = cv2.imread(dataset.image_files[index])
        boxes, scores, categories = detector(frame)
        assert boxes.shape == (len(validated.points[index]), 4) and (categories == 1).all()
        assert (boxes[:, 2:] == cfg.CENTROID.BOX_SIZE[0]).all() and (np.diff(scores) <= 0).all()
        # the same anchors as the validation (the inference fast path changes only the last bits)
        assert np.abs(boxes[:, :2] + boxes[:, 2:] / 2 - validated.points[index]).max(initial=0) < 1e-2
        assert scores == pytest.approx(validated.scores[index], abs=1e-3)
    busiest = max(range(len(dataset)), key=lambda index: len(validated.points[index]))
    capped = CentroidDetector(cfg, checkpoint, max_animals=1)
    boxes, scores, _ = capped(cv2.imread(dataset.image_files[busiest]))
    assert len(boxes) == 1 and scores[0] == pytest.approx(validated.scores[busiest][0], abs=1e-3)
    # the frame at twice its size: the letterbox halves it again, the anchors come back in the large frame's
    # pixels; the best peak within one heatmap pixel (12 px of the large frame), with a low threshold so that
    # the resampling cannot push it under
    low = cfg.clone()
    low.defrost()
    low.CENTROID.PEAK_THRESHOLD = 0.05
    frame = cv2.imread(dataset.image_files[busiest])
    boxes, _, _ = CentroidDetector(low, checkpoint)(
        cv2.resize(frame, (2 * frame.shape[1], 2 * frame.shape[0]), interpolation=cv2.INTER_CUBIC))
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    assert np.linalg.norm(centres - validated.points[busiest][0] * 2, axis=1).min() < 12


def test_infer_uses_the_centroid_stage_for_images_videos_and_tracking(trained, tmp_path):
    from kitpose.inference.cli import infer_main
    from kitpose.models import build_model

    root = trained["root"]
    pose_cfg = load_config(trained["report"].yaml)
    torch.manual_seed(0)
    pose_checkpoint = tmp_path / "pose.pth"
    torch.save(build_model(pose_cfg).state_dict(), pose_checkpoint)
    centroid = ["--centroid-cfg", trained["report"].centroid_yaml, "--centroid-checkpoint",
                str(trained["summary"].output_dir / "model_best.pth")]
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), trained["video"].frames[3])
    assert infer_main(["--cfg", trained["report"].yaml, "--checkpoint", str(pose_checkpoint), "--input", str(frame),
                       "--out", str(tmp_path / "image"), "--no-draw", "--max-animals", "2"] + centroid) == 0
    records = json.loads((tmp_path / "image" / "results.json").read_text())
    assert 1 <= len(records) <= 2
    assert all(record["bbox"][2] == pytest.approx(trained["cfg"].CENTROID.BOX_SIZE[0], abs=0.01)
               for record in records)
    assert infer_main(["--cfg", trained["report"].yaml, "--checkpoint", str(pose_checkpoint),
                       "--input", str(root / "v.mp4"), "--out", str(tmp_path / "video"), "--no-draw", "--track",
                       "--max-animals", "3"] + centroid) == 0
    tracked = json.loads((tmp_path / "video" / "results.json").read_text())
    assert {record["frame"] for record in tracked} and all("track_id" in record for record in tracked)
    # the centroid YAML is not a pose YAML, and the box sources exclude each other
    assert infer_main(["--cfg", trained["report"].centroid_yaml, "--checkpoint", str(pose_checkpoint),
                       "--input", str(frame), "--out", str(tmp_path / "wrong")] + centroid) == 1
    with pytest.raises(SystemExit):
        infer_main(["--cfg", trained["report"].yaml, "--checkpoint", str(pose_checkpoint), "--input", str(frame),
                    "--out", str(tmp_path / "both"), "--boxes", "b.json"] + centroid)
