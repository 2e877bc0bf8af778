"""Top-down inference over a loader: fused flip test, decoding, gathering across ranks."""
import contextlib
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from kitpose.codecs import PIXEL_STD, HeatmapCodec, fuse_flip_heatmaps

from .distributed import all_gather_objects

logger = logging.getLogger(__name__)

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Predictions:
    """Per-instance results in dataset order.

    preds [N,K,3] (x, y, maxval; image pixels); boxes [N,6] (cx, cy, scale w, scale h,
    area, box score; float64); image_ids [N]; ann_ids [N] (-1 for detector boxes); bbox_ids [N]
    (per-image box ids); image_files [N].
    """
    preds: np.ndarray
    boxes: np.ndarray
    image_ids: np.ndarray
    ann_ids: np.ndarray
    bbox_ids: np.ndarray
    image_files: list


def autocast_context(amp, device, key):
    """Mixed-precision autocast for amp 'bf16' (CUDA or CPU) or 'fp16' (CUDA); 'none', or
    'fp16' on the CPU, -> no autocast. Training passes 'none' on the CPU (float32 there)."""
    amp = amp.lower()
    if amp == "none":
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise ValueError(f"{key}: unknown mixed-precision mode {amp!r} (none, bf16 or fp16)")
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=AMP_DTYPES[amp])
    if device.type == "cpu" and amp == "bf16":
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_amp(amp, device, key):
    """One log line saying what `amp` does on `device` (logged once per run by the tools)."""
    amp = amp.lower()
    if amp == "none":
        return None
    if device.type == "cpu" and amp == "fp16":
        return f"{key} fp16 needs CUDA: float32 on the CPU (bf16 works on CPUs)"
    if device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return f"{key} bf16 on a CPU without native bfloat16 instructions: expect it slower than float32"
    return f"{key} {amp}: {device.type} autocast"


def flip_test_heatmaps(model, images, flip_pairs, shift_heatmap):
    """Heatmaps averaged with those of the mirrored images, both run in ONE forward pass."""
    batch_size = images.shape[0]
    heatmaps = model(torch.cat([images, images.flip(3)], dim=0)).heatmaps.float()
    return fuse_flip_heatmaps(heatmaps[:batch_size], heatmaps[batch_size:], flip_pairs, shift_heatmap)


@torch.inference_mode()
def predict_heatmaps(model, images, cfg, flip_pairs):
    if cfg.TEST.FLIP_TEST:
        return flip_test_heatmaps(model, images, flip_pairs, cfg.TEST.SHIFT_HEATMAP)
    return model(images).heatmaps.float()


def _dataset_order(loader):
    """Dataset indices this process sees, in loader order (None: the whole dataset in order)."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        return np.fromiter(iter(sampler), dtype=np.int64)
    return None


def run_inference(model, loader, cfg, context, flip_pairs, amp="none", channels_last=False, desc="eval"):
    """Predict every instance of `loader.dataset`; under DDP each rank runs its shard and all
    ranks receive the merged Predictions."""
    model.eval()
    device = context.device
    codec = HeatmapCodec.from_config(cfg)
    preds, boxes, image_ids, ann_ids, bbox_ids, image_files = [], [], [], [], [], []
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=not context.is_main)
    for images, _target, _target_weight, meta in bar:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast_context(amp, device, "TEST.AMP"):
            heatmaps = predict_heatmaps(model, images, cfg, flip_pairs)
        centers = meta["center"].numpy()
        scales = meta["scale"].numpy()
        coords, maxvals = codec.decode(heatmaps.cpu().numpy(), centers, scales)
        preds.append(np.concatenate([coords, maxvals], axis=2).astype(np.float32))
        area = np.prod(scales * PIXEL_STD, axis=1)
        scores = meta["score"].numpy().astype(np.float64)
        boxes.append(np.column_stack([centers, scales, area, scores]).astype(np.float64))
        image_ids.append(meta["image_id"].numpy().astype(np.int64))
        ann_ids.append(meta["ann_id"].numpy().astype(np.int64))
        bbox_ids.append(meta["bbox_id"].numpy().astype(np.int64))
        image_files.extend(meta["image_file"])
    local = Predictions(np.concatenate(preds), np.concatenate(boxes), np.concatenate(image_ids),
                        np.concatenate(ann_ids), np.concatenate(bbox_ids), image_files)
    order = _dataset_order(loader)
    if order is None:
        return local
    return _merge_shards(all_gather_objects((order, local), context), len(loader.dataset))


def _merge_shards(shards, size):
    """Put every rank's results back at their dataset indices (padding duplicates coincide)."""
    first = shards[0][1]
    merged = Predictions(
        np.zeros((size,) + first.preds.shape[1:], np.float32), np.zeros((size, 6), np.float64),
        np.zeros(size, np.int64), np.zeros(size, np.int64), np.zeros(size, np.int64), [""] * size)
    filled = np.zeros(size, bool)
    for order, part in shards:
        merged.preds[order] = part.preds
        merged.boxes[order] = part.boxes
        merged.image_ids[order] = part.image_ids
        merged.ann_ids[order] = part.ann_ids
        merged.bbox_ids[order] = part.bbox_ids
        for index, name in zip(order.tolist(), part.image_files):
            merged.image_files[index] = name
        filled[order] = True
    if not filled.all():
        raise RuntimeError(f"distributed inference missed {int((~filled).sum())} of {size} instances")
    return merged


def evaluate_predictions(dataset, predictions, output_dir):
    """`dataset.evaluate` on the merged predictions -> (OrderedDict name -> value, primary value)."""
    return dataset.evaluate(predictions.preds, predictions.boxes, predictions.image_ids,
                            predictions.ann_ids, str(output_dir), bbox_ids=predictions.bbox_ids)
