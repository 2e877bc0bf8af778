"""Heatmap losses, each called as ``loss(pred[B,K,h,w], target[B,K,h,w], target_weight[B,K,1]) -> scalar``."""

import torch
import torch.nn.functional as F
from torch import nn


def _check_shapes(name, pred, target, target_weight):
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"{name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                         "must both be [B, K, h, w]")
    if target_weight.shape[:2] != pred.shape[:2]:
        raise ValueError(f"{name}: target_weight {tuple(target_weight.shape)} must be [B, K, 1] "
                         f"for pred {tuple(pred.shape)}")


def _joint_weights(target_weight):
    """[B, K] or [B, K, 1] -> [B, K, 1, 1] for broadcasting over the map."""
    return target_weight.reshape(target_weight.shape[0], target_weight.shape[1], 1, 1)


class AdaptiveWeightMSELoss(nn.Module):
    """Point-wise adaptive-weight MSE: mean over B, K, h, w of v_k * |p - g|^beta * (p - g)^2.

    The |p - g|^beta factor is part of the graph (not detached) and there is no 0.5.
    """

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = float(beta)

    def forward(self, pred, target, target_weight):
        _check_shapes(type(self).__name__, pred, target, target_weight)
        diff = pred - target
        return (diff.abs().pow(self.beta) * _joint_weights(target_weight) * diff.pow(2)).mean()


def gaussian_kernel1d(kernel_size, sigma, dtype=torch.float32, device=None):
    """Normalised 1-D Gaussian taps as torchvision's gaussian_blur builds them."""
    half = (kernel_size - 1) * 0.5
    positions = torch.linspace(-half, half, steps=kernel_size, dtype=dtype, device=device)
    taps = torch.exp(-0.5 * (positions / sigma).pow(2))
    return taps / taps.sum()


class GHRLoss(nn.Module):
    """Generalised heatmap regression loss on the intermediate maps.

    From the target G: smooth S (Gaussian blur, reflect padding), sharp Sh (Laplacian
    kernel, zero padding), wl = |Sh - G|, wr = |G - S|; the loss is the mean of
    ((P - Sh)^2 * wl + (P - S)^2 * wr) * (P - G)^2.
    """

    def __init__(self, blur_kernel=13, blur_sigma=4.0):
        super().__init__()
        self.blur_kernel = int(blur_kernel)
        self.register_buffer("blur_taps", gaussian_kernel1d(self.blur_kernel, float(blur_sigma)), persistent=False)
        laplacian = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
        self.register_buffer("sharpen_kernel", laplacian.view(1, 1, 3, 3), persistent=False)

    def smooth(self, maps):
        """Separable Gaussian blur of every map [B, K, h, w] with reflect padding."""
        batch, joints, height, width = maps.shape
        pad = self.blur_kernel // 2
        taps = self.blur_taps.to(dtype=maps.dtype, device=maps.device)
        planes = F.pad(maps.reshape(batch * joints, 1, height, width), [pad, pad, pad, pad], mode="reflect")
        planes = F.conv2d(planes, taps.view(1, 1, 1, -1))
        planes = F.conv2d(planes, taps.view(1, 1, -1, 1))
        return planes.reshape(batch, joints, height, width)

    def sharpen(self, maps):
        batch, joints, height, width = maps.shape
        kernel = self.sharpen_kernel.to(dtype=maps.dtype, device=maps.device)
        planes = F.conv2d(maps.reshape(batch * joints, 1, height, width), kernel, padding=1)
        return planes.reshape(batch, joints, height, width)

    def forward(self, pred, target, target_weight):
        _check_shapes(type(self).__name__, pred, target, target_weight)
        # quirk: the published GHRL ignores target weights (invisible joints count too)
        with torch.no_grad():
            smooth = self.smooth(target)
            sharp = self.sharpen(target)
            weight_sharp = (sharp - target).abs()
            weight_smooth = (target - smooth).abs()
        sharp_term = (pred - sharp).pow(2) * weight_sharp
        smooth_term = (pred - smooth).pow(2) * weight_smooth
        return ((sharp_term + smooth_term) * (pred - target).pow(2)).mean()


def _per_joint_mse(pred, target, target_weight):
    """HRNet's 0.5 * MSE(pred * w, target * w) per sample and joint -> [B, K]."""
    weights = _joint_weights(target_weight)
    return 0.5 * (pred * weights - target * weights).pow(2).flatten(2).mean(dim=2)


class JointsMSELoss(nn.Module):
    """HRNet joints MSE: 0.5 * MSE of weighted maps, averaged over batch, joints and pixels."""

    def forward(self, pred, target, target_weight):
        _check_shapes(type(self).__name__, pred, target, target_weight)
        return _per_joint_mse(pred, target, target_weight).mean()


class JointsOHKMMSELoss(nn.Module):
    """Online hard keypoint mining: per sample, the mean of the ``topk`` largest joint MSEs.

    ``topk`` larger than the number of joints keeps all joints.
    """

    def __init__(self, topk=8):
        super().__init__()
        if int(topk) < 1:
            raise ValueError(f"JointsOHKMMSELoss: topk must be >= 1, got {topk}")
        self.topk = int(topk)

    def forward(self, pred, target, target_weight):
        _check_shapes(type(self).__name__, pred, target, target_weight)
        per_joint = _per_joint_mse(pred, target, target_weight)
        hardest = per_joint.topk(min(self.topk, per_joint.shape[1]), dim=1).values
        return hardest.mean(dim=1).mean()


__all__ = ["AdaptiveWeightMSELoss", "GHRLoss", "JointsMSELoss", "JointsOHKMMSELoss", "gaussian_kernel1d"]

