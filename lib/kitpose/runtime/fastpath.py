"""Fast paths (config switches) for inference and training.

Inference (`prepare_for_inference`, then `kitpose.runtime.predict_heatmaps`): eval mode, no
part maps (`kitpose.models.set_part_maps`; keypoints come from the final heatmaps), BatchNorm
folded into the convolutions (TEST.FUSE_BN), on CPU oneDNN kernels that run a convolution with
its ReLU / residual addition and a linear layer with its GELU in one pass (TEST.CPU_KERNELS;
not combined with TEST.COMPILE, which fuses by itself, or with a CPU bf16 autocast, which needs
the plain operators), channels_last (TEST.CHANNELS_LAST), optional torch.compile
(TEST.COMPILE), and bfloat16 weights for the CPU bf16 autocast (TEST.AMP bf16). Outputs equal
the eager float32 model's to ~1e-5 (tests/test_fastpath.py); the k-medoids body parts are the same.

Training (`prepare_for_training`): no part maps (no loss reads them), channels_last
(TRAIN.CHANNELS_LAST), optional torch.compile (TRAIN.COMPILE, CUDA); autocast is applied
per step (TRAIN.AMP, CUDA). On CPU, channels_last training is faster but PyTorch's CPU
BatchNorm computes batch statistics for channels_last input less precisely (gradients move
by up to ~1% on the reference model), so TRAIN.CHANNELS_LAST stays off by default; on CUDA
it pairs with autocast.
"""
import logging

import torch
from torch import nn

from kitpose.models import set_part_maps

from .amp import describe_amp
from .fusion import fuse_batchnorm, onednn_fusion_available, use_onednn_kernels

logger = logging.getLogger(__name__)


def _model_device(model):
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def prepare_for_inference(model, cfg, device=None, part_maps=False):
    """Eval mode on `device` (default: where the model is) with the TEST.* fast paths; returns the model
    to call (a compiled wrapper with TEST.COMPILE). The model is changed in place: keep a copy
    if its checkpoint layout is still needed. `part_maps` keeps ModelOutput.parts (for pictures).
    With TEST.AMP bf16 on the CPU, call the result under `autocast_context` (its weights are bfloat16)."""
    device = torch.device(device) if device is not None else _model_device(model)
    model = set_part_maps(model.to(device).eval(), part_maps)
    if cfg.TEST.FUSE_BN:
        fuse_batchnorm(model)
    amp_note = describe_amp(cfg.TEST.AMP, device, "TEST.AMP")
    if amp_note:
        logger.info(amp_note)
    cpu_bf16 = device.type == "cpu" and cfg.TEST.AMP.lower() == "bf16"
    if cfg.TEST.CPU_KERNELS and device.type == "cpu":
        if cpu_bf16:
            # the fused oneDNN operators are float32 and outside autocast's reach
            logger.info("TEST.CPU_KERNELS skipped: TEST.AMP bf16 runs the plain operators under autocast")
        elif cfg.TEST.COMPILE:
            # inductor fuses and packs the CPU kernels itself and cannot lower the hand-fused ones
            logger.info("TEST.CPU_KERNELS skipped: TEST.COMPILE does its own kernel fusion")
        elif onednn_fusion_available():
            use_onednn_kernels(model)
        else:
            logger.info("TEST.CPU_KERNELS: this torch build has no oneDNN fused kernels; plain kernels used")
    if cpu_bf16:
        _store_bfloat16_weights(model)
    if cfg.TEST.CHANNELS_LAST:
        model = model.to(memory_format=torch.channels_last)
    if cfg.TEST.COMPILE:
        model = torch.compile(model)
    return model


def _store_bfloat16_weights(model):
    """CPU bf16 autocast: keep convolution and linear parameters in bfloat16, the dtype autocast
    casts them to at every call. Same numbers, without the casts (which took a third of the
    AP-10K W32 forward, mostly the head's large linear layers). The model then runs only under
    the autocast, as kitpose's inference functions call it with TEST.AMP bf16."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.to(torch.bfloat16)


def prepare_for_training(model, cfg, device=None):
    """Train mode on `device` with TRAIN.CHANNELS_LAST and (CUDA) TRAIN.COMPILE; returns the model to call."""
    device = torch.device(device) if device is not None else _model_device(model)
    model = set_part_maps(model.to(device).train(), False)
    if cfg.TRAIN.CHANNELS_LAST:
        model = model.to(memory_format=torch.channels_last)
    if cfg.TRAIN.COMPILE and device.type == "cuda":
        model = torch.compile(model)
    return model
