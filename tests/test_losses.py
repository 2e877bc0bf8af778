"""Heatmap losses and the training criterion.

The adaptive MSE and GHRL values and gradients are compared with the published
implementation's `loss_case` in tests/data/reference.
"""
from collections import namedtuple

import pytest
import torch
import torchvision.transforms.functional as TF
from torch import nn

from kitpose.config import load_config
from kitpose.datasets.cutmix import CutMixBatch
from kitpose.losses import (AdaptiveWeightMSELoss, GHRLoss, JointsMSELoss, JointsOHKMMSELoss, PoseCriterion,
                            build_criterion)

Outputs = namedtuple("Outputs", ["intermediate", "parts", "heatmaps"])


def relative_difference(value, reference):
    return ((value - reference).abs().max() / reference.abs().max()).item()


@pytest.fixture(scope="module")
def loss_case(reference_fixture):
    return reference_fixture["loss_case"]


@pytest.fixture
def random_case():
    generator = torch.Generator().manual_seed(3)
    pred = torch.rand(3, 5, 12, 10, generator=generator)
    target = torch.rand(3, 5, 12, 10, generator=generator)
    weight = (torch.rand(3, 5, 1, generator=generator) > 0.3).float()
    return pred, target, weight


def test_adaptive_mse_matches_reference(loss_case):
    pred = loss_case["pred"].clone().requires_grad_()
    value = AdaptiveWeightMSELoss(beta=1.0)(pred, loss_case["target"], loss_case["target_weight"])
    value.backward()
    value_diff = relative_difference(value.detach(), loss_case["adaptive_mse"])
    grad_diff = relative_difference(pred.grad, loss_case["grad_pred"])
    print(f"adaptive MSE: relative difference value {value_diff:.3g}, gradient {grad_diff:.3g}")
    assert value_diff <= 1e-6
    assert grad_diff <= 1e-6


def test_ghrl_matches_reference(loss_case):
    intermediate = loss_case["intermediate"].clone().requires_grad_()
    value = GHRLoss()(intermediate, loss_case["target"], loss_case["target_weight"])
    value.backward()
    value_diff = relative_difference(value.detach(), loss_case["ghrl"])
    grad_diff = relative_difference(intermediate.grad, loss_case["grad_intermediate"])
    print(f"GHRL: relative difference value {value_diff:.3g}, gradient {grad_diff:.3g}")
    assert value_diff <= 1e-6
    assert grad_diff <= 1e-6


def test_default_criterion_matches_reference(loss_case):
    criterion = build_criterion(load_config())
    outputs = Outputs(loss_case["intermediate"], None, loss_case["pred"])
    total, parts = criterion(outputs, loss_case["target"], loss_case["target_weight"])
    expected = loss_case["adaptive_mse"] + loss_case["ghrl"]
    assert relative_difference(total, expected) <= 1e-6
    assert set(parts) == {"final", "intermediate"}


def test_ghrl_blur_equals_torchvision(random_case):
    _, target, _ = random_case
    smooth = GHRLoss().smooth(target)
    expected = TF.gaussian_blur(target, [13, 13], [4.0, 4.0])
    assert torch.allclose(smooth, expected, atol=1e-6)


def test_ghrl_ignores_target_weight(random_case):
    pred, target, weight = random_case
    loss = GHRLoss()
    assert torch.equal(loss(pred, target, weight), loss(pred, target, torch.zeros_like(weight)))


def test_adaptive_mse_formula_and_weights(random_case):
    pred, target, weight = random_case
    diff = pred - target
    expected = (weight[..., None] * diff.abs() ** 3).mean()
    assert torch.allclose(AdaptiveWeightMSELoss()(pred, target, weight), expected, rtol=1e-6)
    beta0 = (weight[..., None] * diff ** 2).mean()
    assert torch.allclose(AdaptiveWeightMSELoss(beta=0.0)(pred, target, weight), beta0, rtol=1e-6)
    # a joint with weight 0 contributes nothing, whatever its prediction
    changed = pred.clone()
    changed[weight[..., 0] == 0] += 5.0
    assert torch.allclose(AdaptiveWeightMSELoss()(changed, target, weight),
                          AdaptiveWeightMSELoss()(pred, target, weight))


def _hrnet_joint_losses(pred, target, weight):
    """Per-joint loop as HRNet writes it: 0.5 * MSE(pred * w, gt * w) per joint -> [B, K]."""
    criterion = nn.MSELoss(reduction="none")
    batch, joints = pred.shape[:2]
    columns = []
    for joint in range(joints):
        p = pred[:, joint].reshape(batch, -1) * weight[:, joint]
        g = target[:, joint].reshape(batch, -1) * weight[:, joint]
        columns.append(0.5 * criterion(p, g).mean(dim=1))
    return torch.stack(columns, dim=1)


def test_joints_mse_matches_per_joint_loop(random_case):
    pred, target, weight = random_case
    weight = weight * 0.7  # non-binary weights enter squared, as in HRNet
    expected = _hrnet_joint_losses(pred, target, weight).mean()
    assert torch.allclose(JointsMSELoss()(pred, target, weight), expected, rtol=1e-6)


def test_ohkm_keeps_hardest_joints(random_case):
    pred, target, weight = random_case
    per_joint = _hrnet_joint_losses(pred, target, weight)
    expected = torch.stack([row.sort(descending=True).values[:2].mean() for row in per_joint]).mean()
    assert torch.allclose(JointsOHKMMSELoss(topk=2)(pred, target, weight), expected, rtol=1e-6)
    assert torch.allclose(JointsOHKMMSELoss(topk=50)(pred, target, weight), JointsMSELoss()(pred, target, weight))
    with pytest.raises(ValueError, match="topk"):
        JointsOHKMMSELoss(topk=0)


def test_loss_rejects_mismatched_shapes(random_case):
    pred, target, weight = random_case
    with pytest.raises(ValueError, match="target_weight"):
        AdaptiveWeightMSELoss()(pred, target, weight[:, :3])
    with pytest.raises(ValueError, match="pred"):
        GHRLoss()(pred, target[:, :, :5], weight)


def test_build_criterion_choices(random_case):
    pred, target, weight = random_case
    intermediate = target.flip(2)
    outputs = Outputs(intermediate, None, pred)

    criterion = build_criterion(load_config())
    assert isinstance(criterion, PoseCriterion)
    assert isinstance(criterion.final_loss, AdaptiveWeightMSELoss)
    assert isinstance(criterion.intermediate_loss, GHRLoss)
    total, parts = criterion(outputs, target, weight)
    assert torch.allclose(total, AdaptiveWeightMSELoss()(pred, target, weight) + GHRLoss()(intermediate, target, weight))

    weighted = build_criterion(load_config(opts=["LOSS.INTERMEDIATE", "mse", "LOSS.INTERMEDIATE_WEIGHT", "0.5"]))
    total, parts = weighted(outputs, target, weight)
    assert torch.allclose(parts["intermediate"], JointsMSELoss()(intermediate, target, weight))
    assert torch.allclose(total, parts["final"] + 0.5 * parts["intermediate"])

    no_intermediate = build_criterion(load_config(opts=["LOSS.INTERMEDIATE", "none"]))
    total, parts = no_intermediate(outputs, target, weight)
    assert set(parts) == {"final"} and torch.equal(total, parts["final"])

    # pose_hrnet outputs have no intermediate maps: the term is skipped
    total, parts = criterion(Outputs(None, None, pred), target, weight)
    assert set(parts) == {"final"}

    ohkm = build_criterion(load_config(opts=["LOSS.USE_OHKM", "True", "LOSS.TOPK", "3"]))
    assert isinstance(ohkm.final_loss, JointsOHKMMSELoss) and ohkm.final_loss.topk == 3
    with pytest.raises(ValueError, match="disagree"):
        build_criterion(load_config(opts=["LOSS.FINAL", "ohkm", "LOSS.TOPK", "3", "LOSS.OHKM_TOPK", "4"]))
    with pytest.raises(ValueError, match="LOSS.FINAL"):
        build_criterion(load_config(opts=["LOSS.FINAL", "l1"]))


def test_criterion_without_target_weight(random_case):
    pred, target, weight = random_case
    criterion = build_criterion(load_config(opts=["LOSS.USE_TARGET_WEIGHT", "False", "LOSS.INTERMEDIATE", "none"]))
    total, _ = criterion(Outputs(None, None, pred), target, weight)
    assert torch.allclose(total, AdaptiveWeightMSELoss()(pred, target, torch.ones_like(weight)))


def test_criterion_with_cutmix_weights(random_case):
    pred, target, weight = random_case
    weight_b = 1.0 - weight
    mix = CutMixBatch(0.3, weight, weight_b)
    criterion = build_criterion(load_config(opts=["LOSS.FINAL", "mse"]))
    intermediate = target.flip(3)
    total, parts = criterion(Outputs(intermediate, None, pred), target, weight, mix=mix)
    mse = JointsMSELoss()
    expected_final = 0.3 * mse(pred, target, weight) + 0.7 * mse(pred, target, weight_b)
    assert torch.allclose(parts["final"], expected_final)
    assert torch.allclose(parts["intermediate"], GHRLoss()(intermediate, target, weight))
    assert torch.allclose(total, parts["final"] + parts["intermediate"])


def test_criterion_backpropagates_to_both_outputs(random_case):
    pred, target, weight = random_case
    pred = pred.clone().requires_grad_()
    intermediate = target.flip(2).clone().requires_grad_()
    total, _ = build_criterion(load_config())(Outputs(intermediate, None, pred), target, weight)
    total.backward()
    assert pred.grad.abs().sum() > 0 and intermediate.grad.abs().sum() > 0
