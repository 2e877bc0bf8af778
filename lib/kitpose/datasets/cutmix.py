"""CutMix for top-down heatmap batches (SPEC §3).

A box is cut from a shuffled copy of the batch and pasted into the images and,
at the same place on the heatmap grid, into the target heatmaps. The loss then
weights each term ``lam * L(weight_a) + (1 - lam) * L(weight_b)`` where weight_a
keeps the original sample's joints outside the box and weight_b the pasted
sample's joints inside it.
"""
from typing import NamedTuple

import torch


class CutMixBatch(NamedTuple):
    lam: float                    # fraction of the image area kept from the original sample
    weight_a: torch.Tensor        # [B, K, 1] original joints outside the box
    weight_b: torch.Tensor        # [B, K, 1] pasted joints inside the box


def _image_box(heatmap_box, image_size, heatmap_size):
    """Heatmap-cell box -> image-pixel box, scaling x by the width stride and y by the height stride."""
    stride_x = image_size[0] / heatmap_size[0]
    stride_y = image_size[1] / heatmap_size[1]
    x1, y1, x2, y2 = heatmap_box
    return round(x1 * stride_x), round(y1 * stride_y), round(x2 * stride_x), round(y2 * stride_y)


def random_heatmap_box(image_size, heatmap_size, lam, generator=None):
    """Box (x1, y1, x2, y2) in heatmap cells of side ratio sqrt(1 - lam) around a uniform centre.

    The box is drawn in image pixels (sizes are (w, h)), clipped to the image and
    snapped to whole heatmap cells, so the pasted image region is exactly the
    heatmap region times the stride, also for non-square sizes.
    """
    image_w, image_h = image_size
    stride_x, stride_y = image_w / heatmap_size[0], image_h / heatmap_size[1]
    side = (1.0 - lam) ** 0.5
    center_x = int(torch.randint(image_w, (1,), generator=generator))
    center_y = int(torch.randint(image_h, (1,), generator=generator))
    half_w, half_h = int(image_w * side) // 2, int(image_h * side) // 2

    def snap(value, limit, stride):
        return round(min(max(value, 0), limit) / stride)

    return (snap(center_x - half_w, image_w, stride_x), snap(center_y - half_h, image_h, stride_y),
            snap(center_x + half_w, image_w, stride_x), snap(center_y + half_h, image_h, stride_y))


def joints_inside_box(targets, heatmap_box):
    """[B, K] bool: the arg-max of each target map lies inside ``heatmap_box`` (x1, y1, x2, y2)."""
    width = targets.shape[-1]
    peak = targets.flatten(2).argmax(dim=2)
    peak_x, peak_y = peak % width, peak // width
    x1, y1, x2, y2 = heatmap_box
    return (peak_x >= x1) & (peak_x < x2) & (peak_y >= y1) & (peak_y < y2)


def _check_batch(images, targets, target_weights):
    if (images.dim() != 4 or targets.dim() != 4 or images.shape[0] != targets.shape[0]
            or target_weights.shape[:2] != targets.shape[:2]):
        raise ValueError(f"cutmix: images {tuple(images.shape)}, targets {tuple(targets.shape)} and "
                         f"target_weights {tuple(target_weights.shape)} must be [B, C, H, W], [B, K, h, w] "
                         "and [B, K, 1] with the same B and K")


def paste_box(images, targets, target_weights, permutation, heatmap_box):
    """Paste ``heatmap_box`` (heatmap cells; the image region is its stride multiple) from
    sample ``permutation[i]`` into sample i. Returns new (images, targets, CutMixBatch)."""
    _check_batch(images, targets, target_weights)
    image_size = (images.shape[3], images.shape[2])
    heatmap_size = (targets.shape[3], targets.shape[2])
    ix1, iy1, ix2, iy2 = _image_box(heatmap_box, image_size, heatmap_size)
    hx1, hy1, hx2, hy2 = heatmap_box
    permutation = torch.as_tensor(permutation, device=images.device)

    pasted_targets = targets[permutation]
    kept = (~joints_inside_box(targets, heatmap_box)).unsqueeze(-1)
    pasted = joints_inside_box(pasted_targets, heatmap_box).unsqueeze(-1)
    weight_a = target_weights * kept.to(target_weights.dtype)
    weight_b = target_weights[permutation] * pasted.to(target_weights.dtype)

    mixed_images = images.clone()
    mixed_images[:, :, iy1:iy2, ix1:ix2] = images[permutation, :, iy1:iy2, ix1:ix2]
    mixed_targets = targets.clone()
    mixed_targets[:, :, hy1:hy2, hx1:hx2] = pasted_targets[:, :, hy1:hy2, hx1:hx2]
    lam = 1.0 - (ix2 - ix1) * (iy2 - iy1) / float(image_size[0] * image_size[1])
    return mixed_images, mixed_targets, CutMixBatch(lam, weight_a, weight_b)


def cutmix_batch(images, targets, target_weights, generator=None):
    """CutMix a batch: images [B,3,H,W], targets [B,K,h,w], target_weights [B,K,1].

    Draws lam ~ Beta(1, 1), a permutation of the batch and the box from the CPU
    ``generator``; returns new (images, targets, CutMixBatch) with lam reset to the
    area fraction actually kept.
    """
    _check_batch(images, targets, target_weights)
    # Beta(1, 1) is the uniform distribution on [0, 1]
    lam = float(torch.rand((), generator=generator))
    permutation = torch.randperm(images.shape[0], generator=generator)
    heatmap_box = random_heatmap_box((images.shape[3], images.shape[2]), (targets.shape[3], targets.shape[2]),
                                     lam, generator)
    return paste_box(images, targets, target_weights, permutation, heatmap_box)
