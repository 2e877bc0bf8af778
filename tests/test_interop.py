"""DeepLabCut / SLEAP interop through sleap-io: a synthetic DeepLabCut project is imported, trains a few
iterations through the written YAML, is tested, and its predictions on a synthetic video go out in every
--format and load back (sleap-io, movement) with the keypoints of results.json."""
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from interop_support import AP10K, DLC_VIDEO, make_dlc_project, walking_animal, write_video
from kitpose.engine import cli as engine_cli
from kitpose.inference.cli import infer_main
from kitpose.interop import InteropError
from kitpose.interop.cli import import_main
from kitpose.interop.labels_in import BUILTIN_TEMPLATE, builtin_template, import_labels, infer_flip_pairs, parse_pairs
from kitpose.interop.readback import read_back

sio = pytest.importorskip("sleap_io")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_dlc_project(tmp_path_factory.mktemp("dlc_project"))


@pytest.fixture(scope="module")
def imported(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "synth"
    report = import_labels(project["root"], out, val_fraction=0.2, seed=0)
    return out, report


def _annotations(out):
    images, annotations = {}, []
    for split in ("train", "val"):
        data = json.loads((out / "annotations" / f"{split}.json").read_text())
        images.update({image["id"]: image for image in data["images"]})
        annotations += data["annotations"]
    return images, annotations


# ------------------------------------------------------------------ labels in
def test_import_keeps_keypoints_and_names_every_defect(project, imported):
    out, report = imported
    defects = project["defects"]
    assert report.keypoints == AP10K.keypoints                      # the config's bodyparts order
    assert report.flip_pairs == sorted(sorted(p) for p in AP10K.flip_pairs)
    assert report.skeleton == AP10K.skeleton
    assert report.unlabelled_frames == [f"{DLC_VIDEO}/{defects['unlabelled']}"]
    image, keypoint = defects["outside"]
    assert len(report.outside_keypoints) == 1 and image in report.outside_keypoints[0] \
        and keypoint in report.outside_keypoints[0]
    assert len(report.instances_without_box) == 1 and defects["single_keypoint"] in report.instances_without_box[0]
    assert report.train_images + report.val_images == 12 - 2 and report.val_images == 2

    images, annotations = _annotations(out)
    assert len(annotations) == 10
    for annotation in annotations:
        image = images[annotation["image_id"]]
        name = image["file_name"].split("/")[-1]
        expected, width, height = project["images"][name]
        assert (image["width"], image["height"]) == (width, height)
        keypoints = np.asarray(annotation["keypoints"]).reshape(-1, 3)
        labelled = np.isfinite(expected[:, 0]) & (expected[:, 0] <= width)
        np.testing.assert_array_equal(keypoints[:, 2], np.where(labelled, 2, 0))
        np.testing.assert_allclose(keypoints[labelled, :2], expected[labelled], atol=1e-3)
        x, y, w, h = annotation["bbox"]
        inside = keypoints[labelled, :2]
        assert (inside >= [x, y]).all() and (inside <= [x + w, y + h]).all()
        assert annotation["area"] == pytest.approx(w * h, rel=1e-6)
        copied = cv2.imread(str(out / "images" / image["file_name"]))
        source = cv2.imread(str(project["root"] / "labeled-data" / DLC_VIDEO / name))
        np.testing.assert_array_equal(copied, source)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["keypoints"] == AP10K.keypoints and meta["sigmas"] == [0.05] * 17


def test_import_refuses_a_project_with_a_missing_image(tmp_path):
    project = make_dlc_project(tmp_path / "p", num_images=4, defects=False)
    (project["csv"].parent / "img0002.png").unlink()
    with pytest.raises(InteropError, match=r"1 of 4 labelled image\(s\) are missing: labeled-data/synthvid/img0002.png"):
        import_labels(project["root"], tmp_path / "out")


def test_import_without_limbs_warns_and_skeleton_can_be_given(tmp_path, caplog):
    project = make_dlc_project(tmp_path / "p", num_images=4, limbs=False, defects=False)
    with caplog.at_level(logging.WARNING):
        report = import_labels(project["root"], tmp_path / "out")
    assert report.no_skeleton_limbs and "has no limbs" in caplog.text
    report = import_labels(project["root"], tmp_path / "out2", skeleton="Nose-Neck,Neck-Root of tail")
    assert report.skeleton == [[2, 3], [3, 4]] and not report.no_skeleton_limbs


def test_import_of_a_file_without_skeleton_is_an_error(tmp_path):
    empty = tmp_path / "empty.slp"
    sio.save_slp(sio.Labels(), str(empty))
    with pytest.raises(InteropError, match="no skeleton"):
        import_labels(empty, tmp_path / "out")
    with pytest.raises(InteropError, match="no such file"):
        import_labels(tmp_path / "absent.slp", tmp_path / "out")


def test_dlc_bodyparts_that_differ_from_config_yaml_are_an_error(tmp_path):
    project = make_dlc_project(tmp_path / "p", num_images=4, defects=False)
    config = project["root"] / "config.yaml"
    listed = config.read_text()
    config.write_text(listed.replace("- Nose\n", "", 1))              # the csv has a Nose column the config lacks
    with pytest.raises(InteropError, match=r"CollectedData_tester.csv: not in config.yaml: Nose\. The keypoints "
                       r"take config.yaml's order"):
        import_labels(project["root"], tmp_path / "out")
    config.write_text(listed.replace("- Nose\n", "- Nose\n- Chin\n", 1))   # and a bodypart the csv lacks
    with pytest.raises(InteropError, match=r"CollectedData_tester.csv: missing from the csv: Chin"):
        import_labels(project["root"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _dlc_rows_blanked(project):
    """Every labelled cell of the project's csv emptied: no frame has a label."""
    lines = project["csv"].read_text().splitlines()
    rows = [line.split(",") for line in lines[3:]]
    project["csv"].write_text("\n".join(lines[:3] + [",".join([r[0]] + [""] * (len(r) - 1)) for r in rows]) + "\n")


def test_an_import_with_nothing_usable_fails_and_writes_nothing(tmp_path, caplog):
    project = make_dlc_project(tmp_path / "p", num_images=3, defects=False)
    _dlc_rows_blanked(project)
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR):
        assert import_main([str(project["root"]), "--out", str(out)]) == 1
    assert "no usable labelled frame left for training; nothing written" in caplog.text
    assert "unlabelled frame(s) skipped" in caplog.text and "wrote" not in caplog.text
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["p"]     # no staging folder left


def _image_files(out):
    return sorted(str(p.relative_to(out / "images")) for p in (out / "images").rglob("*.png"))


def test_import_refuses_a_used_out_and_overwrite_replaces_only_the_earlier_import(tmp_path, caplog):
    first = make_dlc_project(tmp_path / "first", num_images=8, defects=False)
    second = make_dlc_project(tmp_path / "second", num_images=4, seed=1, defects=False)
    out = tmp_path / "synth"
    assert import_main([str(first["root"]), "--out", str(out)]) == 0
    assert len(_image_files(out)) == 8
    meta = json.loads((out / "meta.json").read_text())
    meta["sigmas"][0] = 0.031                                        # a hand edit the README suggests
    (out / "meta.json").write_text(json.dumps(meta))
    edited = (out / "meta.json").read_text()

    with caplog.at_level(logging.ERROR):
        assert import_main([str(second["root"]), "--out", str(out)]) == 1
    assert f"--out {out}: not empty, holds an earlier import" in caplog.text and "--overwrite" in caplog.text
    assert (out / "meta.json").read_text() == edited and len(_image_files(out)) == 8

    (out / "notes.txt").write_text("mine")
    with pytest.raises(InteropError, match=r"also holds 1 file\(s\) the import did not write: notes.txt"):
        import_labels(second["root"], out, overwrite=True)
    assert (out / "meta.json").read_text() == edited and (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()

    interrupted = tmp_path / ".synth.importing-0badc0de"             # as a kill -9 during an import leaves it
    interrupted.mkdir()
    with caplog.at_level(logging.WARNING):
        assert import_main([str(second["root"]), "--out", str(out), "--overwrite"]) == 0
    assert ".synth.importing-0badc0de left by an interrupted import of synth" in caplog.text
    interrupted.rmdir()
    images, _ = _annotations(out)
    assert _image_files(out) == sorted(image["file_name"] for image in images.values())   # no old image left
    assert len(images) == 4 and json.loads((out / "meta.json").read_text())["sigmas"] == [0.05] * 17
    for image in images.values():                                    # the second project's pictures
        np.testing.assert_array_equal(cv2.imread(str(out / "images" / image["file_name"])),
                                      cv2.imread(str(second["root"] / "labeled-data" / image["file_name"])))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "second", "synth"]   # nothing left aside

    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("x")
    with pytest.raises(InteropError, match=r"--overwrite replaces only an earlier import.*data.csv"):
        import_labels(second["root"], other, overwrite=True)


def test_import_yaml_starts_from_the_packaged_template(imported):
    _, report = imported
    template = builtin_template()
    assert template.is_file() and "kitpose" in str(template) and "experiments" not in str(template)
    written = yaml.safe_load(open(report.yaml))
    packaged = yaml.safe_load(template.read_text())
    assert written["MODEL"]["EXTRA"] == packaged["MODEL"]["EXTRA"] and written["LOSS"] == packaged["LOSS"]
    assert f"from the template {BUILTIN_TEMPLATE} (built in)" in open(report.yaml).read()


def test_import_slp_with_video_frames(tmp_path):
    frames, truth = walking_animal(num_frames=6)
    video_path = write_video(tmp_path / "walk.mp4", frames)
    skeleton = sio.Skeleton(list(AP10K.keypoints), name="quadruped")   # sleap-io turns the list into Nodes
    video = sio.Video.from_filename(str(video_path))
    labelled = []
    for t in (0, 2, 5):
        xy = np.where(truth[t, :, 2:] > 0, truth[t, :, :2], np.nan)
        labelled.append(sio.LabeledFrame(video=video, frame_idx=t,
                                         instances=[sio.Instance.from_numpy(xy, skeleton=skeleton)]))
    labels_file = tmp_path / "walk.slp"
    sio.save_slp(sio.Labels(labelled, videos=[video], skeletons=[skeleton]), str(labels_file))
    report = import_labels(labels_file, tmp_path / "out", val_fraction=0.0, flip_pairs="none")
    assert report.train_images == 3 and report.flip_pairs == []
    images, annotations = _annotations(tmp_path / "out")
    for annotation in annotations:
        file_name = images[annotation["image_id"]]["file_name"]
        assert file_name.startswith("walk/frame_") and file_name.endswith(".png")
        t = int(file_name[-10:-4])
        keypoints = np.asarray(annotation["keypoints"]).reshape(-1, 3)
        labelled_points = truth[t, :, 2] > 0
        np.testing.assert_allclose(keypoints[labelled_points, :2], truth[t, labelled_points, :2], atol=1e-3)
        assert cv2.imread(str(tmp_path / "out" / "images" / file_name)).shape == frames[0].shape
    config = (tmp_path / "out" / "out.yaml").read_text()
    assert "FLIP: false" in config and "FLIP_TEST: false" in config


def test_flip_pairs_from_names():
    names = ["leftear", "rightear", "snout", "L_Eye", "R_Eye", "paw_left", "paw_right", "LHip", "RHip", "tail"]
    assert infer_flip_pairs(names) == [[0, 1], [3, 4], [5, 6], [7, 8]]
    assert infer_flip_pairs(["left", "center"]) == []
    assert parse_pairs("snout:tail", names, ":", "--flip-pairs") == [[2, 9]]
    with pytest.raises(InteropError, match="unknown keypoint"):
        parse_pairs("snout:nose", names, ":", "--flip-pairs")


# ------------------------------------------------------------------ train, test, predictions out
@pytest.fixture(scope="module")
def trained(imported, tmp_path_factory):
    out, report = imported
    runs = tmp_path_factory.mktemp("runs")
    opts = ["OUTPUT_DIR", str(runs / "output"), "LOG_DIR", str(runs / "log"), "TRAIN.END_EPOCH", "2",
            "TRAIN.BATCH_SIZE_PER_GPU", "4", "TEST.BATCH_SIZE_PER_GPU", "8", "PRINT_FREQ", "100"]
    assert engine_cli.train_main(["--cfg", report.yaml, *opts]) == 0
    run_dir = runs / "output" / "custom" / "kitpose_part" / "synth"
    return report.yaml, run_dir / "final_state.pth", opts, run_dir


def test_imported_yaml_trains_and_tests(trained):
    config, checkpoint, opts, run_dir = trained
    assert checkpoint.is_file()
    for metric in ("pck", "oks"):
        assert engine_cli.test_main(["--cfg", config, "TEST.MODEL_FILE", str(checkpoint), "TEST.METRIC", metric, *opts]) == 0
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["metric"] == metric and metrics["num_instances"] == 2
        assert 0.0 <= metrics["metrics"]["Mean" if metric == "pck" else "AP"] <= 1.0


def test_predictions_round_trip_every_format(trained, tmp_path):
    config, checkpoint, _, _ = trained
    frames, _ = walking_animal(num_frames=5)
    video = write_video(tmp_path / "walk.mp4", frames)
    out = tmp_path / "pred"
    assert infer_main(["--cfg", config, "--checkpoint", str(checkpoint), "--device", "cpu", "--input", str(video),
                       "--out", str(out), "--no-draw", "--track", "--max-animals", "1",
                       "--format", "coco", "dlc", "slp", "nwb", "csv"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["frame"] for r in results] == list(range(5)) and {r["track_id"] for r in results} == {0}
    expected = np.array([r["keypoints"] for r in results]).reshape(5, 17, 3)

    for name in ("walk.predictions.slp", "walk.nwb", "walk.sleap.csv"):
        labels = sio.load_file(str(out / name))
        assert [lf.frame_idx for lf in labels] == list(range(5)), name
        nodes = labels.skeletons[0].node_names
        order = [nodes.index(k) for k in AP10K.keypoints]
        loaded = np.stack([lf.instances[0].numpy(scores=True)[order] for lf in labels])
        np.testing.assert_allclose(loaded, expected, atol=1e-3, err_msg=name)

    movement = pytest.importorskip("movement.io.load_poses")
    for name in ("walk_kitpose.h5", "walk_kitpose.csv"):
        poses = movement.from_dlc_file(out / name)
        assert list(poses.keypoints.values) == AP10K.keypoints
        position = poses.position.values[:, :, :, 0].transpose(0, 2, 1)     # time, keypoint, xy
        np.testing.assert_allclose(position, expected[:, :, :2], atol=1e-3, err_msg=name)
        np.testing.assert_allclose(poses.confidence.values[:, :, 0], expected[:, :, 2], atol=1e-3)
    poses = movement.from_sleap_file(out / "walk.predictions.slp")
    np.testing.assert_allclose(poses.position.values[:, :, :, 0].transpose(0, 2, 1), expected[:, :, :2], atol=1e-3)

    checks = read_back(str(out))
    assert len(checks) == 6
    for check in checks:
        assert check.same_entries and check.max_xy_difference <= 1e-3 and check.max_score_difference <= 1e-3, \
            check.describe()


def test_untracked_images_with_two_animals_round_trip(reference_model_files, samples_dir, tmp_path):
    config, checkpoint = reference_model_files
    images = sorted((samples_dir / "ap10k").glob("*.jpg"))
    boxes = []
    for number, image in enumerate(images):
        height, width = cv2.imread(str(image)).shape[:2]
        boxes += [{"image_id": int(image.stem), "bbox": [0, 0, width / 2, height], "score": 0.9},
                  {"image_id": int(image.stem), "bbox": [width / 2, 0, width / 2, height], "score": 0.8}]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "pred"
    assert infer_main(["--cfg", config, "--checkpoint", checkpoint, "--device", "cpu", "--input",
                       str(samples_dir / "ap10k"), "--boxes", str(tmp_path / "boxes.json"), "--out", str(out),
                       "--format", "dlc", "slp", "--no-draw", "TEST.OKS_THRE", "1.0"]) == 0
    assert len(json.loads((out / "results.json").read_text())) == 4
    checks = read_back(str(out))
    assert [c.reader for c in checks] == ["sleap-io", "movement", "movement"]      # not movement on an untracked .slp
    for check in checks:
        assert check.animals == 2 and check.frames == 2, check.describe()
        assert check.same_entries and check.max_xy_difference <= 1e-3, check.describe()


def test_flip_pairs_from_any_side_spelling_and_skeleton_symmetries():
    fly = ["head", "thorax", "wingL", "wingR", "forelegL4", "forelegR4", "eyeL", "eyeR", "abdomen"]
    assert infer_flip_pairs(fly) == [[2, 3], [4, 5], [6, 7]]
    # a skeleton's symmetries win over names: here they pair what names cannot
    assert infer_flip_pairs(["a1", "a2", "leftear", "rightear"], symmetries=[["a1", "a2"]]) == [[0, 1], [2, 3]]
    assert infer_flip_pairs(["L_ear", "left_ear", "R_ear"]) == []   # two left ears: ambiguous, not guessed


def test_orientation_gap_tells_top_views_from_side_views():
    from kitpose.interop.labels_in import orientation_gap

    def frames(angles_deg):
        kept = []
        for angle in np.radians(angles_deg):
            direction = np.array([np.cos(angle), np.sin(angle)])
            keypoints = np.array([[100, 100, 2], [*(100 + 40 * direction), 2], [*(100 + 20 * direction), 2]])
            # nose, tail, mid-back: nose -> tail is the longest axis
            kept.append((keypoints, None, None))
        return [("f.png", None, None, kept)]

    axis, gap = orientation_gap(frames(np.arange(0, 360, 30)), flip_pairs=[])
    assert axis == (0, 1) and gap == pytest.approx(30)
    _, gap = orientation_gap(frames([0, 5, 10, 175, 180, 185, 190, 355]), flip_pairs=[])   # facing left or right
    assert gap > 90
    assert orientation_gap(frames([0, 90]), flip_pairs=[]) is None   # too few to tell


def test_import_of_a_top_view_rotates_over_the_circle_and_reads_skeleton_symmetries(tmp_path):
    """Animals labelled facing every way -> DATASET.ROT_FACTOR 180 / ROT_PROB 0.6 in the YAML, with the reason;
    the .slp skeleton's symmetry pairs keypoints whose names do not say their side."""
    frames = [np.full((96, 96, 3), 40, np.uint8) for _ in range(12)]
    video = sio.Video.from_filename(str(write_video(tmp_path / "top.mp4", frames)))
    nodes = ["nose", "mid", "tail", "a1", "a2"]
    skeleton = sio.Skeleton(nodes, name="mouse")
    skeleton.add_symmetry("a1", "a2")
    labelled = []
    for t, angle in enumerate(np.radians(np.arange(0, 360, 30))):
        along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
        xy = np.stack([48 + 30 * along, 48 + 10 * along, 48 - 20 * along,
                       48 + 20 * along + 8 * across, 48 + 20 * along - 8 * across])
        labelled.append(sio.LabeledFrame(video=video, frame_idx=t,
                                         instances=[sio.Instance.from_numpy(xy, skeleton=skeleton)]))
    labels_file = tmp_path / "top.slp"
    sio.save_slp(sio.Labels(labelled, videos=[video], skeletons=[skeleton]), str(labels_file))
    report = import_labels(labels_file, tmp_path / "out", val_fraction=0.0)
    assert report.flip_pairs == [[3, 4]] and report.full_circle_rotation
    assert report.orientation_axis == ["nose", "tail"] and report.orientation_gap_deg == pytest.approx(30, abs=0.5)
    text = open(report.yaml).read()
    written = yaml.safe_load(text)
    assert written["DATASET"]["ROT_FACTOR"] == 180 and written["DATASET"]["ROT_PROB"] == 0.6
    assert "the training animals face every way (the nose -> tail direction" in text


def test_predicted_instances_only_when_asked_and_a_frame_range(tmp_path):
    """SLEAP predictions are not labels: skipped by default, used with use_predictions; frame_range picks frames."""
    frames, truth = walking_animal(num_frames=8)
    video = sio.Video.from_filename(str(write_video(tmp_path / "walk.mp4", frames)))
    skeleton = sio.Skeleton(list(AP10K.keypoints), name="quadruped")
    labelled = []
    for t in range(8):
        xy = np.where(truth[t, :, 2:] > 0, truth[t, :, :2], np.nan)
        instance = (sio.Instance.from_numpy(xy, skeleton=skeleton) if t == 0 else
                    sio.PredictedInstance.from_numpy(xy, skeleton=skeleton, point_scores=np.ones(len(xy)), score=1.0))
        labelled.append(sio.LabeledFrame(video=video, frame_idx=t, instances=[instance]))
    labels_file = tmp_path / "walk.slp"
    sio.save_slp(sio.Labels(labelled, videos=[video], skeletons=[skeleton]), str(labels_file))

    report = import_labels(labels_file, tmp_path / "labels_only", val_fraction=0.0)
    assert report.train_images == 1 and len(report.unlabelled_frames) == 7 and report.predicted_instances_used == 0
    report = import_labels(labels_file, tmp_path / "with_predictions", val_fraction=0.0, use_predictions=True,
                           frame_range=(0, 8, 2))
    assert report.train_images == 4 and report.frames_outside_range == 4 and report.predicted_instances_used == 3
    assert "(4 outside --frames left out); 3 predicted instance(s) used as labels" in report.summary()
    with pytest.raises(SystemExit):
        import_main([str(labels_file), "--out", str(tmp_path / "bad"), "--frames", "9:3"])


def test_a_run_from_past_frame_zero_exports_and_reads_back(trained, tmp_path):
    """infer.py --frames 3:8: every format keeps frames 3..7 (sleap-io's NWB writer needs a timestamp for
    every frame number up to the last, its reader numbers frames from 0: read_back maps them in order)."""
    config, checkpoint, _, _ = trained
    frames, _ = walking_animal(num_frames=8)
    video = write_video(tmp_path / "walk.mp4", frames)
    out = tmp_path / "pred"
    assert infer_main(["--cfg", config, "--checkpoint", str(checkpoint), "--device", "cpu", "--input", str(video),
                       "--out", str(out), "--no-draw", "--track", "--max-animals", "1", "--frames", "3:8",
                       "--format", "dlc", "slp", "nwb"]) == 0
    assert [r["frame"] for r in json.loads((out / "results.json").read_text())] == [3, 4, 5, 6, 7]
    assert [lf.frame_idx for lf in sio.load_file(str(out / "walk.predictions.slp"))] == [3, 4, 5, 6, 7]
    checks = read_back(str(out))
    assert {Path(c.path).name for c in checks} >= {"walk.nwb", "walk.predictions.slp", "walk_kitpose.h5"}
    for check in checks:
        assert check.same_entries and check.frames == 5 and check.max_xy_difference <= 1e-3, check.describe()
