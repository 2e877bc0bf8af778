"""Codecs: box/affine geometry, Gaussian targets and heatmap decoding (flip, DARK, back-projection)."""
import numpy as np
import pytest
import torch

from kitpose.codecs import (BoxConvention, HeatmapCodec, affine_transform_points, box_area, box_corners,
                            box_to_center_scale, clean_boxes, dark_refine, flip_back, fliplr_joints,
                            fuse_flip_heatmaps, generate_gaussian_targets, get_affine_transform, get_final_preds,
                            get_max_preds, transform_preds, xywh_to_corners)


# ------------------------------------------------------------------ affine
def published_mapping(center, scale, rotation_deg, output_size):
    """The published crop in closed form (float64): the box centre to ((w - 1) / 2, (h - 1) / 2),
    zoom (w - 1) / (scale[0] * 200 - 1), rotation about the centre."""
    zoom = (output_size[0] - 1) / (scale[0] * 200.0 - 1)
    angle = np.deg2rad(rotation_deg)
    linear = zoom * np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    target = np.array([(output_size[0] - 1) / 2, (output_size[1] - 1) / 2])
    return np.concatenate([linear, (target - linear @ np.asarray(center, np.float64))[:, None]], axis=1)


@pytest.mark.parametrize("rotation, output_size", [(0.0, (64, 64)), (30.0, (48, 64)), (-45.0, (192, 256))])
def test_affine_is_the_published_mapping(rotation, output_size):
    center, scale = np.array([150.5, 90.25], np.float32), np.array([1.2, 1.6], np.float32)
    matrix = get_affine_transform(center, scale, rotation, output_size)
    assert matrix.shape == (2, 3) and matrix.dtype == np.float64
    # the published matrix comes from float32 points: equal to the closed form to float32 precision
    np.testing.assert_allclose(matrix, published_mapping(center, scale, rotation, output_size), atol=2e-5)
    # not HRNet's w / 2, w / S crop: half a pixel and a 1 / S zoom apart
    np.testing.assert_allclose(affine_transform_points(center[None], matrix),
                               [[(output_size[0] - 1) / 2, (output_size[1] - 1) / 2]], atol=1e-4)


def test_affine_batched_equals_single_and_inverse_round_trip():
    rng = np.random.default_rng(0)
    centers = rng.uniform(100, 500, size=(5, 2)).astype(np.float32)
    scales = rng.uniform(0.5, 3.0, size=(5, 2)).astype(np.float32)
    rotations = rng.uniform(-60, 60, size=5)
    batched = get_affine_transform(centers, scales, rotations, (192, 256))
    inverse = get_affine_transform(centers, scales, rotations, (192, 256), inverse=True)
    assert batched.shape == (5, 2, 3)
    points = rng.uniform(0, 600, size=(5, 50, 2))
    for i in range(5):
        np.testing.assert_array_equal(batched[i], get_affine_transform(centers[i], scales[i], rotations[i], (192, 256)))
        np.testing.assert_array_equal(affine_transform_points(points[i], batched[i]),
                                      affine_transform_points(points, batched)[i])
    np.testing.assert_allclose(affine_transform_points(affine_transform_points(points, batched), inverse),
                               points, atol=1e-6)


def test_box_to_center_scale_aspect_fix_and_conventions():
    center, scale = box_to_center_scale([10, 20, 100, 50], aspect_ratio=192 / 256)
    np.testing.assert_allclose(center, [60.0, 45.0])
    # too wide for 3:4 -> height becomes 100 / 0.75, then 1.25 padding, in units of 200 px
    np.testing.assert_allclose(scale, [100 / 200 * 1.25, 100 / 0.75 / 200 * 1.25], rtol=1e-6)
    _, scale = box_to_center_scale([0, 0, 40, 100], aspect_ratio=1.0, padding=1.0)
    np.testing.assert_allclose(scale, [0.5, 0.5])
    center, _ = box_to_center_scale([10, 20, 100, 50], 1.0, BoxConvention(center_minus_one=True))
    np.testing.assert_allclose(center, [59.5, 44.5])


def test_box_area_and_corners_undo_center_scale():
    center, scale = box_to_center_scale([10, 20, 100, 50], aspect_ratio=1.0)
    # the padded, aspect-fixed box: 125 x 125 px
    assert box_area(scale) == pytest.approx(125.0 * 125.0) and box_area(scale).dtype == np.float32
    np.testing.assert_allclose(box_corners(center, scale), [10.0, -5.0, 110.0, 95.0], rtol=1e-6)
    centers, scales = np.array([center, center + 5]), np.array([scale, 2 * scale])
    np.testing.assert_array_equal(box_area(scales), [box_area(scale), box_area(2 * scale)])
    np.testing.assert_allclose(box_corners(centers, scales)[1], [-35.0, -50.0, 165.0, 150.0], rtol=1e-6)
    np.testing.assert_array_equal(xywh_to_corners([[1, 2, 3, 4], [0.5, 0, 1, 1]]), [[1, 2, 4, 6], [0.5, 0, 1.5, 1]])


def test_encode_names_its_outputs():
    codec = HeatmapCodec((64, 64), (16, 16), 1.0)
    joints = np.array([[32.0, 16.0, 1.0], [7.0, 9.0, 0.0]])
    center, scale = box_to_center_scale([0, 0, 64, 64], 1.0, padding=1.0)
    encoded = codec.encode(joints, center, scale)
    assert encoded._fields == ("input_joints", "heatmap_joints", "target", "target_weight")
    # the published crop: box centre (32, 32) -> (31.5, 31.5), zoom 63 / 63 on the input, 15 / 63 on the heatmap
    np.testing.assert_allclose(encoded.input_joints[0], [31.5, 15.5, 1.0], atol=1e-4)
    np.testing.assert_array_equal(encoded.input_joints[1], joints[1])          # invisible: as given
    np.testing.assert_allclose(encoded.heatmap_joints[0], [7.5, (16.0 - 32.0) * 15 / 63 + 7.5], atol=1e-4)
    assert encoded.target.shape == (2, 16, 16) and encoded.target.dtype == np.float32
    np.testing.assert_array_equal(encoded.target_weight[:, 0], [1.0, 0.0])
    assert not encoded.target[1].any()


def test_clean_boxes_per_convention():
    boxes = [[-5.0, 10.0, 50.0, 30.0], [90.0, 90.0, 40.0, 40.0], [120.0, 10.0, 5.0, 5.0], [30.0, 40.0, 0.5, 0.5]]
    clean, valid = clean_boxes(boxes, [[100, 100]] * 4)
    np.testing.assert_allclose(clean[:2], [[0.0, 10.0, 49.0, 29.0], [90.0, 90.0, 9.0, 9.0]])
    np.testing.assert_array_equal(valid, [True, True, False, True])
    np.testing.assert_array_equal(clean[3, 2:], [0.0, 0.0])          # under 1 px: an empty box
    plus_one, _ = clean_boxes(boxes, [[100, 100]] * 4, BoxConvention(size_plus_one=True))
    np.testing.assert_allclose(plus_one[:, 2:], clean[:, 2:] + 1)


def test_fliplr_joints_swaps_pairs_mirrors_and_zeroes_invisible():
    joints = np.array([[10.0, 5.0, 1.0], [20.0, 6.0, 0.0], [30.0, 7.0, 1.0]])
    flipped = fliplr_joints(joints, width=100, flip_pairs=[[0, 1]])
    np.testing.assert_allclose(flipped, [[0.0, 0.0, 0.0], [89.0, 5.0, 1.0], [69.0, 7.0, 1.0]])
    assert joints[0, 0] == 10.0


# ------------------------------------------------------------------ targets
def per_joint_targets(heatmap_joints, visibility, heatmap_size, sigma):
    """One joint at a time, the published way: truncated 3-sigma window test, whole-map Gaussian."""
    heatmap_w, heatmap_h = heatmap_size
    target = np.zeros((len(heatmap_joints), heatmap_h, heatmap_w), dtype=np.float32)
    weight = np.array(visibility, dtype=np.float32).reshape(-1, 1)
    radius = sigma * 3
    xs = np.arange(heatmap_w, dtype=np.float32)
    ys = np.arange(heatmap_h, dtype=np.float32)[:, None]
    for joint, (mu_x, mu_y) in enumerate(heatmap_joints):
        ul = [int(mu_x - radius), int(mu_y - radius)]
        br = [int(mu_x + radius + 1), int(mu_y + radius + 1)]
        if ul[0] >= heatmap_w or ul[1] >= heatmap_h or br[0] < 0 or br[1] < 0:
            weight[joint] = 0
            continue
        if weight[joint] > 0.5:
            target[joint] = np.exp(-((xs - np.float32(mu_x)) ** 2 + (ys - np.float32(mu_y)) ** 2) / (2 * sigma ** 2))
    return target, weight


@pytest.mark.parametrize("sigma, heatmap_size", [(2, (64, 64)), (3, (72, 96)), (1.5, (48, 64))])
def test_gaussian_targets_equal_per_joint_loop(sigma, heatmap_size):
    rng = np.random.default_rng(1)
    joints = rng.uniform(-12, np.array(heatmap_size) + 12, size=(60, 2))
    # window edges: -0.5 truncates to 0 (kept), a joint 3 sigma + 1 past the border is dropped
    joints[:4] = [[0.0, 0.0], [heatmap_size[0] - 1, heatmap_size[1] - 1], [-3 * sigma - 0.5, 10.0],
                  [heatmap_size[0] + 3 * sigma, 5.0]]
    visibility = (rng.uniform(size=60) > 0.2).astype(np.float32)
    visibility[:4] = 1
    target, weight = generate_gaussian_targets(joints, visibility, heatmap_size, sigma)
    expected_target, expected_weight = per_joint_targets(joints, visibility, heatmap_size, sigma)
    assert target.dtype == np.float32 and target.shape == (60, heatmap_size[1], heatmap_size[0])
    np.testing.assert_array_equal(weight, expected_weight)
    np.testing.assert_allclose(target, expected_target, atol=1e-7)
    np.testing.assert_array_equal(weight[:4, 0], [1, 1, 1, 0])
    assert 0.0 < weight.mean() < 1.0


def test_gaussian_target_is_subpixel():
    target, weight = generate_gaussian_targets([[5.25, 9.5], [5.25, 9.5]], [1, 0], (16, 16), sigma=2)
    # no rounding: the two pixels either side of y = 9.5 are equal, and x = 5 beats x = 6
    assert target[0, 9, 5] == target[0, 10, 5] < 1.0 and target[0, 9, 5] > target[0, 9, 6]
    assert target[0, 9, 15] > 0                                       # no window: the whole map
    np.testing.assert_array_equal(weight[:, 0], [1, 0])
    assert not target[1].any()


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
    unshifted = fuse_flip_heatmaps(heatmaps, flipped, [[0, 2]])          # published: no shift
    assert torch.equal(unshifted, (heatmaps + restored) * 0.5)
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
    joints = np.array([[25.0, 15.0], [1.0, 32.0]])                   # second one is 1 heatmap px from the left
    target, _ = generate_gaussian_targets(joints, [1, 1], (48, 64), sigma=2)
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


def test_batched_back_projection_equals_per_instance():
    rng = np.random.default_rng(5)
    coords = rng.uniform(0, 48, size=(3, 17, 2))
    centers = rng.uniform(100, 300, size=(3, 2)).astype(np.float32)
    scales = rng.uniform(0.5, 2.0, size=(3, 2)).astype(np.float32)
    batched = transform_preds(coords, centers, scales, (48, 64))
    for sample in range(3):
        single = transform_preds(coords[sample], centers[sample], scales[sample], (48, 64))
        np.testing.assert_array_equal(batched[sample], single)
        inverse = get_affine_transform(centers[sample], scales[sample], 0.0, (48, 64), inverse=True)
        np.testing.assert_array_equal(single, affine_transform_points(coords[sample], inverse))
