"""Heatmap losses and the training criterion."""
from .criterion import LOSS_NAMES, PoseCriterion, build_criterion, build_loss
from .heatmap_losses import AdaptiveWeightMSELoss, GHRLoss, JointsMSELoss, JointsOHKMMSELoss

__all__ = ["AdaptiveWeightMSELoss", "GHRLoss", "JointsMSELoss", "JointsOHKMMSELoss", "LOSS_NAMES",
           "PoseCriterion", "build_criterion", "build_loss"]
