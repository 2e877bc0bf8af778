"""tools/eval_tracks.py on the synthetic video of several animals (tools/make_synthetic.py --video):
the labels against themselves, against an injected identity switch, and the tracker's global matching
re-assigning identities to noisy, shuffled, untracked poses; the prediction files of tools/infer.py
--format and DeepLabCut labels read back as the same poses."""
import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from interop_support import AP10K, SeeingPredictor, truth_box
from kitpose.inference.predictor import PoseInstances
from kitpose.inference.track_eval import TrackEvalSettings, eval_tracks_main, evaluate_tracks
from kitpose.inference.tracking import PoseTracker, TrackerSettings
from kitpose.interop.predictions_out import dlc_table, predictions_to_labels
from kitpose.interop.tracks_io import read_tracked_poses, save_tracked_labels

sio = pytest.importorskip("sleap_io")
pytest.importorskip("motmetrics")

FRAMES, ANIMALS = 40, 3


@pytest.fixture(scope="module")
def video(tmp_path_factory, repo_root):
    spec = importlib.util.spec_from_file_location("make_synthetic", repo_root / "tools" / "make_synthetic.py")
    make_synthetic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_synthetic)
    path = tmp_path_factory.mktemp("video") / "walkers.mp4"
    assert make_synthetic.main(["--video", str(path), "--frames", str(FRAMES), "--animals", str(ANIMALS)]) == 0
    labels = path.with_suffix(".slp")
    poses = read_tracked_poses(str(labels))
    truth = np.zeros((FRAMES, ANIMALS, AP10K.num_keypoints, 3))
    for frame, animals in poses.frames.items():
        for animal in animals:
            truth[frame, int(animal.track.split("_")[1])] = animal.keypoints
    return {"video": path, "labels": labels, "truth": truth}


def _write(path, video, keypoints, track_names):
    save_tracked_labels(str(path), str(video["video"]), keypoints, track_names, AP10K.keypoints)
    return str(path)


def test_the_video_holds_animals_that_cross_and_touch(video):
    import cv2
    capture = cv2.VideoCapture(str(video["video"]))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    truth = video["truth"]
    assert (truth[..., 2] > 0).all(axis=-1).sum() >= FRAMES * ANIMALS - 3      # nearly every keypoint labelled
    centre_x = truth[..., 0].mean(axis=-1)
    order_changes = (np.diff(np.sign(centre_x[:, :, None] - centre_x[:, None, :]), axis=0) != 0).any(axis=0)
    assert order_changes[np.triu_indices(ANIMALS, 1)].sum() >= 2               # two pairs pass each other
    low, high = truth[..., :2].min(axis=2), truth[..., :2].max(axis=2)

    def touching(a, b):
        return ((np.minimum(high[:, a], high[:, b]) - np.maximum(low[:, a], low[:, b])) > 0).all(axis=1).sum()
    assert sum(touching(a, b) for a in range(ANIMALS) for b in range(a + 1, ANIMALS)) >= 5
    # the labelled files hold exact identities: the tracks animal_0..2 in every frame
    labels = sio.load_file(str(video["labels"]))
    assert sorted(track.name for track in labels.tracks) == [f"animal_{i}" for i in range(ANIMALS)]
    assert all(len(lf.instances) == ANIMALS for lf in labels)


def test_labels_against_themselves_score_perfectly(video, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert eval_tracks_main(["--labels", str(video["labels"]), "--predictions", str(video["labels"]),
                             "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["share_found"] == 1.0 and figures["found"] == FRAMES * ANIMALS
    assert figures["keypoint_error_px"]["median"] == 0.0 and figures["pck"]["value"] == 1.0
    assert figures["oks"]["AP"] == pytest.approx(1.0)
    assert figures["mot"]["mota"] == 1 and figures["mot"]["idf1"] == 1 and figures["mot"]["num_switches"] == 0
    assert figures["mot"]["followed_by"] == {f"animal_{i}": f"animal_{i}" for i in range(ANIMALS)}
    printed = capsys.readouterr().out
    assert "MOTA / IDF1" in printed and "1.0000 / 1.0000" in printed and "ID switches                0" in printed


def test_an_injected_identity_switch_is_counted(video, tmp_path):
    truth = video["truth"]
    relabelled = np.concatenate([truth, np.zeros_like(truth[:, :1])], axis=1)
    relabelled[20:, 3], relabelled[20:, 0] = truth[20:, 0], 0              # animal 0 becomes a new track at frame 20
    names = [f"animal_{i}" for i in range(ANIMALS + 1)]
    figures = evaluate_tracks(str(video["labels"]), _write(tmp_path / "one.slp", video, relabelled, names))
    assert figures["mot"]["num_switches"] == 1
    assert figures["mot"]["mota"] == pytest.approx(1 - 1 / (FRAMES * ANIMALS))
    assert figures["share_found"] == 1.0 and figures["keypoint_error_px"]["median"] == 0.0
    swapped = truth.copy()
    swapped[20:, [0, 1]] = truth[20:, [1, 0]]                                   # animals 0 and 1 swap ids
    figures = evaluate_tracks(str(video["labels"]), _write(tmp_path / "two.slp", video, swapped, names[:ANIMALS]))
    assert figures["mot"]["num_switches"] == 2


def test_the_keypoint_error_is_also_given_as_a_share_of_each_animals_size(video, tmp_path):
    truth = video["truth"]
    shifted = truth.copy()
    shifted[..., 0] += np.where(truth[..., 2] > 0, 4.0, 0.0)                # every labelled keypoint 4 px right
    names = [f"animal_{i}" for i in range(ANIMALS)]
    figures = evaluate_tracks(str(video["labels"]), _write(tmp_path / "shifted.slp", video, shifted, names))
    seen = truth[..., 2] > 0
    sizes = np.stack([np.where(seen, truth[..., axis], np.nan) for axis in (0, 1)])
    sizes = np.nanmax(np.nanmax(sizes, axis=-1) - np.nanmin(sizes, axis=-1), axis=0)   # [frames, animals]
    expected = np.median(np.broadcast_to((4.0 / sizes)[..., None], seen.shape)[seen])
    assert figures["keypoint_error_px"]["median"] == pytest.approx(4.0, abs=1e-3)
    assert figures["keypoint_error_px"]["median_of_size"] == pytest.approx(expected, rel=1e-3)
    assert 0.01 < expected < 0.2                                              # animals of tens of px, not one


def test_tracks_leaves_out_the_other_labelled_animals(video, tmp_path, caplog):
    truth = video["truth"]
    only_two = truth.copy()
    only_two[:, 2] = 0                                                        # animal_2 never predicted
    names = [f"animal_{i}" for i in range(ANIMALS)]
    predictions = _write(tmp_path / "two.slp", video, only_two, names)
    every = evaluate_tracks(str(video["labels"]), predictions)
    assert every["found"] == FRAMES * (ANIMALS - 1) and every["labelled_animals"] == FRAMES * ANIMALS
    kept = evaluate_tracks(str(video["labels"]), predictions, TrackEvalSettings(tracks=("animal_0", "animal_1")))
    assert kept["found"] == kept["labelled_animals"] == FRAMES * (ANIMALS - 1)
    assert kept["mot"]["num_misses"] == 0 and kept["mot"]["mota"] == 1
    with caplog.at_level("ERROR"):
        assert eval_tracks_main(["--labels", str(video["labels"]), "--predictions", predictions,
                                 "--tracks", "animal_0", "animal_9"]) == 1
    assert "animal_9" in caplog.text and "no such track" in caplog.text


def test_the_tracker_recovers_identities_of_noisy_untracked_poses(video, tmp_path):
    rng = np.random.default_rng(0)
    noisy = video["truth"].copy()
    noisy[..., :2] += rng.normal(0.0, 3.0, noisy[..., :2].shape)              # 3 px on animals ~100 px long
    noisy[rng.random(noisy.shape[:2]) < 0.05] = 0                             # 5% of the animals missed
    shuffled = np.stack([frame[rng.permutation(ANIMALS)] for frame in noisy])  # no identity in the order either
    predictions = _write(tmp_path / "untracked.slp", video, shuffled, None)
    assert evaluate_tracks(str(video["labels"]), predictions)["mot"] is None
    for max_animals in (0, ANIMALS):
        figures = evaluate_tracks(str(video["labels"]), predictions,
                                  TrackEvalSettings(retrack=True, max_animals=max_animals))
        missed = FRAMES * ANIMALS - figures["found"]
        assert 0 < missed < 0.1 * FRAMES * ANIMALS
        assert figures["mot"]["num_switches"] <= 1, max_animals
        assert figures["mot"]["idf1"] >= 0.9 and figures["mot"]["mota"] >= 0.9, figures["mot"]
        assert figures["keypoint_error_px"]["median"] == pytest.approx(3.0 * np.sqrt(2 * np.log(2)), rel=0.15)


def _instances(truth, frame, tracked=True):
    animals = truth[frame]
    keypoints = animals.astype(np.float32).copy()
    keypoints[..., 2] = np.where(animals[..., 2] > 0, 0.9, 0.0)
    count = len(animals)
    return PoseInstances(keypoints, np.zeros((count, 4)), np.ones(count, np.float32), np.full(count, 0.9, np.float32),
                         np.ones(count, np.int64), np.arange(count) if tracked else None)


def test_infer_prediction_files_and_dlc_labels_read_back(video, tmp_path):
    truth = video["truth"]
    frames = [(t, _instances(truth, t)) for t in range(FRAMES)]
    slp = tmp_path / "walkers.predictions.slp"
    sio.save_slp(predictions_to_labels(frames, AP10K, video_path=str(video["video"])), str(slp))
    table = dlc_table(frames, AP10K, "KITPose_test", int)
    table.to_hdf(tmp_path / "walkers_kitpose.h5", key="df_with_missing", format="table", mode="w")
    table.to_csv(tmp_path / "walkers_kitpose.csv")
    results = [{"image_id": t, "frame": t, "track_id": j, "score": 0.9, "keypoint_names": AP10K.keypoints,
                "keypoints": instances.keypoints[j].reshape(-1).tolist()}
               for t, instances in frames for j in range(len(instances))]
    (tmp_path / "results.json").write_text(json.dumps(results))
    for name in ("walkers.predictions.slp", "walkers_kitpose.h5", "walkers_kitpose.csv", "results.json"):
        figures = evaluate_tracks(str(video["labels"]), str(tmp_path / name))
        assert figures["found"] == FRAMES * ANIMALS, name
        assert figures["keypoint_error_px"]["rmse"] < 1e-3, name            # results.json rounds to 1e-3 px
        assert figures["mot"]["num_switches"] == 0 and figures["mot"]["idf1"] == 1, name
        assert figures["mot"]["followed_by"] == {f"animal_{i}": f"track_{i}" for i in range(ANIMALS)}, name

    # DeepLabCut multi-animal labels (x, y; rows named by the extracted frames) as the labels
    every_fifth = list(range(0, FRAMES, 5))
    columns = pd.MultiIndex.from_product([["annotator"], [f"animal_{i}" for i in range(ANIMALS)], AP10K.keypoints,
                                          ["x", "y"]], names=["scorer", "individuals", "bodyparts", "coords"])
    values = np.where(truth[every_fifth, :, :, 2:] > 0, truth[every_fifth, :, :, :2], np.nan)
    rows = pd.MultiIndex.from_tuples([("labeled-data", "walkers", f"img{t:04d}.png") for t in every_fifth])
    dlc_labels = tmp_path / "CollectedData_annotator.csv"
    pd.DataFrame(values.reshape(len(every_fifth), -1), index=rows, columns=columns).to_csv(dlc_labels)
    figures = evaluate_tracks(str(dlc_labels), str(slp))
    assert figures["labelled_frames"] == len(every_fifth) and figures["found"] == len(every_fifth) * ANIMALS
    assert figures["keypoint_error_px"]["rmse"] < 1e-3 and figures["mot"]["num_switches"] == 0  # float32 predictions


def test_nothing_to_compare_is_an_error(video, tmp_path, caplog):
    truth = video["truth"]
    later = np.concatenate([np.zeros_like(truth), truth])                     # predictions on frames 40..79 only
    predictions = _write(tmp_path / "later.slp", video, later, [f"animal_{i}" for i in range(ANIMALS)])
    assert eval_tracks_main(["--labels", str(video["labels"]), "--predictions", predictions]) == 1
    assert "no prediction on any of the 40 labelled frame(s)" in caplog.text
    other = sio.Skeleton(nodes=["head", "tail"])
    labels = sio.Labels(labeled_frames=[sio.LabeledFrame(
        video=sio.Video(filename=str(video["video"]), open_backend=False), frame_idx=0,
        instances=[sio.Instance.from_numpy(np.array([[1.0, 2.0], [3.0, 4.0]]), skeleton=other)])])
    sio.save_slp(labels, str(tmp_path / "other.slp"))
    assert eval_tracks_main(["--labels", str(video["labels"]), "--predictions", str(tmp_path / "other.slp")]) == 1
    assert "are not predicted" in caplog.text
    assert eval_tracks_main(["--labels", str(video["labels"]), "--predictions", str(tmp_path / "none.slp")]) == 1
    assert "no such file" in caplog.text


def test_the_top_down_tracker_follows_the_animals_through_the_video(video, tmp_path):
    truth = video["truth"]
    predictor = SeeingPredictor(truth)

    def detector(frame):
        boxes = [np.concatenate([low, high - low]) for low, high in map(truth_box, truth[predictor.frame])]
        return np.array(boxes), np.full(len(boxes), 0.9, np.float32), np.ones(len(boxes), np.int64)

    tracker = PoseTracker(predictor, detector, TrackerSettings(max_animals=ANIMALS))
    found = np.zeros((FRAMES, ANIMALS, AP10K.num_keypoints, 3))
    image = np.zeros((256, 384, 3), np.uint8)
    for t in range(FRAMES):
        predictor.frame = t
        instances = tracker.step(image, t)
        found[t, instances.track_ids] = instances.keypoints
    assert tracker.next_id == ANIMALS
    assert 0 < tracker.box_source_frames < FRAMES                              # crops follow the animals in between
    figures = evaluate_tracks(str(video["labels"]),
                              _write(tmp_path / "tracked.slp", video, found, [f"track_{i}" for i in range(ANIMALS)]))
    assert figures["mot"]["num_switches"] == 0 and figures["share_found"] >= 0.95, figures["mot"]


def test_after_a_gap_longer_than_max_lost_ids_are_new_unless_n_is_given(video, tmp_path):
    truth = video["truth"].copy()
    truth[10:25] = 0                                                          # no animal found for 15 frames
    predictions = _write(tmp_path / "gap.slp", video, truth, None)
    fresh = evaluate_tracks(str(video["labels"]), predictions, TrackEvalSettings(retrack=True))
    assert len(set(fresh["mot"]["followed_by"].values())) == ANIMALS
    assert fresh["mot"]["num_switches"] == ANIMALS                            # ids never reused: 3 new ones
    known = evaluate_tracks(str(video["labels"]), predictions, TrackEvalSettings(retrack=True, max_animals=ANIMALS))
    assert known["mot"]["num_switches"] == 0                                  # the N ids taken again, each by its animal


def test_frames_restrict_the_scored_labelled_frames(video, tmp_path, caplog):
    """--frames scores only those labelled frames (e.g. the part of a video not trained on)."""
    truth = video["truth"]
    swapped = truth.copy()
    swapped[20:, [0, 1]] = truth[20:, [1, 0]]                                   # ids swap at frame 20
    predictions = _write(tmp_path / "swap.slp", video, swapped, [f"animal_{i}" for i in range(ANIMALS)])
    before = evaluate_tracks(str(video["labels"]), predictions, TrackEvalSettings(frame_range=(0, 20, 1)))
    assert before["labelled_frames"] == 20 and before["mot"]["num_switches"] == 0
    every_other = evaluate_tracks(str(video["labels"]), predictions, TrackEvalSettings(frame_range=(10, 40, 2)))
    assert every_other["labelled_frames"] == 15 and every_other["mot"]["num_switches"] == 2
    assert eval_tracks_main(["--labels", str(video["labels"]), "--predictions", predictions,
                             "--frames", "100:200"]) == 1
    assert "no labelled frame in --frames (100, 200, 1)" in caplog.text
