"""CutMix batch transform (docs/published_behaviour.md, Training): pasted regions, joint weights, lam."""
import math
from collections import namedtuple

import numpy as np
import pytest
import torch

from kitpose.config import load_config
from kitpose.datasets.cutmix import (CutMixBatch, CutMixDraws, check_cutmix_weights, cutmix_batch, draw_published,
                                     heatmap_argmax, heatmap_box_at, joints_inside_box, paste_box, published_box,
                                     published_cutmix)
from kitpose.losses import build_criterion


def constant_batch(batch, joints, image_hw, heatmap_hw):
    """Sample i: images filled with i + 1, targets with 10 * (i + 1) (so pasted regions are identifiable)."""
    ids = torch.arange(1, batch + 1, dtype=torch.float32)
    images = ids.view(-1, 1, 1, 1).expand(batch, 3, *image_hw).clone()
    targets = (10 * ids).view(-1, 1, 1, 1).expand(batch, joints, *heatmap_hw).clone()
    return images, targets, torch.ones(batch, joints, 1)


def peak_targets(peaks_xy, heatmap_hw):
    """One-hot target maps [B, K, h, w] with the peak of joint k of sample b at peaks_xy[b][k]."""
    peaks = torch.as_tensor(peaks_xy)
    batch, joints = peaks.shape[:2]
    targets = torch.zeros(batch, joints, *heatmap_hw)
    b, k = torch.meshgrid(torch.arange(batch), torch.arange(joints), indexing="ij")
    targets[b, k, peaks[..., 1], peaks[..., 0]] = 1.0
    return targets


def test_box_region_replaced_non_square():
    # H=64, W=48 image; h=16, w=12 heatmap; box in heatmap cells (x1, y1, x2, y2)
    images, targets, weights = constant_batch(3, 2, (64, 48), (16, 12))
    box = (2, 5, 7, 9)
    mixed_images, mixed_targets, mix = paste_box(images, targets, weights, torch.tensor([2, 0, 1]), box)
    expected_source = [3, 1, 2]
    for sample, source in enumerate(expected_source):
        image_region = mixed_images[sample, :, 20:36, 8:28]   # box x stride 4 in y and in x
        assert torch.all(image_region == source)
        assert torch.all(mixed_targets[sample, :, 5:9, 2:7] == 10 * source)
        outside = torch.ones(64, 48, dtype=torch.bool)
        outside[20:36, 8:28] = False
        assert torch.all(mixed_images[sample][:, outside] == sample + 1)
        outside_heatmap = torch.ones(16, 12, dtype=torch.bool)
        outside_heatmap[5:9, 2:7] = False
        assert torch.all(mixed_targets[sample][:, outside_heatmap] == 10 * (sample + 1))
    assert mix.lam == pytest.approx(1 - (16 * 20) / (64 * 48))
    # inputs are not modified in place
    assert torch.all(images[0] == 1) and torch.all(targets[0] == 10)


def test_joint_weights_hand_made():
    heatmap_hw = (8, 8)
    box = (2, 2, 5, 5)   # cells x, y in [2, 5)
    # joints (x, y) of each sample; inside the box: sample 0 joint 1, sample 1 joints 0 and 2
    peaks = [[(0, 0), (3, 3), (7, 1)],
             [(2, 2), (5, 2), (4, 4)]]
    targets = peak_targets(peaks, heatmap_hw)
    weights = torch.tensor([[[1.0], [1.0], [0.0]],
                            [[1.0], [0.5], [0.0]]])
    images = torch.zeros(2, 3, 32, 32)
    _, mixed_targets, mix = paste_box(images, targets, weights, torch.tensor([1, 0]), box)
    # A: original weights, joints inside the box zeroed
    assert mix.weight_a.squeeze(-1).tolist() == [[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]]
    # B: the pasted sample's own weights, only its joints inside the box
    # sample 0 receives sample 1: joints 0 (w 1) and 2 (w 0, invisible) inside -> [1, 0, 0]
    # sample 1 receives sample 0: joint 1 (w 1) inside -> [0, 1, 0]
    assert mix.weight_b.squeeze(-1).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    # the pasted joints' peaks are in the mixed target where weight_b says they are
    assert mixed_targets[0, 0, 2, 2] == 1.0 and mixed_targets[1, 1, 3, 3] == 1.0
    assert mix.lam == pytest.approx(1 - (12 * 12) / (32 * 32))


def test_joints_inside_box_uses_argmax_x_along_width():
    # 4 rows x 12 columns: joint 0 at x=9, y=1 is inside x in [8, 12), y in [0, 2); joint 1 (x=1, y=3) is not
    targets = peak_targets([[(9, 1), (1, 3)]], (4, 12))
    inside = joints_inside_box(targets, (8, 0, 12, 2))
    assert inside.tolist() == [[True, False]]


def test_cutmix_batch_lam_is_area_and_regions_agree():
    images, targets, weights = constant_batch(4, 3, (64, 48), (16, 12))
    checked = 0
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        mixed_images, mixed_targets, mix = cutmix_batch(images, targets, weights, generator=generator,
                                                         weights="corrected")
        assert isinstance(mix, CutMixBatch) and 0.0 <= mix.lam <= 1.0
        assert mix.weight_a.shape == weights.shape and mix.weight_b.shape == weights.shape
        for sample in range(4):
            changed = (mixed_images[sample, 0] != sample + 1)
            if not changed.any():
                continue
            checked += 1
            assert changed.float().mean().item() == pytest.approx(1 - mix.lam)
            # the image region is exactly the heatmap region scaled by the stride (4 in x and y)
            changed_heatmap = mixed_targets[sample, 0] != 10 * (sample + 1)
            assert torch.equal(changed_heatmap.repeat_interleave(4, 0).repeat_interleave(4, 1), changed)
    assert checked > 10


def test_cutmix_batch_is_deterministic_with_generator():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(6, 3, 32, 32, generator=generator)
    targets = torch.rand(6, 4, 8, 8, generator=generator)
    weights = torch.ones(6, 4, 1)
    first = cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(7), weights="corrected")
    second = cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(7), weights="corrected")
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[2].lam == second[2].lam and torch.equal(first[2].weight_b, second[2].weight_b)
    lams = {cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(s),
                         weights="corrected")[2].lam for s in range(10)}
    assert len(lams) > 5


def test_cutmix_rejects_mismatched_batch():
    with pytest.raises(ValueError, match="targets"):
        cutmix_batch(torch.zeros(2, 3, 8, 8), torch.zeros(3, 4, 2, 2), torch.ones(3, 4, 1))


# ------------------------------------------------------------------ published mode (the default)

def case_draws(case):
    return CutMixDraws(case["r"], case["lam_draw"], case["permutation"], case["cx"], case["cy"])


@pytest.fixture(scope="module")
def cutmix_cases(pipeline_reference):
    return pipeline_reference["cutmix_cases"]


def test_published_matches_reference_cases(cutmix_cases):
    assert len(cutmix_cases) == 9
    for case in cutmix_cases:
        images, targets, weights = case["images"], case["targets"], case["target_weight"]
        draws = case_draws(case)
        images_before, targets_before = images.clone(), targets.clone()
        mixed_images, mixed_targets, mix = cutmix_batch(images, targets, weights, weights="published",
                                                        prob=case["cutmix_prob"], draws=draws)
        if not case["applied"]:
            # published: the inputs themselves, the input weights as A, no B, lam -1; here: mix None
            assert mixed_images is images and mixed_targets is targets and mix is None, case["name"]
            assert case["weight_b"] is None and case["lam"] == -1
            assert torch.equal(case["weight_a"], weights)
            continue
        box = published_box(images.shape[2:], targets.shape[2:], case["lam_draw"], case["cx"], case["cy"])
        assert [list(box.image_rows), list(box.image_cols)] == [case["image_rows"], case["image_cols"]], case["name"]
        assert [list(box.heatmap_rows), list(box.heatmap_cols)] == [case["heatmap_rows"], case["heatmap_cols"]]
        (r0, r1), (c0, c1) = box.image_rows, box.image_cols
        (h0, h1), (g0, g1) = box.heatmap_rows, box.heatmap_cols
        permutation = case["permutation"]
        expected_images = images.clone()
        expected_images[:, :, r0:r1, c0:c1] = images[permutation][:, :, r0:r1, c0:c1]
        expected_targets = targets.clone()
        expected_targets[:, :, h0:h1, g0:g1] = targets[permutation][:, :, h0:h1, g0:g1]
        assert torch.equal(mixed_images, expected_images) and torch.equal(mixed_targets, expected_targets)
        # the stored sums are of the whole batch (blind to the permutation); order of summation moves the last bit
        assert mixed_images.double().sum().item() == case["input_mix_sum"]
        assert mixed_targets.double().sum().item() == pytest.approx(case["target_mix_sum"], rel=1e-12)
        # what the inside tests read
        assert torch.equal(torch.stack(heatmap_argmax(mixed_targets), -1).float(), case["argmax_mixed"])
        assert torch.equal(torch.stack(heatmap_argmax(targets[permutation]), -1).float(), case["argmax_partner"])
        # float32 weights, values exactly the published float64 ones
        assert mix.weight_a.dtype == weights.dtype and mix.weight_b.dtype == weights.dtype
        assert torch.equal(mix.weight_a.double(), case["weight_a"]), case["name"]
        assert torch.equal(mix.weight_b.double(), case["weight_b"]), case["name"]
        assert mix.lam == case["lam"], case["name"]
        assert torch.equal(images, images_before) and torch.equal(targets, targets_before)   # inputs untouched


def _visible_disagreement(published, corrected, visible):
    differs = (published != corrected).squeeze(-1) & visible
    return differs.sum().item(), visible.sum().item()


def test_report_published_vs_corrected_weights(cutmix_cases):
    """Measured, not asserted: how often the two modes' weights differ on visible joints, from the same draws.

    'same draws' runs each mode end to end (the corrected box snaps to heatmap cells around the same
    centre); 'same box' applies the corrected inside test to the published heatmap box, isolating the quirks."""
    totals = {"end_to_end": [0] * 6, "same_box": [0] * 6}
    for case in cutmix_cases:
        if not case["applied"]:
            continue
        images, targets, weights = case["images"], case["targets"], case["target_weight"]
        permutation = case["permutation"]
        _, _, published = published_cutmix(images, targets, weights, case_draws(case))
        corrected_box = heatmap_box_at((images.shape[3], images.shape[2]), (targets.shape[3], targets.shape[2]),
                                       case["lam_draw"], case["cy"], case["cx"])
        _, _, corrected = paste_box(images, targets, weights, permutation, corrected_box)
        box = published_box(images.shape[2:], targets.shape[2:], case["lam_draw"], case["cx"], case["cy"])
        same_box = (box.heatmap_cols[0], box.heatmap_rows[0], box.heatmap_cols[1], box.heatmap_rows[1])
        _, _, corrected_same = paste_box(images, targets, weights, permutation, same_box)
        visible_a = weights.squeeze(-1) > 0
        visible_b = weights[permutation].squeeze(-1) > 0
        line = [case["name"][:40]]
        for key, other in (("end_to_end", corrected), ("same_box", corrected_same)):
            a = _visible_disagreement(published.weight_a, other.weight_a, visible_a)
            b = _visible_disagreement(published.weight_b, other.weight_b, visible_b)
            # per joint of a mixed sample: A or B differs, among joints visible in A or B
            either = (((published.weight_a != other.weight_a).squeeze(-1) & visible_a)
                      | ((published.weight_b != other.weight_b).squeeze(-1) & visible_b))
            for slot, value in enumerate(a + b + (either.sum().item(), (visible_a | visible_b).sum().item())):
                totals[key][slot] += value
            line.append(f"{key}: A {a[0]}/{a[1]} B {b[0]}/{b[1]}")
        line.append(f"lam {published.lam:.4f} vs {corrected.lam:.4f}")
        print(" | ".join(line))
    for key, (da, na, db, nb, de, ne) in totals.items():
        print(f"{key}: A differs on {da}/{na} visible joints ({da / na:.1%}), B on {db}/{nb} ({db / nb:.1%}), "
              f"A or B on {de}/{ne} ({de / ne:.1%})")
        assert 0 <= da <= na and 0 <= db <= nb


def test_published_draw_order_and_sources():
    calls = []

    class RecordingRng:
        def __init__(self):
            self.values = iter([0.25, 0.6, 7, 3])

        def random(self):
            calls.append("random")
            return next(self.values)

        def beta(self, a, b):
            calls.append(("beta", a, b))
            return next(self.values)

        def integers(self, high):
            calls.append(("integers", high))
            return next(self.values)

    draws = draw_published(5, (64, 48), rng=RecordingRng(), generator=torch.Generator().manual_seed(1))
    assert calls == ["random", ("beta", 1.0, 1.0), ("integers", 64), ("integers", 48)]
    assert draws.r == 0.25 and draws.lam_draw == 0.6 and (draws.cx, draws.cy) == (7, 3)
    assert torch.equal(draws.permutation, torch.randperm(5, generator=torch.Generator().manual_seed(1)))
    # r >= prob: nothing else is drawn
    calls.clear()
    assert draw_published(5, (64, 48), prob=0.2, rng=RecordingRng()) == CutMixDraws(0.25)
    assert calls == ["random"]


def test_published_training_draws_are_reproducible_and_every_batch_mixes():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 32, 32, generator=generator)
    targets = torch.rand(4, 3, 8, 8, generator=generator)
    weights = torch.ones(4, 3, 1)
    first = cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(5))
    second = cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first[0], second[0]) and torch.equal(first[2].weight_a, second[2].weight_a)
    assert first[2].lam == second[2].lam
    lams = [cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(s))[2].lam
            for s in range(10)]
    assert len(set(lams)) > 5
    with_rng = cutmix_batch(images, targets, weights, rng=np.random.default_rng(3))
    assert with_rng[2] is not None


def test_published_box_non_square_and_other_strides():
    # H 64 x W 48 image, 16 x 12 heatmap: rows and columns each floored by their stride 4
    box = published_box((64, 48), (16, 12), 0.5, 30, 10)
    side = math.sqrt(0.5)
    cut_rows, cut_cols = int(64 * side), int(48 * side)
    assert box.image_rows == (30 - cut_rows // 2, 30 + cut_rows // 2)
    assert box.image_cols == (0, 10 + cut_cols // 2)
    assert box.heatmap_rows == (box.image_rows[0] // 4, box.image_rows[1] // 4)
    assert box.heatmap_cols == (0, box.image_cols[1] // 4)
    # stride 2 in rows, 8 in columns
    box = published_box((32, 64), (16, 8), 0.0, 16, 32)
    assert box.image_rows == (0, 32) and box.heatmap_rows == (0, 16)
    box = published_box((32, 64), (16, 8), 0.75, 13, 30)
    assert box.image_rows == (5, 21) and box.heatmap_rows == (2, 10)
    assert box.image_cols == (14, 46) and box.heatmap_cols == (1, 5)


def test_published_inside_test_swaps_axes_and_is_inclusive():
    # 8 x 8 heatmap, 32 x 32 image; box rows [8, 16) -> heatmap rows [2, 4], columns [20, 28) -> [5, 7]
    images = torch.zeros(2, 3, 32, 32)
    draws = CutMixDraws(0.0, 1 - 0.25 ** 2, torch.tensor([1, 0]), 12, 24)
    box = published_box((32, 32), (8, 8), draws.lam_draw, draws.cx, draws.cy)
    assert (box.heatmap_rows, box.heatmap_cols) == ((2, 4), (5, 7))
    # joint 0 at (x 3, y 6): x in the row range, y in the column range -> "inside" (it is not, in the pasted
    # region); joint 1 at (x 6, y 3) lies in the pasted region -> "outside"; joint 2 at (x 4, y 7): the
    # inclusive stop bounds
    peaks = [[(3, 6), (6, 3), (4, 7)], [(0, 0), (0, 0), (0, 0)]]
    targets = peak_targets(peaks, (8, 8))
    targets[1] = 0.0     # sample 1's maps are zero: its argmax is (0, 0), never inside this box
    weights = torch.ones(2, 3, 1)
    _, _, mix = published_cutmix(images, targets, weights, draws)
    # sample 1 receives sample 0: B marks sample 0's "inside" joints 0 and 2
    assert mix.weight_b.squeeze(-1).tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]
    # sample 0 receives zero maps over its pasted region; its joints 0 and 2 are outside the region,
    # so they stay the maxima of the mixed maps and count as "inside"; joint 1 was pasted over:
    # the mixed map's first maximum is then (0, 0) (all zero), "outside", so A keeps it
    assert mix.weight_a.squeeze(-1).tolist() == [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    assert mix.lam == 1 - 8 * 8 / (32 * 32)


def test_published_weights_keep_the_loss_float32(cutmix_cases):
    case = cutmix_cases[0]
    _, targets, mix = published_cutmix(case["images"], case["targets"], case["target_weight"], case_draws(case))
    outputs = namedtuple("Outputs", ["intermediate", "parts", "heatmaps"])(targets.flip(3), None, targets.flip(2))
    total, parts = build_criterion(load_config())(outputs, targets, case["target_weight"], mix=mix)
    assert total.dtype == torch.float32 and all(value.dtype == torch.float32 for value in parts.values())


def test_cutmix_weights_config_and_errors():
    cfg = load_config()
    assert cfg.DATASET.CUTMIX_WEIGHTS == "published" and cfg.DATASET.CUTMIX_PROB == 1.0
    assert load_config(opts=["DATASET.CUTMIX_WEIGHTS", "corrected"]).DATASET.CUTMIX_WEIGHTS == "corrected"
    assert check_cutmix_weights("published") == "published"
    with pytest.raises(ValueError, match="DATASET.CUTMIX_WEIGHTS = 'intent'"):
        check_cutmix_weights("intent")
    batch = (torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 2, 2), torch.ones(2, 4, 1))
    with pytest.raises(ValueError, match="DATASET.CUTMIX_WEIGHTS = 'Published'"):
        cutmix_batch(*batch, weights="Published")
    with pytest.raises(ValueError, match="DATASET.CUTMIX_PROB"):
        cutmix_batch(*batch, prob=1.5)
    with pytest.raises(ValueError, match="published"):
        cutmix_batch(*batch, weights="corrected", draws=CutMixDraws(0.0, 0.5, [1, 0], 1, 1))


@pytest.mark.parametrize("mode", ["published", "corrected"])
def test_cutmix_prob_zero_never_mixes(mode):
    batch = (torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 2, 2), torch.ones(2, 4, 1))
    for seed in range(5):
        images, targets, mix = cutmix_batch(*batch, generator=torch.Generator().manual_seed(seed), weights=mode,
                                            prob=0.0)
        assert mix is None and images is batch[0] and targets is batch[1]
