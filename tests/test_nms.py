"""OKS, OKS-NMS and soft OKS-NMS against straightforward loop versions."""
import math

import numpy as np
import pytest

from kitpose.evaluation import image_oks_nms, oks_iou, oks_nms, soft_oks_nms

SIGMAS = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
                   0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089])
K = len(SIGMAS)


def loop_oks(a, b, area_a, area_b, sigmas, in_vis_thre=None):
    """OKS of two [K, 3] instances, one joint at a time."""
    total, count = 0.0, 0
    for j in range(len(sigmas)):
        if in_vis_thre is not None and not (a[j, 2] > in_vis_thre and b[j, 2] > in_vis_thre):
            continue
        squared = (a[j, 0] - b[j, 0]) ** 2 + (a[j, 1] - b[j, 1]) ** 2
        variance = (2 * sigmas[j]) ** 2
        scale = (area_a + area_b) / 2 + np.spacing(1)
        total += math.exp(-squared / variance / scale / 2)
        count += 1
    return total / count if count else 0.0


def loop_greedy_nms(instances, thr, sigmas):
    order = sorted(range(len(instances)), key=lambda i: -instances[i]["score"])
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [i for i in order
                 if loop_oks(instances[best]["keypoints"], instances[i]["keypoints"],
                             instances[best]["area"], instances[i]["area"], sigmas) <= thr]
    return keep


def make_instance(rng, center, size, score):
    keypoints = np.empty((K, 3))
    keypoints[:, :2] = center + rng.uniform(-size / 2, size / 2, size=(K, 2))
    keypoints[:, 2] = rng.uniform(0, 1, size=K)
    return {"keypoints": keypoints, "score": score, "area": float(size * size)}


@pytest.mark.parametrize("in_vis_thre", [None, 0.3])
def test_oks_iou_matches_loop(in_vis_thre):
    rng = np.random.default_rng(0)
    reference = make_instance(rng, np.array([100.0, 100.0]), 80.0, 1.0)
    others = [make_instance(rng, np.array([100.0, 100.0]) + rng.normal(0, 5, 2), 80.0, 1.0) for _ in range(12)]
    # near copies so that OKS spans (0, 1), not only ~0
    for other in others[:6]:
        other["keypoints"][:, :2] = reference["keypoints"][:, :2] + rng.normal(0, 2, size=(K, 2))
    others[-1]["keypoints"][:, 2] = 0.0  # no joint above the threshold
    det = np.stack([o["keypoints"] for o in others])
    areas = np.array([o["area"] for o in others]) * rng.uniform(0.5, 2.0, size=len(others))

    got = oks_iou(reference["keypoints"], det, reference["area"], areas, SIGMAS, in_vis_thre)
    expected = [loop_oks(reference["keypoints"], det[n], reference["area"], areas[n], SIGMAS, in_vis_thre)
                for n in range(len(others))]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert got[:6].min() > 0.2 and got.max() <= 1.0
    if in_vis_thre is not None:
        assert got[-1] == 0.0
    # flat [3K] inputs are accepted as well
    np.testing.assert_allclose(
        oks_iou(reference["keypoints"].ravel(), det.reshape(len(others), -1), reference["area"], areas,
                SIGMAS, in_vis_thre), got)


def test_identical_instances_suppressed_distant_kept():
    rng = np.random.default_rng(1)
    base = make_instance(rng, np.array([200.0, 200.0]), 100.0, 0.5)
    copies = [dict(base, score=s) for s in (0.5, 0.9, 0.7)]
    distant = make_instance(rng, np.array([600.0, 200.0]), 100.0, 0.6)
    instances = copies + [distant]
    keep = oks_nms(instances, 0.9, SIGMAS)
    assert keep == [1, 3]  # best copy first, then the distant one; the other copies go
    # a threshold at 1.0 keeps identical copies (OKS 1.0 is not above it)
    assert sorted(oks_nms(instances, 1.0, SIGMAS)) == [0, 1, 2, 3]


def test_oks_nms_matches_loop_on_random_scene():
    rng = np.random.default_rng(2)
    instances = []
    for _ in range(5):  # five people, each detected several times with jitter
        person = make_instance(rng, rng.uniform(100, 900, 2), rng.uniform(40, 160), 0.0)
        for _ in range(rng.integers(1, 5)):
            jittered = person["keypoints"].copy()
            jittered[:, :2] += rng.normal(0, 3, size=(K, 2))
            instances.append({"keypoints": jittered, "score": float(rng.uniform()),
                              "area": person["area"] * float(rng.uniform(0.8, 1.2))})
    keypoints = np.stack([inst["keypoints"] for inst in instances]).astype(np.float32)
    scores = np.array([inst["score"] for inst in instances], np.float32)
    areas = np.array([inst["area"] for inst in instances], np.float32)
    for thr in (0.5, 0.9):
        keep = oks_nms(instances, thr, SIGMAS)
        assert keep == loop_greedy_nms(instances, thr, SIGMAS)
        assert len(keep) < len(instances)
        # the per-image function evaluation and PosePredictor call: the same picks from arrays
        as_float32 = [{"keypoints": k, "score": s, "area": a} for k, s, a in zip(keypoints, scores, areas)]
        kept = image_oks_nms(keypoints, scores, areas, SIGMAS, thr)
        assert kept.dtype == np.int64 and kept.tolist() == oks_nms(as_float32, thr, SIGMAS)
        assert image_oks_nms(keypoints, scores, areas, SIGMAS, thr, soft=True).tolist() == \
            soft_oks_nms(as_float32, thr, SIGMAS)


def test_soft_nms_decays_duplicate_scores():
    rng = np.random.default_rng(3)
    first = make_instance(rng, np.array([200.0, 200.0]), 100.0, 0.9)
    duplicate = dict(first, score=0.85)
    other = make_instance(rng, np.array([700.0, 200.0]), 100.0, 0.8)
    instances = [first, duplicate, other]
    # plain score order would be 0, 1, 2; the duplicate's score decays to 0.85 * exp(-1 / 0.9) < 0.8
    assert soft_oks_nms(instances, 0.9, SIGMAS) == [0, 2, 1]
    # soft NMS drops nothing below max_dets, but caps the count there
    many = [dict(first, score=float(s)) for s in rng.uniform(size=30)]
    assert len(soft_oks_nms(many, 0.9, SIGMAS)) == 20
    assert len(soft_oks_nms(many, 0.9, SIGMAS, max_dets=5)) == 5
    # scores are not modified in place
    assert instances[1]["score"] == 0.85


def test_soft_nms_matches_hand_decay():
    """Three instances: OKS values from the loop version drive the expected pick order."""
    rng = np.random.default_rng(4)
    a = make_instance(rng, np.array([300.0, 300.0]), 120.0, 0.95)
    b = {"keypoints": a["keypoints"].copy(), "score": 0.9, "area": a["area"]}
    b["keypoints"][:, :2] += 4.0
    c = {"keypoints": a["keypoints"].copy(), "score": 0.7, "area": a["area"]}
    c["keypoints"][:, :2] += 40.0
    thr = 0.9
    decayed_b = 0.9 * math.exp(-loop_oks(a["keypoints"], b["keypoints"], a["area"], b["area"], SIGMAS) ** 2 / thr)
    decayed_c = 0.7 * math.exp(-loop_oks(a["keypoints"], c["keypoints"], a["area"], c["area"], SIGMAS) ** 2 / thr)
    # b (near copy of a) outranks c before the decay and falls below it after
    assert decayed_b < decayed_c < 0.7
    assert soft_oks_nms([a, b, c], thr, SIGMAS) == [0, 2, 1]


def test_empty_and_bad_input():
    assert oks_nms([], 0.9, SIGMAS) == []
    assert soft_oks_nms([], 0.9, SIGMAS) == []
    with pytest.raises(KeyError, match="area"):
        oks_nms([{"keypoints": np.zeros((K, 3)), "score": 1.0}], 0.9, SIGMAS)
    with pytest.raises(ValueError, match=r"\[17, 3\]"):
        oks_nms([{"keypoints": np.zeros((5, 3)), "score": 1.0, "area": 1.0}], 0.9, SIGMAS)
    assert image_oks_nms(np.zeros((0, K, 3)), [], [], SIGMAS, 0.9).tolist() == []
    assert image_oks_nms(np.zeros((1, K, 3)), [0.5], [10.0], SIGMAS, 0.9, soft=True).tolist() == [0]
    with pytest.raises(ValueError, match=r"keypoints \[2, 17, 3\] and areas \[2\], got \(2, 5, 3\)"):
        image_oks_nms(np.zeros((2, 5, 3)), [1.0, 0.5], [1.0, 1.0], SIGMAS, 0.9)
