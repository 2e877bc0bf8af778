"""Codecs: box/affine geometry, Gaussian targets and heatmap decoding (flip, DARK, back-projection)."""
import cv2
import numpy as np
import pytest
import torch

from kitpose.codecs import (affine_transform_points, box_to_center_scale, dark_refine, flip_back,
                            fliplr_joints, fuse_flip_heatmaps, generate_gaussian_targets, get_affine_transform,
                            get_final_preds, get_max_preds, heatmap_to_image_coords, transform_preds)


# ------------------------------------------------------------------ affine
def three_point_affine(center, scale, rotation_deg, output_size, shift=(0.0, 0.0), inverse=False):
    """HRNet's construction from three point pairs, as an independent check of the closed form."""
    box = np.asarray(scale, dtype=np.float64) * 200.0
    angle = np.deg2rad(rotation_deg)
    up = np.array([0.0, -0.5 * box[0]])
    src_up = np.array([up[0] * np.cos(angle) - up[1] * np.sin(angle), up[0] * np.sin(angle) + up[1] * np.cos(angle)])
    dst_w, dst_h = output_size
    src = np.zeros((3, 2))
    dst = np.zeros((3, 2))
    src[0] = np.asarray(center) + box * np.asarray(shift)
    src[1] = src[0] + src_up
    dst[0] = [0.5 * dst_w, 0.5 * dst_h]
    dst[1] = dst[0] + np.array([0.0, -0.5 * dst_w])
    for points in (src, dst):
        direction = points[0] - points[1]
        points[2] = points[1] + np.array([-direction[1], direction[0]])
    if inverse:
        return cv2.getAffineTransform(dst.astype(np.float32), src.astype(np.float32))
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32))


@pytest.mark.parametrize("rotation, shift, output_size", [(0.0, (0, 0), (64, 64)), (30.0, (0, 0), (48, 64)),
                                                         (-45.0, (0.1, -0.2), (192, 256))])
@pytest.mark.parametrize("inverse", [False, True])
def test_affine_matches_three_point_construction(rotation, shift, output_size, inverse):
    center, scale = np.array([150.0, 90.0]), np.array([1.2, 1.6])
    matrix = get_affine_transform(center, scale, rotation, output_size, shift=shift, inverse=inverse)
    expected = three_point_affine(center, scale, rotation, output_size, shift, inverse)
    assert matrix.shape == (2, 3)
    np.testing.assert_allclose(matrix, expected, rtol=1e-4, atol=1e-3)


def test_affine_inverse_round_trip():
    rng = np.random.default_rng(0)
    center, scale = np.array([320.0, 240.0]), np.array([2.0, 2.5])
    forward = get_affine_transform(center, scale, 25.0, (192, 256))
    backward = get_affine_transform(center, scale, 25.0, (192, 256), inverse=True)
    points = rng.uniform(0, 600, size=(50, 2))
    np.testing.assert_allclose(affine_transform_points(affine_transform_points(points, forward), backward),
                               points, atol=1e-9)
    # the box centre lands at the crop centre
    np.testing.assert_allclose(affine_transform_points(center[None], forward), [[96.0, 128.0]], atol=1e-9)


def test_box_to_center_scale_aspect_fix():
    center, scale = box_to_center_scale([10, 20, 100, 50], aspect_ratio=192 / 256)
    np.testing.assert_allclose(center, [60.0, 45.0])
    # too wide for 3:4 -> height becomes 100 / 0.75, then 1.25 padding, in units of 200 px
    np.testing.assert_allclose(scale, [100 / 200 * 1.25, 100 / 0.75 / 200 * 1.25], rtol=1e-6)
    _, scale = box_to_center_scale([0, 0, 40, 100], aspect_ratio=1.0, padding=1.0)
    np.testing.assert_allclose(scale, [0.5, 0.5])


def test_fliplr_joints_swaps_pairs_and_mirrors():
    joints = np.array([[10.0, 5.0, 1.0], [20.0, 6.0, 0.0], [30.0, 7.0, 1.0]])
    flipped = fliplr_joints(joints, width=100, flip_pairs=[[0, 1]])
    np.testing.assert_allclose(flipped, [[79.0, 6.0, 0.0], [89.0, 5.0, 1.0], [69.0, 7.0, 1.0]])
    np.testing.assert_allclose(fliplr_joints(flipped, 100, [[0, 1]]), joints)
    assert joints[0, 0] == 10.0


# ------------------------------------------------------------------ targets
def per_joint_targets(joints, visibility, image_size, heatmap_size, sigma):
    """HRNet's per-joint loop, as the reference for the vectorised version."""
    heatmap_w, heatmap_h = heatmap_size
    target = np.zeros((len(joints), heatmap_h, heatmap_w), dtype=np.float32)
    weight = np.array(visibility, dtype=np.float32).reshape(-1, 1)
    radius = sigma * 3
    stride = np.asarray(image_size) / np.asarray(heatmap_size)
    for joint in range(len(joints)):
        mu_x = int(joints[joint][0] / stride[0] + 0.5)
        mu_y = int(joints[joint][1] / stride[1] + 0.5)
        ul = [int(mu_x - radius), int(mu_y - radius)]
        br = [int(mu_x + radius + 1), int(mu_y + radius + 1)]
        if ul[0] >= heatmap_w or ul[1] >= heatmap_h or br[0] < 0 or br[1] < 0:
            weight[joint] = 0
            continue
        size = 2 * radius + 1
        x = np.arange(0, size, 1, np.float32)
        y = x[:, None]
        g = np.exp(-((x - size // 2) ** 2 + (y - size // 2) ** 2) / (2 * sigma ** 2))
        g_x = max(0, -ul[0]), min(br[0], heatmap_w) - ul[0]
        g_y = max(0, -ul[1]), min(br[1], heatmap_h) - ul[1]
        img_x = max(0, ul[0]), min(br[0], heatmap_w)
        img_y = max(0, ul[1]), min(br[1], heatmap_h)
        if weight[joint] > 0.5:
            target[joint][img_y[0]:img_y[1], img_x[0]:img_x[1]] = g[g_y[0]:g_y[1], g_x[0]:g_x[1]]
    return target, weight


@pytest.mark.parametrize("sigma, image_size, heatmap_size", [(2, (256, 256), (64, 64)), (3, (288, 384), (72, 96)),
                                                            (1.5, (192, 256), (48, 64)), (1.7, (64, 64), (16, 16))])
def test_gaussian_targets_equal_per_joint_loop(sigma, image_size, heatmap_size):
    rng = np.random.default_rng(1)
    joints = rng.uniform(-40, np.array(image_size) + 40, size=(40, 2))
    joints[:3] = [[0.0, 0.0], [image_size[0] - 1, image_size[1] - 1], [-30.0, 10.0]]
    visibility = (rng.uniform(size=40) > 0.2).astype(np.float32)
    target, weight = generate_gaussian_targets(joints, visibility, image_size, heatmap_size, sigma)
    expected_target, expected_weight = per_joint_targets(joints, visibility, image_size, heatmap_size, sigma)
    assert target.dtype == np.float32 and target.shape == (40, heatmap_size[1], heatmap_size[0])
    np.testing.assert_array_equal(weight, expected_weight)
    np.testing.assert_allclose(target, expected_target, atol=1e-7)
    assert 0.0 < weight.mean() < 1.0


def test_gaussian_target_peak_and_weights():
    joints = np.array([[21.0, 37.0], [21.0, 37.0], [500.0, 10.0]])
    target, weight = generate_gaussian_targets(joints, [1, 0, 1], (64, 64), (16, 16), sigma=2)
    assert target[0].max() == 1.0
    assert np.unravel_index(target[0].argmax(), target[0].shape) == (9, 5)   # int(37/4+.5), int(21/4+.5)
    assert target[0, 9, 5 + 6] > 0 and target[0, 9, 5 + 7] == 0            # 3-sigma window
    np.testing.assert_array_equal(weight[:, 0], [1, 0, 0])
    assert not target[1].any() and not target[2].any()


# ------------------------------------------------------------------ decoding
def subpixel_gaussians(centers_xy, heatmap_hw, sigma):
    """Unquantised Gaussians [N, K, h, w] centred at sub-pixel heatmap locations."""
    ys, xs = np.mgrid[0:heatmap_hw[0], 0:heatmap_hw[1]]
    cx = centers_xy[..., 0, None, None]
    cy = centers_xy[..., 1, None, None]
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2)).astype(np.float32)


def test_get_max_preds():
    heatmaps = np.zeros((2, 2, 4, 5), dtype=np.float32)
    heatmaps[0, 0, 3, 1] = 0.7
    heatmaps[0, 1] = -1.0
    heatmaps[1, 0, 0, 4] = 0.2
    heatmaps[1, 1, 2, 2] = 0.9
    coords, maxvals = get_max_preds(heatmaps)
    np.testing.assert_array_equal(coords, [[[1, 3], [0, 0]], [[4, 0], [2, 2]]])
    np.testing.assert_allclose(maxvals[..., 0], [[0.7, -1.0], [0.2, 0.9]])
    assert coords.dtype == np.float32 and maxvals.shape == (2, 2, 1)


def test_flip_back_numpy_and_torch():
    rng = np.random.default_rng(2)
    heatmaps = rng.random((2, 5, 6, 7)).astype(np.float32)
    pairs = [[1, 2], [3, 4]]
    once = flip_back(heatmaps, pairs)
    np.testing.assert_array_equal(once[:, 1], heatmaps[:, 2, :, ::-1])
    np.testing.assert_array_equal(once[:, 0], heatmaps[:, 0, :, ::-1])
    np.testing.assert_array_equal(flip_back(once, pairs), heatmaps)
    as_torch = flip_back(torch.from_numpy(heatmaps), pairs)
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_array_equal(as_torch.numpy(), once)
    assert torch.equal(flip_back(as_torch, pairs), torch.from_numpy(heatmaps))
    with pytest.raises(ValueError, match="flip pair"):
        flip_back(heatmaps, [[0, 5]])


def test_fuse_flip_heatmaps():
    generator = torch.Generator().manual_seed(0)
    heatmaps = torch.rand(2, 3, 4, 6, generator=generator)
    flipped = torch.rand(2, 3, 4, 6, generator=generator)
    restored = flip_back(flipped, [[0, 2]])
    unshifted = fuse_flip_heatmaps(heatmaps, flipped, [[0, 2]], shift_heatmap=False)
    assert torch.allclose(unshifted, (heatmaps + restored) / 2)
    shifted = fuse_flip_heatmaps(heatmaps, flipped, [[0, 2]], shift_heatmap=True)
    assert torch.allclose(shifted[..., 1:], (heatmaps[..., 1:] + restored[..., :-1]) / 2)
    assert torch.allclose(shifted[..., 0], (heatmaps[..., 0] + restored[..., 0]) / 2)


def test_dark_recovers_subpixel_locations():
    rng = np.random.default_rng(3)
    truth = rng.uniform([6, 6], [42, 58], size=(8, 17, 2))          # x in [6, 42), y in [6, 58)
    heatmaps = subpixel_gaussians(truth, (64, 48), sigma=2.0)
    coords, _ = get_max_preds(heatmaps)
    refined = dark_refine(heatmaps, coords, blur_kernel=11)
    argmax_error = np.linalg.norm(coords - truth, axis=-1)
    dark_error = np.linalg.norm(refined - truth, axis=-1)
    print(f"argmax mean error {argmax_error.mean():.3f} px, DARK mean {dark_error.mean():.4f} px, "
          f"max {dark_error.max():.4f} px")
    assert dark_error.max() < 0.1
    assert dark_error.mean() < 0.25 * argmax_error.mean()
    # does not modify its input
    np.testing.assert_array_equal(heatmaps, subpixel_gaussians(truth, (64, 48), sigma=2.0))


def test_dark_keeps_integer_targets_and_border_locations():
    joints = np.array([[100.0, 60.0], [4.0, 128.0]])                  # second one is 1 heatmap px from the left
    target, _ = generate_gaussian_targets(joints, [1, 1], (192, 256), (48, 64), sigma=2)
    coords, _ = get_max_preds(target[None])
    refined = dark_refine(target[None], coords, blur_kernel=11)
    np.testing.assert_allclose(refined[0, 0], [25.0, 15.0], atol=1e-4)
    np.testing.assert_array_equal(refined[0, 1], coords[0, 1])


def test_get_final_preds_end_to_end():
    rng = np.random.default_rng(4)
    image_size, heatmap_size = (192, 256), (48, 64)
    boxes = np.array([[40.0, 30.0, 120.0, 200.0], [300.0, 100.0, 260.0, 90.0]])
    centers, scales, truth, maps = [], [], [], []
    for box in boxes:
        center, scale = box_to_center_scale(box, image_size[0] / image_size[1])
        image_points = box[:2] + rng.uniform(0.15, 0.85, size=(17, 2)) * box[2:]
        crop = get_affine_transform(center, scale, 0.0, heatmap_size)
        maps.append(subpixel_gaussians(affine_transform_points(image_points, crop), heatmap_size[::-1], 2.0))
        centers.append(center)
        scales.append(scale)
        truth.append(image_points)
    heatmaps = np.stack(maps)
    preds, maxvals = get_final_preds(heatmaps, np.stack(centers), np.stack(scales), post_process=True,
                                     blur_kernel=11)
    plain, _ = get_final_preds(heatmaps, np.stack(centers), np.stack(scales), post_process=False)
    pixels_per_cell = np.stack(scales)[:, :1] * 200 / heatmap_size[0]
    dark_error = np.linalg.norm(preds - np.stack(truth), axis=-1) / pixels_per_cell
    plain_error = np.linalg.norm(plain - np.stack(truth), axis=-1) / pixels_per_cell
    assert preds.shape == (2, 17, 2) and maxvals.shape == (2, 17, 1)
    assert dark_error.max() < 0.1 and plain_error.mean() > 2 * dark_error.mean()


def test_batched_back_projection_equals_transform_preds():
    rng = np.random.default_rng(5)
    coords = rng.uniform(0, 48, size=(3, 17, 2))
    centers = rng.uniform(100, 300, size=(3, 2))
    scales = rng.uniform(0.5, 2.0, size=(3, 2))
    batched = heatmap_to_image_coords(coords, centers, scales, (48, 64))
    for sample in range(3):
        np.testing.assert_allclose(batched[sample],
                                   transform_preds(coords[sample], centers[sample], scales[sample], (48, 64)),
                                   atol=1e-9)
