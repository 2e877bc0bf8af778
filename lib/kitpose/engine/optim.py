"""Optimiser with backbone/head parameter groups and the per-iteration learning-rate schedule."""
import logging
import math

import torch

logger = logging.getLogger(__name__)

# KITPose head `channelformer.*`; the HRNet baseline's head is its top-level `final_layer.*`
HEAD_PREFIXES = ("channelformer.", "final_layer.")


def parameter_groups(model, cfg):
    """Backbone (lr x BACKBONE_LR_MULT) and head groups of the trainable parameters.

    KITPose: backbone `pre_feature.*`, head `channelformer.*` (the published two groups).
    """
    backbone, head = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (head if name.startswith(HEAD_PREFIXES) else backbone).append(param)
    groups = []
    if backbone:
        groups.append({"name": "backbone", "params": backbone, "lr": cfg.TRAIN.LR * cfg.TRAIN.BACKBONE_LR_MULT})
    if head:
        groups.append({"name": "head", "params": head, "lr": cfg.TRAIN.LR})
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


def effective_weight_decay(cfg):
    # quirk: the published configs say WD 1e-4, but the published Adam parameter groups
    # never received it, so the released models were trained without weight decay.
    return 0.0 if cfg.TRAIN.PUBLISHED_NO_DECAY else float(cfg.TRAIN.WD)


def build_optimizer(model, cfg):
    """TRAIN.OPTIMIZER 'adam' | 'adamw' | 'sgd' over `parameter_groups`."""
    groups = parameter_groups(model, cfg)
    weight_decay = effective_weight_decay(cfg)
    name = cfg.TRAIN.OPTIMIZER.lower()
    # TRAIN.FUSED_OPTIMIZER: one fused kernel over all parameters instead of a loop over them
    implementation = {"fused": True} if cfg.TRAIN.FUSED_OPTIMIZER else {}
    if name == "adam":
        # torch's default betas (0.9, 0.999): the published Adam was built with lr only.
        optimizer = torch.optim.Adam(groups, lr=cfg.TRAIN.LR, weight_decay=weight_decay, **implementation)
    elif name == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=cfg.TRAIN.LR, weight_decay=weight_decay, **implementation)
    elif name == "sgd":
        optimizer = torch.optim.SGD(groups, lr=cfg.TRAIN.LR, momentum=cfg.TRAIN.MOMENTUM,
                                    nesterov=cfg.TRAIN.NESTEROV, weight_decay=weight_decay, **implementation)
    else:
        raise ValueError(f"TRAIN.OPTIMIZER: unknown optimiser {cfg.TRAIN.OPTIMIZER!r} (adam, adamw or sgd)")
    logger.info("optimiser %s, lr %g, weight decay %g%s, groups %s", name, cfg.TRAIN.LR, weight_decay,
                " (published no-decay behaviour)" if cfg.TRAIN.PUBLISHED_NO_DECAY else "",
                ", ".join(f"{g['name']}: {sum(p.numel() for p in g['params'])} params lr {g['lr']:g}"
                          for g in optimizer.param_groups))
    return optimizer


def lr_factor(cfg, epoch_position):
    """Learning-rate multiplier at a (fractional) epoch position.

    MultiStep changes at whole epochs: epochs before LR_STEP[0] run at TRAIN.LR.
    Cosine falls per iteration from TRAIN.LR to LR_END at END_EPOCH. Linear warmup from
    WARMUP_FACTOR over WARMUP_EPOCHS multiplies either schedule.
    """
    train = cfg.TRAIN
    scheduler = train.LR_SCHEDULER.lower()
    if scheduler == "multistep":
        epoch = math.floor(epoch_position)
        factor = train.LR_FACTOR ** sum(epoch >= step for step in train.LR_STEP)
    elif scheduler == "cosine":
        end_ratio = train.LR_END / train.LR if train.LR > 0 else 0.0
        progress = min(epoch_position / max(train.END_EPOCH, 1), 1.0)
        factor = end_ratio + (1.0 - end_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        raise ValueError(f"TRAIN.LR_SCHEDULER: unknown schedule {train.LR_SCHEDULER!r} (multistep or cosine)")
    if train.WARMUP_EPOCHS > 0:
        warm_position = epoch_position if train.WARMUP_PER_ITER else math.floor(epoch_position)
        warm = min(warm_position / train.WARMUP_EPOCHS, 1.0)
        factor *= train.WARMUP_FACTOR + (1.0 - train.WARMUP_FACTOR) * warm
    return factor


def build_scheduler(optimizer, cfg, iters_per_epoch, start_iteration=0):
    """A LambdaLR stepped once per iteration; its step count is the global iteration.

    `start_iteration` > 0 (TRAIN.BEGIN_EPOCH without a checkpoint) starts the schedule there.
    """
    iters_per_epoch = max(int(iters_per_epoch), 1)

    def factor_at(iteration):
        return lr_factor(cfg, iteration / iters_per_epoch)

    if start_iteration > 0:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor_at, last_epoch=start_iteration - 1)
