"""CutMix for top-down heatmap batches.

A box is cut from a shuffled copy of the batch and pasted into the images and
into the target heatmaps. The loss then weights each term
``lam * L(weight_a) + (1 - lam) * L(weight_b)``: weight_a keeps the original
sample's joints outside the box, weight_b the pasted sample's joints inside it.

Two ways of computing the box, the weights and lam (``DATASET.CUTMIX_WEIGHTS``):

- ``'published'`` (default): exactly what the published KITPose training
  computes, quirks included (each commented where it happens below; docs/published_behaviour.md,
  Training, describes them).
- ``'corrected'``: the evident intent (``paste_box``): the box snapped to whole
  heatmap cells so image and heatmap regions agree, joints tested against the
  region actually pasted, the original sample's joints taken from its own target,
  lam from the pasted area. Kept as an ablation.
"""
import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch

CUTMIX_WEIGHTS = ("published", "corrected")


class CutMixBatch(NamedTuple):
    lam: float                    # fraction of the image area kept from the original sample
    weight_a: torch.Tensor        # [B, K, 1] original joints outside the box
    weight_b: torch.Tensor        # [B, K, 1] pasted joints inside the box


def check_cutmix_weights(mode):
    """``mode`` if it is a known DATASET.CUTMIX_WEIGHTS value, else ValueError naming the key and value."""
    if mode not in CUTMIX_WEIGHTS:
        raise ValueError(f"DATASET.CUTMIX_WEIGHTS = {mode!r} is not known; choose 'published' (the published "
                         "weights and lam) or 'corrected' (the ablation)")
    return mode


def _check_prob(prob):
    prob = float(prob)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"DATASET.CUTMIX_PROB = {prob!r} must lie in [0, 1]")
    return prob


def _check_batch(images, targets, target_weights):
    if (images.dim() != 4 or targets.dim() != 4 or images.shape[0] != targets.shape[0]
            or target_weights.shape[:2] != targets.shape[:2]):
        raise ValueError(f"cutmix: images {tuple(images.shape)}, targets {tuple(targets.shape)} and "
                         f"target_weights {tuple(target_weights.shape)} must be [B, C, H, W], [B, K, h, w] "
                         "and [B, K, 1] with the same B and K")


# ------------------------------------------------------------------ corrected

def _image_box(heatmap_box, image_size, heatmap_size):
    """Heatmap-cell box -> image-pixel box, scaling x by the width stride and y by the height stride."""
    stride_x = image_size[0] / heatmap_size[0]
    stride_y = image_size[1] / heatmap_size[1]
    x1, y1, x2, y2 = heatmap_box
    return round(x1 * stride_x), round(y1 * stride_y), round(x2 * stride_x), round(y2 * stride_y)


def heatmap_box_at(image_size, heatmap_size, lam, center_x, center_y):
    """Corrected box (x1, y1, x2, y2) in heatmap cells of side ratio sqrt(1 - lam) around pixel (center_x, center_y).

    The box is laid out in image pixels (sizes are (w, h)), clipped to the image and
    snapped to whole heatmap cells, so the pasted image region is exactly the
    heatmap region times the stride, also for non-square sizes.
    """
    image_w, image_h = image_size
    stride_x, stride_y = image_w / heatmap_size[0], image_h / heatmap_size[1]
    side = (1.0 - lam) ** 0.5
    half_w, half_h = int(image_w * side) // 2, int(image_h * side) // 2

    def snap(value, limit, stride):
        return round(min(max(value, 0), limit) / stride)

    return (snap(center_x - half_w, image_w, stride_x), snap(center_y - half_h, image_h, stride_y),
            snap(center_x + half_w, image_w, stride_x), snap(center_y + half_h, image_h, stride_y))


def random_heatmap_box(image_size, heatmap_size, lam, generator=None):
    """``heatmap_box_at`` around a uniform centre drawn (x, then y) from the torch ``generator``."""
    center_x = int(torch.randint(image_size[0], (1,), generator=generator))
    center_y = int(torch.randint(image_size[1], (1,), generator=generator))
    return heatmap_box_at(image_size, heatmap_size, lam, center_x, center_y)


def joints_inside_box(targets, heatmap_box):
    """[B, K] bool: the arg-max of each target map lies inside ``heatmap_box`` (x1, y1, x2, y2)."""
    width = targets.shape[-1]
    peak = targets.flatten(2).argmax(dim=2)
    peak_x, peak_y = peak % width, peak // width
    x1, y1, x2, y2 = heatmap_box
    return (peak_x >= x1) & (peak_x < x2) & (peak_y >= y1) & (peak_y < y2)


def paste_box(images, targets, target_weights, permutation, heatmap_box):
    """Corrected mode: paste ``heatmap_box`` (heatmap cells; the image region is its stride multiple)
    from sample ``permutation[i]`` into sample i. Returns new (images, targets, CutMixBatch)."""
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


# ------------------------------------------------------------------ published

class CutMixDraws(NamedTuple):
    """The random draws of one published-mode CutMix, in the order they are drawn.

    When ``r`` does not pass (``r >= prob``) nothing else is drawn and the other fields are None.
    """
    r: float                                   # uniform [0, 1): CutMix iff r < prob
    lam_draw: Optional[float] = None           # Beta(alpha, alpha): sets the box side ratio sqrt(1 - lam_draw)
    permutation: Optional[Sequence[int]] = None  # sample i receives the box of sample permutation[i]
    cx: Optional[int] = None                   # box centre ROW, uniform over range(H)
    cy: Optional[int] = None                   # box centre COLUMN, uniform over range(W)


class PublishedBox(NamedTuple):
    """Half-open [start, stop) bounds of the pasted box (rows = dim 2, cols = dim 3)."""
    image_rows: tuple
    image_cols: tuple
    heatmap_rows: tuple
    heatmap_cols: tuple


def _numpy_rng(generator):
    """A numpy Generator seeded from the torch ``generator`` (None: torch's global stream), so one torch
    seed (and a checkpoint's torch RNG state) determines every draw."""
    return np.random.default_rng(int(torch.randint(0, 2 ** 63 - 1, (), generator=generator)))


def draw_published(batch_size, image_hw, prob=1.0, alpha=1.0, rng=None, generator=None):
    """CutMixDraws in the published order: r, lam_draw, permutation, cx, cy.

    ``rng`` is numpy-Generator-like (``random()``, ``beta(a, b)``, ``integers(n)``) and gives
    r, lam_draw, cx and cy; the permutation comes from ``torch.randperm`` with the torch
    ``generator``. Without ``rng`` one is seeded from ``generator``.
    """
    prob = _check_prob(prob)
    if rng is None:
        rng = _numpy_rng(generator)
    r = float(rng.random())
    if not (alpha > 0 and r < prob):
        return CutMixDraws(r)
    lam_draw = float(rng.beta(alpha, alpha))
    permutation = torch.randperm(batch_size, generator=generator)
    cx = int(rng.integers(image_hw[0]))
    cy = int(rng.integers(image_hw[1]))
    return CutMixDraws(r, lam_draw, permutation, cx, cy)


def published_box(image_hw, heatmap_hw, lam_draw, cx, cy):
    """The published box for centre row ``cx``, column ``cy``; sizes are (rows, cols)."""
    rows, cols = image_hw
    side = math.sqrt(1.0 - lam_draw)
    cut_rows, cut_cols = int(rows * side), int(cols * side)
    # both sides extend by cut // 2, so an odd cut loses a pixel; clipping to the image comes last
    r0, r1 = min(max(cx - cut_rows // 2, 0), rows), min(max(cx + cut_rows // 2, 0), rows)
    c0, c1 = min(max(cy - cut_cols // 2, 0), cols), min(max(cy + cut_cols // 2, 0), cols)
    # heatmap bounds are the image bounds floored by the stride, so the two regions need not
    # cover the same area; the published code hard-codes a stride of 4 (what every published
    # config has), this uses each axis' own stride and equals it at 4
    heatmap_rows, heatmap_cols = heatmap_hw
    return PublishedBox((r0, r1), (c0, c1),
                        (r0 * heatmap_rows // rows, r1 * heatmap_rows // rows),
                        (c0 * heatmap_cols // cols, c1 * heatmap_cols // cols))


def heatmap_argmax(targets):
    """([B, K] x, [B, K] y) int64: column and row of each map's first maximum; (0, 0) for a map whose
    maximum is <= 0 (the rule of the published peak finder)."""
    flat = targets.flatten(2)
    peak = flat.argmax(dim=2)
    positive = flat.amax(dim=2) > 0
    width = targets.shape[-1]
    return torch.where(positive, peak % width, 0), torch.where(positive, peak // width, 0)


def _published_inside(targets, box):
    x, y = heatmap_argmax(targets)
    (r0, r1), (c0, c1) = box.heatmap_rows, box.heatmap_cols
    # axes swapped: the peak's column x is tested against the box's ROW range and its row y against
    # the COLUMN range; both ends inclusive although the pasted region excludes its stop bound
    return (x >= r0) & (x <= r1) & (y >= c0) & (y <= c1)


def published_cutmix(images, targets, target_weights, draws, prob=1.0, alpha=1.0):
    """Published-mode CutMix from given ``draws`` (CutMixDraws). Returns new (images, targets, CutMixBatch).

    Without CutMix (``draws.r >= prob``) it returns the input tensors themselves and mix None (the
    published function returns its inputs, no weight_b and lam -1; the criterion then uses the
    plain target weights). weight_a / weight_b have the dtype of ``target_weights``: the published
    code returns float64 (a float64 0/1 mask times float32 weights) with the same values, since
    such a product is exact in float32; keeping float32 keeps the loss in the model's precision.
    """
    _check_batch(images, targets, target_weights)
    if not (alpha > 0 and draws.r < _check_prob(prob)):
        return images, targets, None
    box = published_box(images.shape[2:], targets.shape[2:], draws.lam_draw, draws.cx, draws.cy)
    (r0, r1), (c0, c1) = box.image_rows, box.image_cols
    (h0, h1), (g0, g1) = box.heatmap_rows, box.heatmap_cols
    permutation = torch.as_tensor(draws.permutation, device=images.device)

    mixed_images = images.clone()
    mixed_images[:, :, r0:r1, c0:c1] = images[permutation, :, r0:r1, c0:c1]
    pasted_targets = targets[permutation]
    mixed_targets = targets.clone()
    mixed_targets[:, :, h0:h1, g0:g1] = pasted_targets[:, :, h0:h1, g0:g1]

    # the original sample's joints are located on the already MIXED target: a peak that was pasted
    # over is replaced by whatever maximum the mixed map now has
    kept = ~_published_inside(mixed_targets, box)
    pasted = _published_inside(pasted_targets, box)
    weight_a = target_weights * kept.unsqueeze(-1).to(target_weights.dtype)
    weight_b = target_weights[permutation] * pasted.unsqueeze(-1).to(target_weights.dtype)
    # lam is the area fraction of the clipped image box, not of the heatmap region
    lam = 1.0 - (r1 - r0) * (c1 - c0) / (images.shape[2] * images.shape[3])
    return mixed_images, mixed_targets, CutMixBatch(lam, weight_a, weight_b)


# ------------------------------------------------------------------ both

def cutmix_batch(images, targets, target_weights, generator=None, *, weights="published", prob=1.0,
                 rng=None, draws=None):
    """CutMix a batch: images [B,3,H,W], targets [B,K,h,w], target_weights [B,K,1].

    ``weights`` is the DATASET.CUTMIX_WEIGHTS mode, ``prob`` DATASET.CUTMIX_PROB (the published
    training uses 1: every batch). Returns (images, targets, CutMixBatch), or the inputs and None
    when the batch is not mixed.

    - 'published': ``draws`` (CutMixDraws) if given, else ``draw_published`` from ``rng`` (numpy
      Generator) and ``generator`` (torch; it also seeds ``rng`` when that is None).
    - 'corrected': lam ~ Beta(1, 1), a permutation and the box centre from the torch ``generator``
      (preceded by one uniform draw for ``prob`` only when prob < 1); lam is reset to the area
      fraction actually kept. ``rng`` and ``draws`` do not apply.
    """
    check_cutmix_weights(weights)
    prob = _check_prob(prob)
    _check_batch(images, targets, target_weights)
    if weights == "published":
        if draws is None:
            draws = draw_published(images.shape[0], images.shape[2:], prob, rng=rng, generator=generator)
        return published_cutmix(images, targets, target_weights, draws, prob)
    if rng is not None or draws is not None:
        raise ValueError("cutmix: rng and draws apply to DATASET.CUTMIX_WEIGHTS 'published' only")
    if prob < 1.0 and float(torch.rand((), generator=generator)) >= prob:
        return images, targets, None
    # Beta(1, 1) is the uniform distribution on [0, 1]
    lam = float(torch.rand((), generator=generator))
    permutation = torch.randperm(images.shape[0], generator=generator)
    heatmap_box = random_heatmap_box((images.shape[3], images.shape[2]), (targets.shape[3], targets.shape[2]),
                                     lam, generator)
    return paste_box(images, targets, target_weights, permutation, heatmap_box)
