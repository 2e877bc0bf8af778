"""Metrics on the real samples: OKS AP/AR equal xtcocotools, PCK by hand, the top-down driver."""
import contextlib
import copy
import io
import json
import logging
import math

import numpy as np
import pytest

from kitpose.codecs.affine import box_to_center_scale
from kitpose.datasets import load_metainfo
from kitpose.config import load_config
from kitpose.evaluation import (OKS_METRIC_NAMES, evaluate_topdown, evaluation_settings, format_metrics_table,
                                instance_scores, oks_metrics, pck_metrics)

SAMPLES = {"ap10k": "ap10k/test_ap10k.json", "coco": "coco/test_coco.json", "ak": "ak/test_animalkingdom.json"}
ASPECT_RATIO = 192 / 256


def evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, output_dir, test_cfg=None, **overrides):
    """evaluate_topdown with the config's TEST settings (defaults unless `test_cfg`), some overridden."""
    settings = evaluation_settings(test_cfg if test_cfg is not None else load_config(None).TEST, meta)
    return evaluate_topdown(meta, ann_file, preds, boxes, image_ids, ann_ids, output_dir, **{**settings, **overrides})


def load_json(path):
    with open(path) as f:
        return json.load(f)


def scored_annotations(ann_file):
    """Non-crowd GT annotations with at least one labelled joint (those a GT-box test set holds)."""
    return [ann for ann in load_json(ann_file)["annotations"]
            if not ann.get("iscrowd", 0) and max(ann["keypoints"][2::3]) > 0]


def gt_as_results(ann_file):
    results = []
    for ann in scored_annotations(ann_file):
        keypoints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        keypoints[:, 2] = 1.0
        results.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "ann_id": ann["id"],
                        "keypoints": keypoints.ravel().tolist(), "score": 1.0})
    return results


def perturbed_results(ann_file, seed, noise):
    """GT keypoints with seeded noise (`noise` x box size), random scores, one false positive per image."""
    rng = np.random.default_rng(seed)
    results = []
    for ann in scored_annotations(ann_file):
        keypoints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        size = max(ann["bbox"][2], ann["bbox"][3])
        keypoints[:, :2] += rng.normal(0.0, noise * size, size=(len(keypoints), 2))
        keypoints[:, 2] = rng.uniform(0.1, 1.0, size=len(keypoints))
        results.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "ann_id": ann["id"],
                        "keypoints": keypoints.ravel().tolist(), "score": float(rng.uniform(0.2, 1.0))})
        false_positive = keypoints.copy()
        false_positive[:, :2] += 0.5 * size
        results.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "ann_id": -1,
                        "keypoints": false_positive.ravel().tolist(), "score": float(rng.uniform(0.0, 0.5))})
    return results


def xtcocotools_stats(ann_file, results, sigmas):
    """xtcocotools called directly, as its documentation shows.

    The AK sample's annotations use category 4, which its 'categories' list lacks,
    so the categories to evaluate are given explicitly (as oks_metrics does).
    """
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        dt = gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(gt, dt, "keypoints", np.asarray(sigmas), use_area=True)
        evaluator.params.catIds = sorted({a["category_id"] for a in gt.dataset["annotations"]} | set(gt.getCatIds()))
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(v) for v in evaluator.stats]


def gt_box_inputs(ann_file, num_joints, maxval=0.9):
    """evaluate_topdown inputs that put each GT pose in its own GT box."""
    anns = scored_annotations(ann_file)
    preds = np.zeros((len(anns), num_joints, 3))
    boxes = np.zeros((len(anns), 6))
    for i, ann in enumerate(anns):
        preds[i] = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        preds[i, :, 2] = maxval
        center, scale = box_to_center_scale(ann["bbox"], ASPECT_RATIO)
        boxes[i] = [*center, *scale, scale[0] * scale[1] * 200 ** 2, 1.0]
    return preds, boxes, [a["image_id"] for a in anns], [a["id"] for a in anns]


# ------------------------------------------------------------------ OKS AP/AR
@pytest.mark.parametrize("name", ["ap10k", "coco", "ak"])
def test_gt_keypoints_give_perfect_ap(samples_dir, name):
    ann_file = samples_dir / SAMPLES[name]
    metrics = oks_metrics(ann_file, gt_as_results(ann_file), load_metainfo(name).sigmas)
    assert list(metrics) == list(OKS_METRIC_NAMES)
    for key in ("AP", "AP50", "AP75", "AR", "AR50", "AR75"):
        assert metrics[key] == pytest.approx(1.0), key


# AK's sigmas are all 0.025, so it needs less noise for OKS values that are not ~0
@pytest.mark.parametrize("name,seed,noise", [("ap10k", 0, 0.05), ("coco", 1, 0.05), ("ak", 2, 0.01)])
def test_perturbed_predictions_equal_xtcocotools(samples_dir, tmp_path, name, seed, noise):
    ann_file = samples_dir / SAMPLES[name]
    sigmas = load_metainfo(name).sigmas
    results = perturbed_results(ann_file, seed, noise)
    expected = xtcocotools_stats(ann_file, results, sigmas)
    metrics = oks_metrics(ann_file, results, sigmas)
    assert [metrics[k] for k in OKS_METRIC_NAMES] == expected
    assert 0.0 < metrics["AP"] < 1.0  # noise and false positives make the comparison non-trivial
    # the same through a results file; the caller's dicts are left as they were
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    from_file = oks_metrics(str(ann_file), path, sigmas)
    assert [from_file[k] for k in OKS_METRIC_NAMES] == expected
    assert all("bbox" not in r and "id" not in r for r in results)


def test_other_sigmas_change_ap(samples_dir):
    ann_file = samples_dir / SAMPLES["coco"]
    results = perturbed_results(ann_file, 1, 0.05)
    coco_ap = oks_metrics(ann_file, results, load_metainfo("coco").sigmas)["AP"]
    wide_ap = oks_metrics(ann_file, results, np.full(17, 0.2))["AP"]
    assert wide_ap > coco_ap


def test_oks_metrics_empty_and_bad_input(samples_dir, caplog):
    ann_file = samples_dir / SAMPLES["coco"]
    sigmas = load_metainfo("coco").sigmas
    with caplog.at_level(logging.WARNING):
        assert oks_metrics(ann_file, [], sigmas) == {name: 0.0 for name in OKS_METRIC_NAMES}
    assert "no results" in caplog.text
    good = gt_as_results(ann_file)[0]
    with pytest.raises(ValueError, match="image_id 999"):
        oks_metrics(ann_file, [dict(good, image_id=999)], sigmas)
    with pytest.raises(ValueError, match="category_id 7"):
        oks_metrics(ann_file, [dict(good, category_id=7)], sigmas)
    with pytest.raises(ValueError, match="expected 51"):
        oks_metrics(ann_file, [dict(good, keypoints=good["keypoints"][:30])], sigmas)
    with pytest.raises(ValueError, match="annotation id 9284"):  # AP-10K GT read with 23 sigmas
        oks_metrics(samples_dir / SAMPLES["ap10k"], [], np.full(23, 0.025))
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        oks_metrics(samples_dir / "nowhere.json", [good], sigmas)


# ------------------------------------------------------------------ PCK
def test_ak_gt_keypoints_give_perfect_pck(samples_dir):
    ann_file = samples_dir / SAMPLES["ak"]
    table = pck_metrics(ann_file, gt_as_results(ann_file), load_metainfo("ak"))
    assert list(table) == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mouth", "Tail", "Mean"]
    assert table["Mean"] == 1.0
    # the sample labels Head, both eyes, Shoulder_Left, Elbow_Left, Wrist_Left only
    assert table["Head"] == table["Shoulder"] == table["Elbow"] == table["Wrist"] == 1.0
    for row in ("Hip", "Knee", "Ankle", "Mouth", "Tail"):
        assert math.isnan(table[row]), row


def test_ak_pck_by_hand(samples_dir):
    """Displace chosen joints by known fractions of max(w, h) and count by hand.

    Visible per annotation (two annotations): Head_Mid_Top 0, Eye_Left 1, Eye_Right 2,
    Shoulder_Left 7, Elbow_Left 9, Wrist_Left 11 -> 12 visible joints.
    ann 1: Head moved 0.06 (miss), Shoulder_Left 0.04 (hit), Eye_Left 0.2 (miss).
    ann 2: Elbow_Left moved 0.1 (miss), Wrist_Left 0.049 (hit), Shoulder_Left 0.051 (miss).
    The normaliser is the loader's clean box (x2 - x1 + 1 for AnimalKingdom: the box width here).
    The published AnimalKingdom evaluation adds 1 px to every prediction first; the predictions
    are made 1 px short to cancel it.
    """
    ann_file = samples_dir / SAMPLES["ak"]
    results = gt_as_results(ann_file)
    size = {ann["id"]: max(ann["bbox"][2:]) for ann in load_json(ann_file)["annotations"]}
    moves = {1: {0: 0.06, 7: 0.04, 1: 0.2}, 2: {9: 0.1, 11: 0.049, 7: 0.051}}
    for result in results:
        keypoints = np.asarray(result["keypoints"]).reshape(-1, 3)
        for joint, fraction in moves[result["ann_id"]].items():
            # along a diagonal, so both coordinates change
            keypoints[joint, :2] += fraction * size[result["ann_id"]] / math.sqrt(2)
        result["keypoints"] = keypoints.ravel().tolist()
    meta = load_metainfo("ak")
    assert meta.loader.pck_prediction_offset == 1.0
    uncompensated = pck_metrics(ann_file, results, meta, threshold=0.05)
    for result in results:
        result["keypoints"] = (np.asarray(result["keypoints"]).reshape(-1, 3) - [1, 1, 0]).ravel().tolist()
    table = pck_metrics(ann_file, results, meta, threshold=0.05)
    assert uncompensated["Shoulder"] == 0.0 != table["Shoulder"]   # the 1 px shift moves the 0.04 hit out
    assert table["Head"] == pytest.approx(1 / 2)
    assert table["Shoulder"] == pytest.approx(1 / 2)   # one hit (ann 1), one miss (ann 2)
    assert table["Elbow"] == pytest.approx(1 / 2)
    assert table["Wrist"] == pytest.approx(2 / 2)
    assert table["Mean"] == pytest.approx(8 / 12)      # 12 visible, 4 misses
    per_joint = pck_metrics(ann_file, results, load_metainfo("ak"), per_joint=True)
    assert per_joint["Eye_Left"] == pytest.approx(1 / 2) and per_joint["Eye_Right"] == 1.0
    assert per_joint["Mean"] == table["Mean"]


def test_pck_weights_left_right_by_visible_count(tmp_path):
    """A 4-keypoint custom dataset: groups undefined -> per-joint rows; Mean weights by visible count."""
    meta_file = tmp_path / "meta.json"
    meta_file.write_text(json.dumps({
        "name": "quad", "keypoints": ["nose", "tail", "left_paw", "right_paw"], "flip_pairs": [[2, 3]],
        "upper_body_ids": [0, 2, 3], "lower_body_ids": [1], "skeleton": [[0, 1]],
        "joint_weights": [1, 1, 1, 1], "sigmas": [0.05] * 4}))
    meta = load_metainfo(str(meta_file))
    # box 100 x 50 -> normaliser 100; threshold 0.05 -> 5 px
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 300, "height": 300}],
          "categories": [{"id": 1, "name": "quad"}],
          "annotations": [
              {"id": 10, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 50], "area": 5000, "iscrowd": 0,
               "keypoints": [10, 10, 2, 20, 20, 2, 30, 30, 2, 0, 0, 0]},
              {"id": 11, "image_id": 1, "category_id": 1, "bbox": [100, 0, 100, 50], "area": 5000, "iscrowd": 0,
               "keypoints": [110, 10, 2, 120, 20, 1, 130, 30, 2, 140, 40, 2]},
              {"id": 12, "image_id": 1, "category_id": 1, "bbox": [0, 100, 100, 50], "area": 5000, "iscrowd": 0,
               "keypoints": [10, 110, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]}]}
    ann_file = tmp_path / "gt.json"
    ann_file.write_text(json.dumps(gt))
    results = [
        {"ann_id": 10, "image_id": 1, "keypoints": [14, 10, 1, 26, 20, 1, 30, 30, 1, 500, 500, 1]},   # hit miss hit
        {"ann_id": 11, "image_id": 1, "keypoints": [110, 15.5, 1, 120, 20, 1, 130, 34, 1, 150, 40, 1]},  # miss hit hit miss
    ]  # ann 12 has no prediction: its visible nose counts as a miss
    table = pck_metrics(ann_file, results, meta)
    assert list(table) == ["nose", "tail", "left_paw", "right_paw", "Mean"]
    assert table["nose"] == pytest.approx(1 / 3)
    assert table["tail"] == pytest.approx(1 / 2)
    assert table["left_paw"] == pytest.approx(2 / 2)
    assert table["right_paw"] == pytest.approx(0 / 1)
    assert table["Mean"] == pytest.approx(4 / 8)
    with pytest.raises(ValueError, match="ann_id 99"):
        pck_metrics(ann_file, [dict(results[0], ann_id=99)], meta)
    with pytest.raises(ValueError, match="ann_id -1"):
        pck_metrics(ann_file, [dict(results[0], ann_id=-1)], meta)
    with pytest.raises(ValueError, match="second prediction for ann_id 10"):
        pck_metrics(ann_file, [results[0], results[0]], meta)


# ------------------------------------------------------------------ top-down driver
def test_instance_scores():
    maxvals = np.array([[0.9, 0.5, 0.1, 0.3], [0.1, 0.2, 0.0, 0.15]])
    scores = instance_scores(maxvals, np.array([0.8, 0.9]), 0.2)
    # (0.9 + 0.5 + 0.3) / 3 * 0.8; nothing above 0.2 (0.2 is not) -> 0
    np.testing.assert_allclose(scores, [(0.9 + 0.5 + 0.3) / 3 * 0.8, 0.0])


@pytest.mark.parametrize("name", ["ap10k", "coco"])
def test_evaluate_topdown_gt_boxes(samples_dir, tmp_path, name):
    ann_file = samples_dir / SAMPLES[name]
    meta = load_metainfo(name)
    preds, boxes, image_ids, ann_ids = gt_box_inputs(ann_file, meta.num_keypoints)
    name_values, primary = evaluate(meta, str(ann_file), preds, boxes, image_ids, ann_ids, str(tmp_path),
                                            set_name="sample")
    assert list(name_values) == list(OKS_METRIC_NAMES)
    assert primary == name_values["AP"] == pytest.approx(1.0)
    written = load_json(tmp_path / "results" / "keypoints_sample_results.json")
    assert len(written) == len(ann_ids)  # no GT instance is a duplicate of another
    assert {r["ann_id"] for r in written} == set(ann_ids)
    categories = {a["id"]: a["category_id"] for a in load_json(ann_file)["annotations"]}
    assert all(r["category_id"] == categories[r["ann_id"]] for r in written)
    assert all(r["score"] == pytest.approx(0.9) for r in written)  # box score 1 x mean maxval 0.9


def test_evaluate_topdown_perturbed_equals_xtcocotools_on_written_file(samples_dir, tmp_path):
    ann_file = samples_dir / SAMPLES["coco"]
    meta = load_metainfo("coco")
    preds, boxes, image_ids, ann_ids = gt_box_inputs(ann_file, meta.num_keypoints)
    rng = np.random.default_rng(5)
    preds[:, :, :2] += rng.normal(0, 6.0, size=preds[:, :, :2].shape)
    preds[:, :, 2] = rng.uniform(0, 1, size=preds.shape[:2])
    boxes[:, 5] = rng.uniform(0.5, 1.0, size=len(boxes))
    name_values, primary = evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, tmp_path,
                                            in_vis_thre=0.2, oks_thre=0.9)
    written = load_json(tmp_path / "results" / "keypoints_val_results.json")
    assert [name_values[k] for k in OKS_METRIC_NAMES] == xtcocotools_stats(ann_file, written, meta.sigmas)
    assert 0.0 < primary < 1.0
    expected_scores = instance_scores(preds[:, :, 2], boxes[:, 5], 0.2)
    by_ann = {r["ann_id"]: r["score"] for r in written}
    assert [by_ann[a] for a in ann_ids] == pytest.approx(expected_scores.tolist())


def test_evaluate_topdown_pck_on_ak(samples_dir, tmp_path):
    ann_file = samples_dir / SAMPLES["ak"]
    meta = load_metainfo("ak")
    preds, boxes, image_ids, ann_ids = gt_box_inputs(ann_file, meta.num_keypoints)
    name_values, primary = evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, tmp_path,
                                            metric="pck", set_name="test")
    assert primary == name_values["Mean"] == 1.0
    assert list(name_values)[-1] == "Mean" and "Tail" in name_values
    assert len(load_json(tmp_path / "results" / "keypoints_test_results.json")) == len(ann_ids)


def test_evaluate_topdown_reads_test_config_and_rejects_bad_input(samples_dir, tmp_path):
    ann_file = samples_dir / SAMPLES["coco"]
    meta = load_metainfo("coco")
    preds, boxes, image_ids, ann_ids = gt_box_inputs(ann_file, meta.num_keypoints)
    preds[:, :, 2] = np.linspace(0.05, 0.95, meta.num_keypoints)
    test_cfg = load_config(None, ["TEST.IN_VIS_THRE", "0.5"]).TEST
    evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, tmp_path, test_cfg)
    written = load_json(tmp_path / "results" / "keypoints_val_results.json")
    maxvals = np.linspace(0.05, 0.95, meta.num_keypoints)
    assert written[0]["score"] == pytest.approx(maxvals[maxvals > 0.5].mean())
    # an explicit setting wins over the config node
    evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, tmp_path, test_cfg, in_vis_thre=0.0)
    written = load_json(tmp_path / "results" / "keypoints_val_results.json")
    assert written[0]["score"] == pytest.approx(maxvals.mean())

    with pytest.raises(ValueError, match=r"\[N, 17, 3\]"):
        evaluate(meta, ann_file, preds[:, :5], boxes, image_ids, ann_ids, tmp_path)
    with pytest.raises(ValueError, match="boxes"):
        evaluate(meta, ann_file, preds, boxes[:-1], image_ids, ann_ids, tmp_path)
    with pytest.raises(ValueError, match="metric"):
        evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, tmp_path, metric="map")
    with pytest.raises(ValueError, match="ann_id 123"):
        evaluate(meta, ann_file, preds[:1], boxes[:1], image_ids[:1], [123], tmp_path)
    ap10k_file = samples_dir / SAMPLES["ap10k"]
    ap10k_preds, ap10k_boxes, ap10k_images, _ = gt_box_inputs(ap10k_file, 17)
    with pytest.raises(ValueError, match="pass category_ids"):
        evaluate(load_metainfo("ap10k"), ap10k_file, ap10k_preds, ap10k_boxes, ap10k_images,
                         [-1] * len(ap10k_images), tmp_path)


def test_evaluate_topdown_without_annotations_writes_results_only(samples_dir, tmp_path):
    """COCO test-dev style: an image-info file; results go to the server, nothing is evaluated here."""
    gt = load_json(samples_dir / SAMPLES["coco"])
    info_file = tmp_path / "image_info.json"
    info_file.write_text(json.dumps({"images": gt["images"], "categories": gt["categories"]}))
    meta = load_metainfo("coco")
    preds, boxes, image_ids, _ = gt_box_inputs(samples_dir / SAMPLES["coco"], meta.num_keypoints)
    name_values, primary = evaluate(meta, info_file, preds, boxes, image_ids, [-1] * len(image_ids),
                                            tmp_path, set_name="test-dev")
    assert (name_values, primary) == ({}, 0.0)
    written = load_json(tmp_path / "results" / "keypoints_test-dev_results.json")
    assert len(written) == len(image_ids) and all(r["category_id"] == 1 for r in written)


def test_format_metrics_table():
    table = format_metrics_table({"AP": 0.7663, "AP50": 0.9, "Mean": float("nan")}, "kitpose_w32")
    lines = table.splitlines()
    assert lines[0] == "| Arch | AP | AP50 | Mean |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| kitpose_w32 | 0.766 | 0.900 | nan |"


# ------------------------------------------------------------------ detector boxes + OKS-NMS
def iou(box, boxes):
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter)


def detector_predictions(ann_file, centers, scales, scores, image_ids):
    """Per detection: the keypoints of its best-IoU GT person (IoU >= 0.4), else a fixed pattern in the box.

    Returns preds [N, 17, 3], boxes [N, 6] and the matched GT id per detection (-1 if none).
    """
    people = scored_annotations(ann_file)
    pattern = np.random.default_rng(7).uniform(-0.4, 0.4, size=(17, 2))
    preds = np.zeros((len(centers), 17, 3))
    boxes = np.zeros((len(centers), 6))
    matched = np.full(len(centers), -1)
    for i, (center, scale, score, image_id) in enumerate(zip(centers, scales, scores, image_ids)):
        size = np.asarray(scale) * 200 / 1.25
        box = np.array([*(center - size / 2), *size])
        candidates = [p for p in people if p["image_id"] == image_id]
        overlaps = iou(box, np.array([p["bbox"] for p in candidates])) if candidates else np.zeros(0)
        if overlaps.size and overlaps.max() >= 0.4:
            person = candidates[int(overlaps.argmax())]
            matched[i] = person["id"]
            preds[i] = np.asarray(person["keypoints"], dtype=np.float64).reshape(17, 3)
            preds[i, :, 2] = np.where(preds[i, :, 2] > 0, 0.9, 0.1)
        else:
            preds[i, :, :2] = center + pattern * size
            preds[i, :, 2] = 0.3
        boxes[i] = [*center, *scale, scale[0] * scale[1] * 200 ** 2, score]
    return preds, boxes, matched


def greedy_nms_reference(preds, scores, areas, image_ids, sigmas, thr):
    """Per-image greedy OKS-NMS written as plain loops."""
    variances = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    keep = []
    for image_id in sorted(set(image_ids)):
        order = sorted((i for i in range(len(preds)) if image_ids[i] == image_id), key=lambda i: -scores[i])
        while order:
            best = order.pop(0)
            keep.append(best)
            survivors = []
            for other in order:
                total = 0.0
                for j in range(len(variances)):
                    squared = ((preds[best, j, :2] - preds[other, j, :2]) ** 2).sum()
                    total += math.exp(-squared / variances[j] / ((areas[best] + areas[other]) / 2 + np.spacing(1)) / 2)
                if total / len(variances) <= thr:
                    survivors.append(other)
            order = survivors
    return keep


def check_detector_path(ann_file, preds, boxes, image_ids, matched, name_values, written, meta):
    scores = instance_scores(preds[:, :, 2], boxes[:, 5], 0.2)
    keep = greedy_nms_reference(preds, scores, boxes[:, 4], list(image_ids), meta.sigmas, 0.9)
    assert sorted((r["image_id"], round(r["score"], 12)) for r in written) == \
        sorted((int(image_ids[i]), round(float(scores[i]), 12)) for i in keep)
    # every GT person found by several boxes survives exactly once, with its best-scored box
    kept_matches = matched[keep]
    people = sorted(set(matched[matched >= 0]))
    assert len(people) >= 8 and all((kept_matches == p).sum() == 1 for p in people)
    assert all(max(scores[matched == p]) in scores[keep] for p in people)
    assert (matched >= 0).sum() > 2 * len(people)  # there were duplicates to remove
    assert all(r["ann_id"] == -1 and r["category_id"] == 1 for r in written)
    assert [name_values[k] for k in OKS_METRIC_NAMES] == xtcocotools_stats(ann_file, written, meta.sigmas)


def test_detector_boxes_with_oks_nms(samples_dir, tmp_path):
    ann_file = samples_dir / SAMPLES["coco"]
    meta = load_metainfo("coco")
    detections = load_json(samples_dir / "coco" / "test_coco_det_AP_H_56.json")
    centers, scales = zip(*(box_to_center_scale(d["bbox"], ASPECT_RATIO) for d in detections))
    image_ids = np.array([d["image_id"] for d in detections])
    preds, boxes, matched = detector_predictions(ann_file, centers, scales, [d["score"] for d in detections],
                                                 image_ids)
    ann_ids = np.full(len(detections), -1)
    name_values, primary = evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, tmp_path)
    written = load_json(tmp_path / "results" / "keypoints_val_results.json")
    check_detector_path(ann_file, preds, boxes, image_ids, matched, name_values, written, meta)
    # every person is found with its GT keypoints and the leftovers score lower: AP 1 (AR too)
    assert primary == name_values["AR"] == pytest.approx(1.0)
    # an OKS threshold above 1 suppresses nothing
    evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, tmp_path / "all", oks_thre=1.5)
    assert len(load_json(tmp_path / "all" / "results" / "keypoints_val_results.json")) == len(detections)
    # soft NMS drops nothing but keeps at most 20 per image
    evaluate(meta, ann_file, preds, boxes, image_ids, ann_ids, tmp_path / "soft", soft_nms=True)
    soft = load_json(tmp_path / "soft" / "results" / "keypoints_val_results.json")
    per_image = {i: int((image_ids == i).sum()) for i in set(image_ids.tolist())}
    assert len(soft) == sum(min(n, 20) for n in per_image.values()) < len(detections)


def test_detector_boxes_through_dataset(samples_dir, tmp_path):
    from kitpose.datasets import build_dataset
    coco_dir = samples_dir / "coco"
    cfg = load_config(None, [
        "DATASET.DATASET", "coco", "DATASET.ROOT", str(coco_dir), "DATASET.TEST_ANN", "test_coco.json",
        "DATASET.IMAGE_DIR", str(coco_dir), "MODEL.IMAGE_SIZE", "[192, 256]", "MODEL.HEATMAP_SIZE", "[48, 64]",
        "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", str(coco_dir / "test_coco_det_AP_H_56.json"),
        "TEST.IMAGE_THRE", "0.0"])
    dataset = build_dataset(cfg, is_train=False)
    samples = [dataset[i][3] for i in range(len(dataset))]
    assert len(samples) == len(load_json(coco_dir / "test_coco_det_AP_H_56.json"))
    assert all(s["ann_id"] == -1 for s in samples)
    image_ids = np.array([s["image_id"] for s in samples])
    preds, boxes, matched = detector_predictions(dataset.ann_file, [s["center"] for s in samples],
                                                 [s["scale"] for s in samples], [s["score"] for s in samples],
                                                 image_ids)
    from kitpose.engine.validation import Predictions, evaluate_predictions
    predictions = Predictions(preds, boxes, image_ids, np.array([s["ann_id"] for s in samples]),
                              np.array([s["bbox_id"] for s in samples]), [s["image_file"] for s in samples])
    name_values, primary = evaluate_predictions(dataset, predictions, tmp_path, cfg)
    assert primary == name_values["AP"] > 0.5
    (written_file,) = (tmp_path / "results").glob("keypoints_*_results.json")
    check_detector_path(dataset.ann_file, preds, boxes, image_ids, matched, name_values, load_json(written_file),
                        dataset.meta)
