"""The detector stage with real torchvision detection models at random weights (no download): class
filter, score threshold, class-agnostic NMS, the pose crops at its boxes, and the weights-file errors."""
import json

import numpy as np
import pytest
import torch
import torchvision
from torchvision.ops import box_iou

from interop_support import walking_animal
from kitpose.config import load_config
from kitpose.inference import PosePredictor, open_input, run_on_source
from kitpose.inference.cli import infer_main
from kitpose.inference.detector import (COCO_ANIMALS, AnimalDetector, DetectorError, build_detector,
                                        coco_categories, default_weights_file)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORIES = coco_categories("fasterrcnn_resnet50_fpn")


@pytest.fixture(scope="module")
def random_faster_rcnn():
    torch.manual_seed(0)
    # score threshold 0: at random weights every class scores about 1/91, and all boxes must come out
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, box_score_thresh=0.0, min_size=192, max_size=320)
    return model.eval()


@pytest.fixture(scope="module")
def frame():
    return walking_animal(num_frames=1)[0][0]


def _frequent_classes(model, frame):
    """At random weights a few classes win most boxes (rarely the animals): the two most frequent, by name."""
    _, _, raw_labels = AnimalDetector(model, CATEGORIES, COCO_ANIMALS).raw(frame)
    labels_found, counts = np.unique(raw_labels, return_counts=True)
    named = [label for label in labels_found[np.argsort(-counts)] if CATEGORIES[label] != "N/A"]
    return tuple(CATEGORIES[label] for label in named[:2])


def test_class_filter_threshold_and_nms(random_faster_rcnn, frame):
    classes = _frequent_classes(random_faster_rcnn, frame)
    probe = AnimalDetector(random_faster_rcnn, CATEGORIES, classes, score_threshold=0.0, nms_iou=1.0)
    raw_boxes, raw_scores, raw_labels = probe.raw(frame)
    allowed = np.isin(raw_labels, [CATEGORIES.index(c) for c in classes])
    assert allowed.sum() >= 5 and (~allowed).sum() >= 5        # the filter has something to do
    threshold = float(np.median(raw_scores[allowed]))

    detector = AnimalDetector(random_faster_rcnn, CATEGORIES, classes, score_threshold=threshold, nms_iou=0.3)
    boxes, scores, labels = detector(frame)
    assert len(boxes) >= 1
    assert set(labels.tolist()) <= {CATEGORIES.index(c) for c in classes}
    assert (scores >= threshold).all() and (np.diff(scores) <= 0).all()
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    # every output is one of the model's own boxes
    for box, score in zip(corners, scores):
        assert np.isclose(raw_boxes, box, atol=1e-3).all(axis=1)[np.isclose(raw_scores, score)].any()
    # NMS: no two kept boxes overlap by more than the IoU, and every dropped candidate overlaps a better kept one
    iou = box_iou(torch.from_numpy(corners), torch.from_numpy(corners)).numpy()
    assert (iou[~np.eye(len(corners), dtype=bool)] <= 0.3 + 1e-6).all()
    candidates = allowed & (raw_scores >= threshold)
    kept = np.isclose(raw_boxes[:, None], corners[None], atol=1e-3).all(axis=2).any(axis=1) & candidates
    dropped = np.flatnonzero(candidates & ~kept)
    assert len(dropped) >= 1
    overlap = box_iou(torch.from_numpy(raw_boxes[dropped]), torch.from_numpy(corners)).numpy()
    better = raw_scores[dropped][:, None] <= scores[None]
    assert ((overlap > 0.3) & better).any(axis=1).all()


def test_pose_is_predicted_in_the_detector_boxes(random_faster_rcnn, frame, reference_model_files, tmp_path):
    import cv2
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    config, checkpoint = reference_model_files
    predictor = PosePredictor(load_config(config, ["TEST.OKS_THRE", "1.0"]), checkpoint, device="cpu")
    classes = _frequent_classes(random_faster_rcnn, frame)
    boxes, scores, labels = AnimalDetector(random_faster_rcnn, CATEGORIES, classes, 0.0, 0.5)(frame)
    detector = AnimalDetector(random_faster_rcnn, CATEGORIES, classes, score_threshold=0.0, nms_iou=0.5)
    summary = run_on_source(predictor, open_input(str(tmp_path / "frame.png")), str(tmp_path / "out"), draw=False,
                            show_progress=False, detector=detector)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert summary.detector_calls == 1 and len(results) == len(boxes) >= 1
    found = sorted((tuple(r["bbox"]), r["box_score"], r["category_id"]) for r in results)
    expected = sorted((tuple(round(float(v), 2) for v in box), float(s), int(c)) for box, s, c in zip(boxes, scores, labels))
    assert [f[0] for f in found] == [e[0] for e in expected]
    np.testing.assert_allclose([f[1] for f in found], [e[1] for e in expected], rtol=1e-6)
    assert [f[2] for f in found] == [e[2] for e in expected]


def test_missing_weights_say_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    path, _ = default_weights_file("ssdlite320_mobilenet_v3_large")
    assert path == str(tmp_path / "torch_home" / "hub" / "checkpoints" / "ssdlite320_mobilenet_v3_large_coco-a79551df.pth")
    with pytest.raises(DetectorError) as error:
        build_detector("ssdlite320_mobilenet_v3_large")
    message = str(error.value)
    assert "ssdlite320_mobilenet_v3_large_coco-a79551df.pth" in message and str(tmp_path / "torch_home") in message
    with pytest.raises(DetectorError, match="unknown"):
        build_detector("yolo")


def test_weights_file_is_loaded_strictly(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.get_model("ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None)
    torch.save(model.state_dict(), tmp_path / "ssd.pth")
    loaded = build_detector("ssdlite320_mobilenet_v3_large", str(tmp_path / "ssd.pth"))
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    state = model.state_dict()
    state.pop(next(iter(state)))
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(DetectorError, match="partial.pth do not load"):
        build_detector("ssdlite320_mobilenet_v3_large", str(tmp_path / "partial.pth"))


def test_infer_detector_errors_exit_1(reference_model_files, tmp_path, monkeypatch, caplog):
    import cv2
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    config, checkpoint = reference_model_files
    base = ["--cfg", config, "--checkpoint", checkpoint, "--device", "cpu", "--input", str(image), "--out",
            str(tmp_path / "out")]
    assert infer_main(base + ["--detector", "retinanet_resnet50_fpn"]) == 1
    assert "retinanet_resnet50_fpn_coco-eeacb38b.pth" in caplog.text
    assert infer_main(base + ["--detector", "retinanet_resnet50_fpn", "--det-classes", "dog", "unicorn"]) == 1
    assert "unicorn not COCO class name" in caplog.text
