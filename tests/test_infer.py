"""Inference tools: PosePredictor against the test pipeline, tools/infer.py on the real samples
(whole image, detection boxes, COCO files, unreadable files, video), tools/visualize.py.

The model is the reference fixture's tiny KITPose (untrained, but every code path runs)."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from kitpose.codecs import HeatmapCodec
from kitpose.config import load_config
from kitpose.datasets import TopDownCocoDataset, load_metainfo
from kitpose.engine.distributed import RunContext
from kitpose.engine.validation import predict_dataset
from kitpose.inference import (BoxFileError, PosePredictor, RESULTS_NAME, crop_input, load_detections, open_input,
                               run_on_source)
from kitpose.inference.cli import infer_main, visualize_main
from kitpose.models import build_model

AP10K_NAMES = load_metainfo("ap10k").keypoints


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_model(reference_model_files):
    """(config path, checkpoint path) of the reference fixture's tiny AP-10K model."""
    return reference_model_files


@pytest.fixture(scope="module")
def predictor(tiny_model):
    cfg_path, checkpoint = tiny_model
    return PosePredictor(load_config(cfg_path, ["TEST.BATCH_SIZE_PER_GPU", "8"]), checkpoint, device="cpu")


def _infer(tiny_model, *args):
    cfg_path, checkpoint = tiny_model
    return infer_main(["--cfg", cfg_path, "--checkpoint", checkpoint, "--device", "cpu", *map(str, args)])


def _results(out_dir):
    with open(os.path.join(out_dir, RESULTS_NAME)) as f:
        return json.load(f)


def _copy_image(source, target):
    shutil.copyfile(source, target)
    return str(target)


# ------------------------------------------------------------------ predictor = test pipeline
def test_predictor_reproduces_the_test_pipeline(predictor, samples_dir):
    """Detector boxes: the crops and the decoded keypoints equal those of TopDownCocoDataset + predict_dataset.

    The crops go through the network in the same batches of 8 as the loader's: the published
    clustering works on chunks of a batch, so the batch composition can move near-tie clusters."""
    coco = samples_dir / "coco"
    cfg = predictor.cfg
    # the model's metainfo (its flip pairs drive the flip test); COCO people also have 17 keypoints
    dataset = TopDownCocoDataset(coco / "test_coco.json", coco, predictor.meta, predictor.codec,
                                 is_train=False, use_gt_bbox=False,
                                 bbox_file=coco / "test_coco_det_AP_H_56.json", image_thre=0.9)
    loader = torch.utils.data.DataLoader(dataset, batch_size=predictor.batch_size, shuffle=False)
    context = RunContext(distributed=False, rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
    engine = predict_dataset(predictor.model, loader, cfg, context,
                           channels_last=cfg.TEST.CHANNELS_LAST)

    detections = load_detections(coco / "test_coco_det_AP_H_56.json", score_threshold=0.9)
    image_files = list(dict.fromkeys(engine.image_files))           # dataset order
    assert np.array_equal(np.asarray(engine.image_files), np.repeat(
        image_files, [engine.image_files.count(f) for f in image_files]))
    requests, row = [], 0
    for image_file in image_files:
        image = cv2.imread(image_file)
        boxes = detections.for_image(image_file)
        inputs, centers, scales = predictor.crops(image, boxes.boxes)
        for tensor, center, scale in zip(inputs, centers, scales):
            assert torch.allclose(tensor, dataset[row][0], atol=1e-5), image_file
            np.testing.assert_allclose(center, engine.boxes[row, :2], atol=1e-4)
            np.testing.assert_allclose(scale, engine.boxes[row, 2:4], atol=1e-6)
            row += 1
        requests.append((image, boxes.boxes, boxes.scores, None))
    assert row == len(dataset) >= 8
    original_oks = cfg.TEST.OKS_THRE
    cfg.defrost()
    cfg.TEST.OKS_THRE = 1.0           # keep every instance to compare them all
    try:
        predicted = predictor.predict_many(requests)
    finally:
        cfg.TEST.OKS_THRE = original_oks
        cfg.freeze()
    for image_file, instances in zip(image_files, predicted):
        rows = np.flatnonzero(np.asarray(engine.image_files) == image_file)
        assert len(instances) == len(rows)
        for keypoints, box in zip(instances.keypoints, instances.boxes):
            center = box[:2] + box[2:] / 2
            match = rows[np.argmin(np.abs(engine.boxes[rows, :2] - center).sum(axis=1))]
            np.testing.assert_allclose(keypoints, engine.preds[match], atol=1e-3)


def test_predictor_whole_image_and_empty(predictor, samples_dir):
    image = cv2.imread(str(samples_dir / "ap10k" / "000000000004.jpg"))
    whole = predictor.predict(image)
    assert whole.keypoints.shape == (1, 17, 3)
    np.testing.assert_array_equal(whole.boxes[0], [0, 0, image.shape[1], image.shape[0]])
    assert np.isfinite(whole.keypoints).all() and 0 < whole.scores[0] <= 1
    assert len(predictor.predict(image, np.zeros((0, 4)))) == 0
    # crops of the same box are what the network sees: RGB, ImageNet-normalised
    codec = HeatmapCodec((64, 64), (16, 16), 2.0)
    crop, center, scale = crop_input(image, [0, 0, image.shape[1], image.shape[0]], codec, color_rgb=True)
    bgr_crop, _, _ = crop_input(image, [0, 0, image.shape[1], image.shape[0]], codec, color_rgb=False)
    assert crop.shape == (3, 64, 64) and not np.allclose(crop, bgr_crop)
    np.testing.assert_allclose(center, [image.shape[1] / 2, image.shape[0] / 2])


# ------------------------------------------------------------------ tools/infer.py
def test_infer_folder_whole_image(tiny_model, samples_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert _infer(tiny_model, "--input", samples_dir / "ap10k", "--out", out) == 0
    results = _results(out)
    assert len(results) == 2                                  # two images, one whole-image box each
    assert {r["image_id"] for r in results} == {4, 37516}     # ids from the COCO-style stems
    for record in results:
        assert len(record["keypoints"]) == 17 * 3
        assert record["keypoint_names"] == AP10K_NAMES
        assert np.isfinite(record["keypoints"]).all()
    for stem in ("000000000004", "000000037516"):
        picture = cv2.imread(str(out / f"{stem}.jpg"))
        original = cv2.imread(str(samples_dir / "ap10k" / f"{stem}.jpg"))
        assert picture is not None and picture.shape == original.shape
        assert np.abs(picture.astype(int) - original).max() > 100   # something was drawn
    captured = capsys.readouterr()
    assert "0 unreadable input(s) skipped" in captured.out
    # stderr is not a terminal: one plain progress line per tenth of the inputs, no redraws
    assert "\r" not in captured.err and "infer: 100% (2/2 image, " in captured.err


def test_infer_detection_boxes(tiny_model, samples_dir, tmp_path):
    coco = samples_dir / "coco"
    detections = json.loads((coco / "test_coco_det_AP_H_56.json").read_text())
    kept = [d for d in detections if d["score"] >= 0.9]
    out = tmp_path / "out"
    # TEST.OKS_THRE 1.0: OKS-NMS keeps every instance, so each kept detection gives one
    assert _infer(tiny_model, "--input", str(coco / "*.jpg"), "--boxes", coco / "test_coco_det_AP_H_56.json",
                  "--box-thr", 0.9, "--out", out, "TEST.OKS_THRE", 1.0) == 0
    results = _results(out)
    assert len(results) == len(kept)
    for image_id in {d["image_id"] for d in kept}:
        expected = sorted(tuple(np.round(d["bbox"], 2)) for d in kept if d["image_id"] == image_id)
        got = sorted(tuple(r["bbox"]) for r in results if r["image_id"] == image_id)
        np.testing.assert_allclose(got, expected, atol=0.01)
    assert {r["file_name"] for r in results} == {str(p) for p in coco.glob("*.jpg")}
    # with the default OKS-NMS (TEST.OKS_THRE 0.9) near-duplicate boxes collapse
    assert _infer(tiny_model, "--input", str(coco / "*.jpg"), "--boxes", coco / "test_coco_det_AP_H_56.json",
                  "--box-thr", 0.9, "--out", tmp_path / "nms", "--no-draw") == 0
    assert 4 <= len(_results(tmp_path / "nms")) <= len(kept)
    assert not list((tmp_path / "nms").glob("*.jpg"))


def test_infer_coco_file_boxes_match_by_file_name(tiny_model, samples_dir, tmp_path):
    """A COCO dataset file as --boxes: AnimalKingdom names its images <video>/<frame>.jpg."""
    ak = samples_dir / "ak"
    annotations = json.loads((ak / "test_animalkingdom.json").read_text())
    out = tmp_path / "out"
    assert _infer(tiny_model, "--input", ak / "AAOYRUDX", "--boxes", ak / "test_animalkingdom.json",
                  "--out", out) == 0
    results = _results(out)
    file_of = {image["id"]: image["file_name"] for image in annotations["images"]}
    assert len(results) == len(annotations["annotations"])
    for record in results:
        annotation = next(a for a in annotations["annotations"] if a["image_id"] == record["image_id"])
        assert record["file_name"].endswith(file_of[record["image_id"]])
        np.testing.assert_allclose(record["bbox"], annotation["bbox"], atol=0.01)


def test_detection_matching_rules(tmp_path):
    boxes = [{"image_id": 785, "bbox": [1, 2, 3, 4], "score": 0.9},
             {"image_id": "dog", "bbox": [5, 6, 7, 8]},
             {"file_name": "sub/cat.png", "bbox": [9, 9, 9, 9], "category_id": 17, "score": 0.3},
             {"image_id": 2, "bbox": [0, 0, 0, 5]}]                       # w = 0: dropped
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(boxes))
    detections = load_detections(path)
    assert len(detections) == 3
    assert detections.for_image("/x/000000000785.jpg").image_id == 785
    np.testing.assert_array_equal(detections.for_image("a/dog.jpg").boxes, [[5, 6, 7, 8]])
    assert detections.for_image("a/dog.jpg").scores.tolist() == [1.0]       # score defaults to 1
    cat = detections.for_image("/data/sub/cat.png")
    assert cat.category_ids.tolist() == [17] and cat.scores.tolist() == pytest.approx([0.3])
    assert len(detections.for_image("/data/other/cow.png").boxes) == 0
    assert len(load_detections(path, score_threshold=0.5)) == 2                # 0.9 and the default 1
    assert len(load_detections(path, category_ids={17})) == 1
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": 1}]))
    with pytest.raises(BoxFileError, match=r"bad.json: entry 0 has no 'bbox'"):
        load_detections(tmp_path / "bad.json")


def test_infer_unreadable_inputs_are_counted_and_skipped(tiny_model, samples_dir, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    _copy_image(samples_dir / "ap10k" / "000000000004.jpg", folder / "good.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("a folder input reads image files only")
    out = tmp_path / "out"
    assert _infer(tiny_model, "--input", folder, "--out", out) == 0
    printed = capsys.readouterr().out
    assert "1 unreadable input(s) skipped: " in printed and "broken.jpg" in printed
    assert len(_results(out)) == 1 and (out / "good.jpg").is_file() and not (out / "broken.jpg").exists()
    # a glob takes every matching file, so the text file is counted as unreadable too
    assert _infer(tiny_model, "--input", str(folder / "*"), "--out", tmp_path / "glob", "--no-draw") == 0
    printed = capsys.readouterr().out
    assert "2 unreadable input(s) skipped" in printed and "notes.txt" in printed
    # nothing readable at all: exit status 1
    assert _infer(tiny_model, "--input", folder / "broken.jpg", "--out", tmp_path / "none") == 1


def test_infer_user_errors_exit_1(tiny_model, tmp_path, samples_dir, caplog):
    assert _infer(tiny_model, "--input", tmp_path / "missing", "--out", tmp_path / "o") == 1
    assert "no such file or folder" in caplog.text
    (tmp_path / "boxes.json").write_text("{not json")
    assert _infer(tiny_model, "--input", samples_dir / "ap10k", "--boxes", tmp_path / "boxes.json",
                  "--out", tmp_path / "o") == 1
    assert "boxes.json: not valid JSON" in caplog.text
    cfg_path, _ = tiny_model
    assert infer_main(["--cfg", cfg_path, "--checkpoint", str(tmp_path / "none.pth"), "--input",
                       str(samples_dir / "ap10k"), "--out", str(tmp_path / "o")]) == 1
    assert "none.pth" in caplog.text


def _write_video(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def _count_frames(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_infer_video(tiny_model, samples_dir, tmp_path):
    image = cv2.resize(cv2.imread(str(samples_dir / "ap10k" / "000000037516.jpg")), (160, 120))
    frames = [np.roll(image, 8 * i, axis=1) for i in range(5)]
    video = tmp_path / "walk.avi"
    _write_video(video, frames)
    assert open_input(video).kind == "video"
    boxes = tmp_path / "boxes.json"   # boxes of frames 1 and 3 only (image_id = frame number)
    boxes.write_text(json.dumps([{"image_id": 1, "bbox": [10, 10, 100, 80], "score": 0.8},
                                 {"image_id": 3, "bbox": [20, 10, 100, 80], "score": 0.7}]))
    out = tmp_path / "out"
    assert _infer(tiny_model, "--input", video, "--out", out) == 0
    assert _count_frames(out / "walk.mp4") == len(frames)
    results = _results(out)
    assert [r["frame"] for r in results] == list(range(len(frames)))
    assert [r["image_id"] for r in results] == list(range(len(frames)))
    assert _infer(tiny_model, "--input", video, "--boxes", boxes, "--out", tmp_path / "boxed") == 0
    boxed = _results(tmp_path / "boxed")
    assert [r["frame"] for r in boxed] == [1, 3]
    assert [r["box_score"] for r in boxed] == pytest.approx([0.8, 0.7])
    assert _count_frames(tmp_path / "boxed" / "walk.mp4") == len(frames)   # every frame is written


def test_truncated_video_is_counted_and_fails_unless_allowed(tiny_model, tmp_path, caplog):
    rng = np.random.default_rng(0)
    video = tmp_path / "walk.avi"
    _write_video(video, [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(30)])
    content = video.read_bytes()
    video.write_bytes(content[: len(content) // 2])      # the header still announces 30 frames
    source = open_input(video)
    assert source.total == 30
    read = sum(frame.image is not None for frame in source.frames())
    assert 0 < read < 30 and source.missing_frames() == 30 - read
    assert _infer(tiny_model, "--input", video, "--out", tmp_path / "out", "--no-draw") == 1
    assert (f"the video ended after {read} of the 30 frames its header announces: {30 - read} frame(s) missing"
            in caplog.text)
    assert len(_results(tmp_path / "out")) == read        # the frames read are kept
    assert _infer(tiny_model, "--input", video, "--out", tmp_path / "allowed", "--no-draw",
                  "--allow-short-video") == 0
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(b"RIFF but nothing else")
    assert _infer(tiny_model, "--input", damaged, "--out", tmp_path / "damaged", "--no-draw") == 1
    assert f"{damaged}: cannot be opened as a video" in caplog.text


def test_run_on_source_summary(predictor, samples_dir, tmp_path):
    source = open_input(str(samples_dir / "coco" / "*.jpg"))
    summary = run_on_source(predictor, source, tmp_path, show_progress=False)
    assert summary.num_inputs == 4 and summary.num_instances == 4 and not summary.unreadable
    assert len(summary.outputs) == 4 and all(os.path.isfile(p) for p in summary.outputs)


# ------------------------------------------------------------------ tools/visualize.py
def test_visualize_writes_parts_png(tiny_model, samples_dir, tmp_path, capsys):
    cfg_path, checkpoint = tiny_model
    out = tmp_path / "vis" / "parts.png"
    image = samples_dir / "ap10k" / "000000037516.jpg"
    assert visualize_main(["--cfg", cfg_path, "--checkpoint", checkpoint, "--device", "cpu", "--image", str(image),
                           "--boxes", str(samples_dir / "ap10k" / "test_ap10k.json"), "--out", str(out)]) == 0
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > 400 and picture.shape[1] > 600
    parts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("part ")]
    assert len(parts) == 4                                   # NUM_BP 4
    listed = [name.strip() for line in parts for name in line.split(": ", 1)[1].split(", ")]
    assert sorted(listed) == sorted(AP10K_NAMES)             # every keypoint in exactly one part
    assert visualize_main(["--cfg", cfg_path, "--checkpoint", checkpoint, "--device", "cpu", "--image", str(image),
                           "--boxes", str(samples_dir / "ap10k" / "test_ap10k.json"), "--instance", "3",
                           "--out", str(out)]) == 1


def test_visualize_without_part_prompts(tiny_model, samples_dir, tmp_path, capsys):
    """NUM_BP 0 (no clustering): heatmaps only, no part list."""
    cfg_path, _ = tiny_model
    model = build_model(load_config(cfg_path, ["MODEL.NUM_BP", "0"]))
    checkpoint = tmp_path / "no_parts.pth"
    torch.save(model.state_dict(), checkpoint)
    out = tmp_path / "heatmaps.png"
    assert visualize_main(["--cfg", cfg_path, "--checkpoint", str(checkpoint), "--device", "cpu", "--image",
                           str(samples_dir / "ap10k" / "000000000004.jpg"), "--box", "100", "50", "400", "300",
                           "--out", str(out), "MODEL.NUM_BP", "0"]) == 0
    picture = cv2.imread(str(out))
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("part ")]
    with_parts = tmp_path / "with_parts.png"
    assert visualize_main(["--cfg", cfg_path, "--checkpoint", tiny_model[1], "--device", "cpu", "--image",
                           str(samples_dir / "ap10k" / "000000000004.jpg"), "--box", "100", "50", "400", "300",
                           "--out", str(with_parts)]) == 0
    # the same crop and heatmaps, without the part panels
    assert picture.std() > 10 and picture.size < cv2.imread(str(with_parts)).size


def test_limb_colors_of_no_limbs_is_empty():
    from kitpose.vis.draw import limb_colors
    assert limb_colors(0) == []
    assert len(set(limb_colors(5))) == 5


def test_frames_option_keeps_the_frame_numbers(tiny_model, samples_dir, tmp_path, caplog):
    """--frames START:STOP[:STEP] runs on those frames of a video only, numbered as in the video."""
    image = cv2.resize(cv2.imread(str(samples_dir / "ap10k" / "000000037516.jpg")), (160, 120))
    video = tmp_path / "walk.avi"
    _write_video(video, [np.roll(image, 4 * i, axis=1) for i in range(12)])
    source = open_input(video, (3, 10, 3))
    assert source.total == 3 and [frame.index for frame in source.frames()] == [3, 6, 9]
    assert source.missing_frames() == 0
    out = tmp_path / "out"
    assert _infer(tiny_model, "--input", video, "--out", out, "--no-draw", "--frames", "8:20") == 0   # 8..11
    assert [r["frame"] for r in _results(out)] == [8, 9, 10, 11]
    assert _infer(tiny_model, "--input", video, "--out", tmp_path / "none", "--frames", "12:20") == 1
    assert "--frames 12:20" in caplog.text and "has 12 frame(s)" in caplog.text
