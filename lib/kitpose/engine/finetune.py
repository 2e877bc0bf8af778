"""MODEL.INIT_FROM: start training from a trained model, keypoint rows carried over by name."""
import logging

from kitpose.datasets import load_metainfo
from kitpose.datasets.keypoint_names import match_keypoints, parse_keypoint_map
from kitpose.models import init_from_checkpoint

logger = logging.getLogger(__name__)


def keypoint_map_from_config(cfg, target_names):
    """[(source, target)] keypoint rows from MODEL.INIT_KEYPOINT_MAP / MODEL.INIT_META, or None when
    neither is set (then keypoint tensors load only where the counts agree)."""
    m = cfg.MODEL
    source_names = list(load_metainfo(m.INIT_META).keypoints) if m.INIT_META else None
    if m.INIT_KEYPOINT_MAP:
        return parse_keypoint_map(list(m.INIT_KEYPOINT_MAP), source_names, target_names)
    if source_names is None:
        return None
    pairs = match_keypoints(source_names, target_names)
    unmatched = [name for index, name in enumerate(target_names) if index not in {t for _, t in pairs}]
    logger.info("MODEL.INIT_KEYPOINT_MAP (from names, %s -> this dataset): %s%s", m.INIT_META,
                ", ".join(f"{source_names[s]}:{target_names[t]}" for s, t in pairs) or "no name in common",
                f"; starting fresh: {', '.join(unmatched)}" if unmatched else "")
    return pairs


def initialise_from_config(cfg, model, keypoint_names):
    """Apply MODEL.INIT_FROM to a freshly built model of the keypoints `keypoint_names`; returns the
    TransferReport."""
    return init_from_checkpoint(model, cfg.MODEL.INIT_FROM, keypoint_map_from_config(cfg, list(keypoint_names)))
