"""The one heatmap-prediction function: tools/test.py, training validation, PosePredictor, the
benchmark and the export checks all predict through it."""
import torch

from kitpose.codecs import fuse_flip_heatmaps

from .amp import autocast_context


def predict_heatmaps(model, images, flip_pairs=None, shift_heatmap=False, amp="none", channels_last=False):
    """Final heatmaps [B,K,h,w] float32 under `torch.inference_mode`.

    With `flip_pairs` (a list, possibly empty) the flip test runs: the original and the mirrored
    images go through the model as ONE batch of 2B, and the mirrored half is flipped back and
    averaged in (`fuse_flip_heatmaps`, shifted one pixel only with `shift_heatmap`). `amp`:
    TEST.AMP; `channels_last`: the input memory format (TEST.CHANNELS_LAST).
    """
    batch_size = images.shape[0]
    with torch.inference_mode():
        batch = images if flip_pairs is None else torch.cat([images, images.flip(3)], dim=0)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast_context(amp, batch.device, "TEST.AMP"):
            heatmaps = model(batch).heatmaps.float()
        if flip_pairs is None:
            return heatmaps
        return fuse_flip_heatmaps(heatmaps[:batch_size], heatmaps[batch_size:], flip_pairs, shift_heatmap)


def config_flip_pairs(cfg, meta):
    """The flip pairs to pass to `predict_heatmaps`: the metainfo's with TEST.FLIP_TEST, else None."""
    return list(meta.flip_pairs) if cfg.TEST.FLIP_TEST else None
