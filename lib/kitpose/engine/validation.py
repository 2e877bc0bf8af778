"""Validation and testing over a loader: every instance predicted (kitpose.runtime), decoded and
gathered across ranks (`predict_dataset`), then evaluated (`evaluate_predictions`). For the centroid
stage (MODEL.NAME centroid_hrnet) every image's anchors are found and scored as detections."""
import logging
from dataclasses import dataclass

import numpy as np
from torch.utils.data import DistributedSampler

from kitpose.codecs import box_area
from kitpose.codecs.centroid import find_peaks, peaks_to_frame
from kitpose.config import is_centroid_model
from kitpose.evaluation import centroid_metrics, evaluate_topdown, evaluation_settings
from kitpose.progress import progress
from kitpose.runtime import config_flip_pairs, predict_heatmaps

from .distributed import all_gather_objects

logger = logging.getLogger(__name__)


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

    def __len__(self):
        return len(self.preds)


@dataclass
class CentroidPredictions:
    """Per-image anchors found by the centroid stage, in dataset order: points[i] [M,2] frame pixels,
    scores[i] [M] (map values), best first."""
    points: list
    scores: list
    image_ids: np.ndarray
    image_files: list

    def __len__(self):
        return sum(len(points) for points in self.points)


def _dataset_order(loader):
    """Dataset indices this process sees, in loader order (None: the whole dataset in order)."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        return np.fromiter(iter(sampler), dtype=np.int64)
    return None


def predict_dataset(model, loader, cfg, context, amp="none", channels_last=False, desc="eval"):
    """Predict every instance of `loader.dataset` (flip test with its metainfo's flip pairs when
    TEST.FLIP_TEST; decoded by its codec); under DDP each rank runs its shard and all ranks receive the
    merged Predictions. For the centroid stage: `predict_centroids`."""
    if is_centroid_model(cfg):
        return predict_centroids(model, loader, cfg, context, amp, channels_last, desc)
    model.eval()
    device = context.device
    codec = loader.dataset.codec
    flip_pairs = config_flip_pairs(cfg, loader.dataset.meta)
    preds, boxes, image_ids, ann_ids, bbox_ids, image_files = [], [], [], [], [], []
    bar = progress(loader, desc=desc, unit="batch", disable=not context.is_main)
    for images, _target, _target_weight, meta in bar:
        heatmaps = predict_heatmaps(model, images.to(device, non_blocking=True), flip_pairs,
                                    cfg.TEST.SHIFT_HEATMAP, amp, channels_last)
        centers = meta["center"].numpy()
        scales = meta["scale"].numpy()
        coords, maxvals = codec.decode(heatmaps.cpu().numpy(), centers, scales)
        preds.append(np.concatenate([coords, maxvals], axis=2).astype(np.float32))
        scores = meta["score"].numpy().astype(np.float64)
        boxes.append(np.column_stack([centers, scales, box_area(scales), scores]).astype(np.float64))
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


def predict_centroids(model, loader, cfg, context, amp="none", channels_last=False, desc="eval"):
    """CentroidPredictions of every image of `loader.dataset` (a CentroidDataset; no flip test): the local
    peaks of its map (CENTROID.PEAK_THRESHOLD, CENTROID.MIN_DISTANCE) in frame pixels."""
    model.eval()
    dataset = loader.dataset
    found = []
    bar = progress(loader, desc=desc, unit="batch", disable=not context.is_main)
    for images, _target, _target_weight, meta in bar:
        heatmaps = predict_heatmaps(model, images.to(context.device, non_blocking=True), None, False, amp,
                                    channels_last).cpu()
        for position, index in enumerate(meta["index"].tolist()):
            points, values = find_peaks(heatmaps[position, 0], cfg.CENTROID.PEAK_THRESHOLD, cfg.CENTROID.MIN_DISTANCE)
            frame_points = peaks_to_frame(points, dataset.input_size, dataset.heatmap_size,
                                          float(meta["scale"][position]), meta["offset"][position].numpy())
            found.append((index, frame_points, values))
    if _dataset_order(loader) is not None:
        found = [item for shard in all_gather_objects(found, context) for item in shard]
    by_index = {index: (points, values) for index, points, values in found}
    if len(by_index) != len(dataset):
        raise RuntimeError(f"centroid prediction covered {len(by_index)} of {len(dataset)} images")
    ordered = [by_index[index] for index in range(len(dataset))]
    return CentroidPredictions([points for points, _ in ordered], [values for _, values in ordered],
                               dataset.image_ids.copy(), list(dataset.image_files))


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
        raise RuntimeError(f"distributed prediction missed {int((~filled).sum())} of {size} instances")
    return merged


def evaluate_predictions(dataset, predictions, output_dir, cfg):
    """Rescoring, OKS-NMS, the results file and the metrics of `dataset`'s predictions with the config's
    TEST settings -> (OrderedDict name -> value, primary value). Centroid predictions: detection F1,
    precision, recall against the labelled anchors (CENTROID.MATCH_DISTANCE), primary F1."""
    if isinstance(predictions, CentroidPredictions):
        return centroid_metrics(predictions.points, dataset.anchors, dataset.box_sizes, cfg.CENTROID.MATCH_DISTANCE)
    return evaluate_topdown(dataset.meta, dataset.ann_file, predictions.preds, predictions.boxes,
                            predictions.image_ids, predictions.ann_ids, str(output_dir),
                            set_name=dataset.image_set or "val", bbox_ids=predictions.bbox_ids,
                            **evaluation_settings(cfg.TEST, dataset.meta))
