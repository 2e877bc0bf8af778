"""Video tracking (crops at the tracks' predicted poses, ids by global matching) and One-Euro smoothing.

The tracker runs on a stand-in for PosePredictor (interop_support.SeeingPredictor) that "sees" the
true keypoints of the synthetic walking animal only inside the crop it is given (as a top-down
model does), so a box that does not follow the animal loses it; the real predictor path is covered
by tests/test_interop.py. The identity stage alone (IdentityTracker) runs on crafted poses."""
import numpy as np
import pytest

from interop_support import AP10K, FOUND, SeeingPredictor, truth_box, walking_animal
from kitpose.inference.identities import IdentityTracker
from kitpose.inference.smoothing import KeypointSmoother, OneEuroFilter
from kitpose.inference.tracking import PoseTracker, TrackerSettings


def _run(tracker, predictor, frames):
    out = []
    for t, image in enumerate(frames):
        predictor.frame = t
        out.append(tracker.step(image, t))
    return out


def test_one_animal_walking_across_keeps_its_id_and_box():
    frames, truth = walking_animal(num_frames=24, step=8)
    predictor = SeeingPredictor(truth[:, None])
    asked = []
    tracker = PoseTracker(predictor, box_source=lambda frame: asked.append(1) or None,
                          settings=TrackerSettings(max_animals=1))
    results = _run(tracker, predictor, frames)
    assert [r.track_ids.tolist() for r in results] == [[0]] * 24
    assert tracker.box_source_frames == 1 and len(asked) == 1      # only the first frame used the whole frame
    for t, result in enumerate(results):
        low, high = truth_box(truth[t])
        x, y, w, h = result.boxes[0]
        # the box of frame t came from frame t-1's keypoints; the crop still holds every keypoint
        assert (result.keypoints[0, :, 2][truth[t, :, 2] > 0] == FOUND).all(), t
        assert x <= low[0] + 8 and x + w >= high[0] - 8, t
        np.testing.assert_allclose(result.keypoints[0][truth[t, :, 2] > 0, :2], truth[t][truth[t, :, 2] > 0, :2])
    assert results[-1].boxes[0][0] > results[1].boxes[0][0] + 100          # the box went along


def test_box_source_is_asked_only_when_the_score_drops():
    frames, truth = walking_animal(num_frames=12, step=6)
    jumped = truth.copy()
    jumped[6:, :, 0] -= np.where(truth[6:, :, 2] > 0, 150.0, 0.0)           # the animal reappears 150 px left
    jumped[6:, :, 0] = np.maximum(jumped[6:, :, 0], 0)
    predictor = SeeingPredictor(jumped[:, None])

    def detector(frame):
        low, high = truth_box(jumped[predictor.frame])
        return np.array([[*low, *(high - low)]]), np.array([0.95], np.float32), np.array([18])

    # one animal: frame 0 and the jump; any number: also frames 7-10, while the first track is missing
    # and not yet ended (max_lost 4), not frame 11
    for max_animals, ids_after, asked in ((1, 0, 2), (0, 1, 6)):
        tracker = PoseTracker(predictor, detector, TrackerSettings(max_animals=max_animals, max_lost=4))
        results = _run(tracker, predictor, frames)
        assert tracker.box_source_frames == asked
        assert [r.track_ids.tolist() for r in results[:6]] == [[0]] * 6
        # one animal: the track follows; any number: the far-away pose is a new animal
        assert [r.track_ids.tolist() for r in results[6:]] == [[ids_after]] * 6
        assert (results[7].keypoints[0, :, 2][jumped[7, :, 2] > 0] == FOUND).all()


def test_two_animals_keep_their_ids_and_a_lost_track_ends():
    frames, truth = walking_animal(num_frames=16, step=6, size=(320, 448))
    labelled = truth[:, :, 2] > 0
    first, second = truth.copy(), truth.copy()                                # 270 px apart, one above the other
    first[:, :, 1] -= np.where(labelled, 140.0, 0.0)
    second[:, :, 1] += np.where(labelled, 130.0, 0.0)
    animals = np.stack([first, second], axis=1)
    animals[10:, 1, :, 2] = 0                                                # the second one leaves at frame 10
    predictor = SeeingPredictor(animals)

    def detector(frame):
        boxes = []
        for animal in animals[predictor.frame]:
            if (animal[:, 2] > 0).sum() >= 2:
                low, high = truth_box(animal)
                boxes.append([*low, *(high - low)])
        return np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32), np.full(len(boxes), 18)

    tracker = PoseTracker(predictor, detector, TrackerSettings(max_lost=2))
    results = _run(tracker, predictor, frames)
    assert [r.track_ids.tolist() for r in results[:10]] == [[0, 1]] * 10
    first_y = [r.keypoints[0, 2, 1] for r in results[:10]]
    second_y = [r.keypoints[1, 2, 1] for r in results[:10]]
    assert max(first_y) < min(second_y)                                       # ids did not swap
    assert all(0 in r.track_ids for r in results[10:])
    assert tracker.next_id == 2 and [t.id for t in tracker.tracks] == [0]    # track 1 ended, no id reused


def test_two_boxes_on_one_animal_give_one_track():
    frames, truth = walking_animal(num_frames=8, step=6)
    predictor = SeeingPredictor(truth[:, None])

    def twice(frame):                                                          # two boxes on the one animal
        low, high = truth_box(truth[predictor.frame])
        boxes = np.array([[*low, *(high - low)], [*(low + 3), *(high - low)]])
        return boxes, np.full(2, 0.9, np.float32), np.full(2, 18)

    tracker = PoseTracker(predictor, twice, TrackerSettings(max_lost=2, redetect_every=2))
    results = _run(tracker, predictor, frames)
    # the box source's two poses of the animal (frames 0, 2, 4, 6) are one pose: never a second track
    assert [r.track_ids.tolist() for r in results] == [[0]] * 8
    assert tracker.box_source_frames == 4 and [t.id for t in tracker.tracks] == [0]


def test_a_crop_that_slides_onto_the_neighbour_gives_way_to_the_detection_stage():
    """Frames 4-6: the second animal's tracked pose slides 15 px further onto the first each frame (as
    a crop of two touching animals can), confident all the while, and its track's motion follows. The
    detection stage, asked in frame 6 (every 3rd frame), finds the second animal (and misses the
    first): its pose of the lost animal replaces the tracked one it does not confirm, although that one
    fits the track's prediction; the first animal's tracked pose, unconfirmed too, stays."""
    frames, truth = walking_animal(num_frames=10, step=6, size=(320, 448))
    labelled = truth[:, :, 2] > 0
    first, second = truth.copy(), truth.copy()
    first[:, :, 1] -= np.where(labelled, 100.0, 0.0)
    second[:, :, 1] += np.where(labelled, 100.0, 0.0)
    animals = np.stack([first, second], axis=1)
    predictor = SeeingPredictor(animals)

    def detector(frame):
        # in frame 6 the detection stage misses the first animal: its tracked pose must stay
        found = animals[predictor.frame, 1:] if predictor.frame == 6 else animals[predictor.frame]
        boxes = [[*low, *(high - low)] for low, high in (truth_box(animal) for animal in found)]
        return np.array(boxes), np.full(len(boxes), 0.9, np.float32), np.full(len(boxes), 18)

    def run(redetect_every):
        tracker = PoseTracker(predictor, detector, TrackerSettings(max_animals=2, redetect_every=redetect_every))
        propagate = tracker._propagate

        def sliding(image):
            poses = propagate(image)
            if 4 <= predictor.frame <= 6:
                lower = int(np.argmax([pose.keypoints[:, 1].mean() for pose in poses]))
                slid = poses[lower].keypoints.copy()
                slid[:, 1] = animals[predictor.frame, 1, :, 1] - 15.0 * (predictor.frame - 3)
                poses[lower] = poses[lower]._replace(keypoints=slid)
            return poses
        tracker._propagate = sliding
        return _run(tracker, predictor, frames)

    def error_of_second(result, t):
        pose = result.keypoints[list(result.track_ids).index(1)]
        seen = animals[t, 1, :, 2] > 0
        return np.abs(pose[seen, :2] - animals[t, 1][seen, :2]).max()

    checked, unchecked = run(redetect_every=3), run(redetect_every=0)
    assert [r.track_ids.tolist() for r in checked] == [[0, 1]] * 10
    assert [round(error_of_second(checked[t], t)) for t in range(4, 8)] == [15, 30, 0, 0]
    assert [round(error_of_second(unchecked[t], t)) for t in range(4, 7)] == [15, 30, 45]


# ------------------------------------------------------------------ identities (global matching)
def _template(seed=0, size=(60, 40)):
    """A pose [17,3] spread over about `size` px, every keypoint seen."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform([0, 0], size, (AP10K.num_keypoints, 2)),
                           np.full((AP10K.num_keypoints, 1), 0.9)], axis=1)


def _at(pose, dx, dy=0.0):
    moved = pose.copy()
    moved[:, :2] += [dx, dy]
    return moved


def test_hungarian_keeps_ids_where_the_best_single_pair_is_wrong():
    pose = _template()
    tracker = IdentityTracker(AP10K.sigmas, match_oks=0.3)
    assert tracker.assign(np.stack([_at(pose, 0), _at(pose, 10)])).tolist() == [0, 1]     # A, B side by side
    a_moved, b_moved = _at(pose, 6), _at(pose, 17)                                     # A +6 px, B +7 px
    similarity = tracker.similarity(np.stack([a_moved, b_moved]), [2400.0, 2400.0])
    # the premise: a greedy matcher (best pair first) gives A's pose to B, and B's pose fits no other track
    assert similarity[0, 1] > similarity[0, 0] >= 0.3 and similarity[1, 0] < 0.3 <= similarity[1, 1]
    assert tracker.assign(np.stack([a_moved, b_moved])).tolist() == [0, 1]
    assert tracker.next_id == 2


def test_motion_prediction_keeps_ids_of_animals_that_cross():
    pose = _template(1, size=(120, 80))
    rng = np.random.default_rng(2)
    tracker = IdentityTracker(AP10K.sigmas, match_oks=0.3)
    ids = []
    for t in range(10):                       # A walks right at 10 px/frame, B left, 4 px lower: they cross
        frame = np.stack([_at(pose, 10 * t, 0), _at(pose, 95 - 10 * t, 4)])
        frame[:, :, :2] += rng.normal(0, 0.5, frame[:, :, :2].shape)
        ids.append(tracker.assign(frame[::-1] if t % 2 else frame).tolist())
    truth = [[0, 1] if t % 2 == 0 else [1, 0] for t in range(10)]
    assert ids == truth
    # the premise: just after the crossing (frame 5) each pose fits the other's last pose (frame 4) better
    still = IdentityTracker(AP10K.sigmas)
    still.assign(np.stack([_at(pose, 40, 0), _at(pose, 55, 4)]))
    similarity = still.similarity(np.stack([_at(pose, 50, 0), _at(pose, 45, 4)]), [9600.0, 9600.0])
    assert similarity[0, 1] > similarity[0, 0] and similarity[1, 0] > similarity[1, 1]


def test_the_gate_starts_a_new_track_for_a_pose_that_fits_no_prediction():
    pose = _template()
    for gate, expected in ((0.3, [[0], [0], [1]]), (0.0, [[0], [0], [0]])):
        tracker = IdentityTracker(AP10K.sigmas, match_oks=gate)
        ids = [tracker.assign(frame[None]).tolist() for frame in (_at(pose, 0), _at(pose, 3), _at(pose, 120))]
        assert ids == expected, gate


def test_an_animal_turning_round_on_the_spot_keeps_its_id():
    pose = _template()
    turned = pose.copy()
    turned[:, 0] = 30 + 0.25 * (30 - pose[:, 0])          # seen end-on, mirrored: a quarter as long, same centre
    tracker = IdentityTracker(AP10K.sigmas)
    tracker.assign(np.stack([_at(pose, 0), _at(pose, 200)]))
    similarity = tracker.similarity(turned[None], [1.0])
    assert similarity[0, 0] < tracker.match_oks                # the premise: OKS alone would start a new track
    assert tracker.assign(np.stack([turned, _at(pose, 200)])).tolist() == [0, 1]
    assert tracker.assign(np.stack([_at(turned, 45), _at(pose, 200)])).tolist() == [2, 1]   # too far: new animal


def test_one_track_gets_one_pose_per_frame():
    pose = _template()
    tracker = IdentityTracker(AP10K.sigmas)
    tracker.assign(pose[None])
    twice = tracker.assign(np.stack([pose, _at(pose, 1)]))
    assert sorted(twice.tolist()) == [0, 1]            # the second copy is a second track, not a second pose of 0


def test_ids_are_never_reused_without_a_limit():
    pose = _template()
    tracker = IdentityTracker(AP10K.sigmas, max_lost=2)
    seen = [tracker.assign(_at(pose, 0)[None]).tolist() for _ in range(3)]            # animal A
    seen += [tracker.assign(np.zeros((0, AP10K.num_keypoints, 3))).tolist() for _ in range(3)]   # gone 3 frames
    seen += [tracker.assign(_at(pose, 0)[None]).tolist()]     # back where it was, after more than max_lost
    seen += [tracker.assign(np.stack([_at(pose, 0), _at(pose, 300)])).tolist()]         # and a newcomer
    assert seen == [[0]] * 3 + [[]] * 3 + [[1], [1, 2]]
    assert [track.id for track in tracker.tracks] == [1, 2]


def test_with_n_animals_ids_stay_in_0_to_n_minus_1():
    pose = _template()
    tracker = IdentityTracker(AP10K.sigmas, max_animals=2, max_lost=2)
    three = np.stack([_at(pose, 0), _at(pose, 200), _at(pose, 400)])
    assert tracker.assign(three, scores=[0.9, 0.5, 0.8]).tolist() == [0, -1, 1]       # the worst of three is dropped
    assert tracker.assign(three[[0, 2]]).tolist() == [0, 1]
    # animal 1 hides; an animal seen far from both tracks takes over its id, not a third one
    for step in range(5):
        assert tracker.assign(np.stack([_at(pose, 0), _at(pose, 150, 150)])).tolist() == [0, 1], step
    assert tracker.next_id == 2 and sorted(tracker.resumed) == []
    # one animal under N=1: whatever jump, it keeps id 0
    single = IdentityTracker(AP10K.sigmas, max_animals=1)
    assert [single.assign(_at(pose, x)[None]).tolist() for x in (0, 500, 0)] == [[0]] * 3


# ------------------------------------------------------------------ smoothing
def test_one_euro_filter_reduces_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    times = np.arange(200) / 30.0
    still = 100.0 + rng.normal(0, 2.0, 200)
    smooth = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    filtered = np.array([smooth(np.array([v]), t)[0] for v, t in zip(still, times)])
    assert filtered[50:].std() < 0.5 * still[50:].std()
    ramp = 300.0 * times                                                      # 300 px/s
    lag = {}
    for beta in (0.0, 0.05):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        lag[beta] = abs(ramp[-1] - [f(np.array([v]), t)[0] for v, t in zip(ramp, times)][-1])
    assert lag[0.05] < 0.2 * lag[0.0]                                        # speed raises the cutoff
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)


def test_keypoint_smoother_skips_unseen_keypoints_and_tracks_are_separate():
    smoother = KeypointSmoother(fps=30, visibility_threshold=0.2, min_cutoff=1.0, beta=0.0)
    first = np.array([[10.0, 10.0, 0.9], [50.0, 50.0, 0.1]], np.float32)
    smoother(0, 0, first)
    moved = np.array([[20.0, 10.0, 0.9], [80.0, 50.0, 0.1]], np.float32)
    out = smoother(0, 1, moved)
    assert 10.0 < out[0, 0] < 20.0 and out[1, 0] == 80.0                     # filtered / passed through
    np.testing.assert_array_equal(smoother(1, 1, moved), moved)              # a new track starts unfiltered
