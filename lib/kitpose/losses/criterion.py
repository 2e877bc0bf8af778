"""Training criterion: final-heatmap loss + weighted intermediate loss, CutMix aware."""
import logging

import torch
from torch import nn

from .heatmap_losses import AdaptiveWeightMSELoss, GHRLoss, JointsMSELoss, JointsOHKMMSELoss

logger = logging.getLogger(__name__)

LOSS_NAMES = ("adaptive_mse", "ghrl", "mse", "ohkm")
_DEFAULT_TOPK = 8


def _ohkm_topk(loss_cfg):
    """LOSS.OHKM_TOPK, or HRNet's LOSS.TOPK when only that one was changed from the default."""
    topk, hrnet_topk = int(loss_cfg.OHKM_TOPK), int(loss_cfg.TOPK)
    if topk != hrnet_topk and _DEFAULT_TOPK not in (topk, hrnet_topk):
        raise ValueError(f"LOSS.OHKM_TOPK ({topk}) and LOSS.TOPK ({hrnet_topk}) disagree; set only one")
    return hrnet_topk if topk == _DEFAULT_TOPK else topk


def build_loss(name, loss_cfg, key):
    """One heatmap loss by name; ``key`` names the config key for error messages."""
    if name == "adaptive_mse":
        return AdaptiveWeightMSELoss(beta=loss_cfg.ADAPTIVE_BETA)
    if name == "ghrl":
        return GHRLoss()
    if name == "mse":
        return JointsMSELoss()
    if name == "ohkm":
        return JointsOHKMMSELoss(topk=_ohkm_topk(loss_cfg))
    raise ValueError(f"{key} = {name!r} is not a known loss; choose one of {', '.join(LOSS_NAMES)}")


class PoseCriterion(nn.Module):
    """``criterion(outputs, target, target_weight, mix=None) -> (total, {'final', 'intermediate'})``.

    ``outputs`` has fields ``heatmaps`` and ``intermediate`` (ModelOutput); the
    intermediate term is skipped when there is no intermediate loss or map. With a
    CutMix ``mix`` each term is ``lam * L(weight_a) + (1 - lam) * L(weight_b)`` on the
    (already mixed) target.
    """

    def __init__(self, final_loss, intermediate_loss=None, intermediate_weight=1.0, use_target_weight=True):
        super().__init__()
        self.final_loss = final_loss
        self.intermediate_loss = intermediate_loss
        self.intermediate_weight = float(intermediate_weight)
        self.use_target_weight = bool(use_target_weight)

    def _term(self, loss, pred, target, weight_pairs):
        return sum(factor * loss(pred, target, weight) for factor, weight in weight_pairs)

    def forward(self, outputs, target, target_weight, mix=None):
        if mix is None:
            weight_pairs = [(1.0, target_weight)]
        else:
            weight_pairs = [(float(mix.lam), mix.weight_a), (1.0 - float(mix.lam), mix.weight_b)]
        if not self.use_target_weight:
            weight_pairs = [(factor, torch.ones_like(weight)) for factor, weight in weight_pairs]
        parts = {"final": self._term(self.final_loss, outputs.heatmaps, target, weight_pairs)}
        total = parts["final"]
        intermediate = getattr(outputs, "intermediate", None)
        if self.intermediate_loss is not None and intermediate is not None:
            parts["intermediate"] = self._term(self.intermediate_loss, intermediate, target, weight_pairs)
            total = total + self.intermediate_weight * parts["intermediate"]
        return total, parts


def build_criterion(cfg):
    """PoseCriterion from the LOSS node (LOSS.USE_OHKM true selects 'ohkm' for the final loss)."""
    loss_cfg = cfg.LOSS
    final_name = "ohkm" if loss_cfg.USE_OHKM else loss_cfg.FINAL
    if loss_cfg.USE_OHKM and loss_cfg.FINAL not in ("ohkm", "adaptive_mse"):
        logger.warning("LOSS.USE_OHKM is true: final loss 'ohkm' replaces LOSS.FINAL = %r", loss_cfg.FINAL)
    final_loss = build_loss(final_name, loss_cfg, "LOSS.FINAL")
    intermediate_loss = None
    if loss_cfg.INTERMEDIATE != "none":
        intermediate_loss = build_loss(loss_cfg.INTERMEDIATE, loss_cfg, "LOSS.INTERMEDIATE")
    logger.info("criterion: final %s, intermediate %s x %g, target weights %s", final_name,
                loss_cfg.INTERMEDIATE, loss_cfg.INTERMEDIATE_WEIGHT, "on" if loss_cfg.USE_TARGET_WEIGHT else "off")
    return PoseCriterion(final_loss, intermediate_loss, loss_cfg.INTERMEDIATE_WEIGHT, loss_cfg.USE_TARGET_WEIGHT)
