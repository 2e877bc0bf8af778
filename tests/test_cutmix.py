"""CutMix batch transform (SPEC §3): pasted regions, joint weights, lam."""
import pytest
import torch

from kitpose.datasets.cutmix import CutMixBatch, cutmix_batch, joints_inside_box, paste_box


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
        mixed_images, mixed_targets, mix = cutmix_batch(images, targets, weights, generator=generator)
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
    first = cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(7))
    second = cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[2].lam == second[2].lam and torch.equal(first[2].weight_b, second[2].weight_b)
    lams = {cutmix_batch(images, targets, weights, generator=torch.Generator().manual_seed(s))[2].lam
            for s in range(10)}
    assert len(lams) > 5


def test_cutmix_rejects_mismatched_batch():
    with pytest.raises(ValueError, match="targets"):
        cutmix_batch(torch.zeros(2, 3, 8, 8), torch.zeros(3, 4, 2, 2), torch.ones(3, 4, 1))
