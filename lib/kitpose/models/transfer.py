"""Start training from a trained model with other keypoints (MODEL.INIT_FROM).

Every tensor whose name and shape fit is loaded. The tensors whose size follows the keypoint
count (the backbone's final keypoint-map layer, a learnable position embedding) or the
body-part count (the part prompts' meta-net, `bp_embeddings`) keep the fresh initialisation the
model was built with, except the rows of keypoints named in `keypoint_map`, which are copied
from their source keypoint. Anything else that does not fit (another width, input size or
architecture) is an error naming every such tensor, as strict loading is.
"""
import logging
from typing import NamedTuple

from .checkpoint import CheckpointError, is_unused_parameter, read_state_dict, unwrap_model

logger = logging.getLogger(__name__)

# name suffix -> the axis that counts keypoints
_KEYPOINT_AXIS = {"final_layer.weight": 0, "final_layer.bias": 0, "channelformer.pos_embedding": 1}
# name prefixes of tensors whose size follows MODEL.NUM_BP
_PART_PREFIXES = ("channelformer.bp_embeddings", "channelformer.prompt_learner.meta_net.")


class TransferReport(NamedTuple):
    loaded: list          # tensors copied whole
    reinitialised: list   # tensors left at the model's initialisation (keypoint or part count differs)
    mapped: dict          # tensor name -> [(source keypoint, target keypoint), ...] rows copied
    dropped: list         # checkpoint tensors the model has no place for (body parts the model lacks)


def _keypoint_axis(name):
    return next((axis for suffix, axis in _KEYPOINT_AXIS.items() if name.endswith(suffix)), None)


def _is_part_tensor(name):
    return name.startswith(_PART_PREFIXES)


def _differs_only_along(source_shape, target_shape, axis):
    return (len(source_shape) == len(target_shape)
            and all(s == t for i, (s, t) in enumerate(zip(source_shape, target_shape)) if i != axis))


def _num_parts(state):
    embeddings = state.get("channelformer.bp_embeddings")
    return 0 if embeddings is None else int(embeddings.shape[1])


def init_from_checkpoint(model, path, keypoint_map=None):
    """Initialise `model` from the checkpoint at `path`; returns a TransferReport.

    `keypoint_map` None: keypoint-count tensors load whole where their shapes fit (same keypoints)
    and stay at initialisation where they do not. A list [(source index, target index), ...]: they
    are built from those rows only (the rest stay at initialisation), whatever the counts."""
    state, info = read_state_dict(path)
    model = unwrap_model(model)
    own = model.state_dict()
    head = getattr(model, "channelformer", None)
    learnable_positions = getattr(head, "pos_embedding_type", "") == "learnable"
    parts = (_num_parts(state), _num_parts(own))
    loaded, reinitialised, dropped, problems = [], [], [], []
    mapped, updates = {}, {}

    for name, target in own.items():
        source = state.get(name)
        axis = _keypoint_axis(name)
        if source is None:
            if _is_part_tensor(name) or name.endswith("num_batches_tracked") or is_unused_parameter(name):
                reinitialised.append(name)
            else:
                problems.append(f"missing from the checkpoint: {name}")
        elif axis is not None and (keypoint_map is not None or source.shape != target.shape):
            if not _differs_only_along(source.shape, target.shape, axis):
                problems.append(f"{name}: checkpoint {tuple(source.shape)} vs model {tuple(target.shape)}")
            elif name.endswith("pos_embedding") and not learnable_positions:
                reinitialised.append(name)   # the fixed sine table the model built for its own keypoints
            else:
                offsets = parts if name.endswith("pos_embedding") else (0, 0)
                updates[name], pairs = _carry_rows(name, source, target, axis, keypoint_map or (), offsets)
                (mapped.__setitem__(name, pairs) if pairs else reinitialised.append(name))
        elif _is_part_tensor(name) and parts[0] != parts[1]:
            reinitialised.append(name)   # a part's BN counter too: its statistics start again
        elif source.shape == target.shape:
            updates[name] = source
            loaded.append(name)
        else:
            problems.append(f"{name}: checkpoint {tuple(source.shape)} vs model {tuple(target.shape)}")
    for name in state:
        if name not in own:
            if _is_part_tensor(name) or is_unused_parameter(name):
                dropped.append(name)
            else:
                problems.append(f"not in the model: {name}")
    if problems:
        raise CheckpointError(f"MODEL.INIT_FROM {info['path']}: {len(problems)} tensor(s) fit nowhere (another "
                              f"width, input size or architecture; only the keypoint and body-part counts may "
                              f"differ):\n" + "\n".join(f"  {line}" for line in problems))
    model.load_state_dict(updates, strict=False)
    report = TransferReport(loaded, reinitialised, mapped, dropped)
    _log(report, info["path"])
    return report


def _carry_rows(name, source, target, axis, keypoint_map, offsets):
    """(target with the mapped keypoint rows copied from source, [(source, target) pairs]).

    `offsets`: rows before the keypoints (a learnable position embedding holds P part rows first;
    those are copied too when both have the same number of parts)."""
    source_offset, target_offset = offsets
    source_count = source.shape[axis] - source_offset
    target_count = target.shape[axis] - target_offset
    result = target.clone()
    if source_offset and source_offset == target_offset:
        result.narrow(axis, 0, target_offset).copy_(source.narrow(axis, 0, source_offset))
    pairs = []
    for source_index, target_index in keypoint_map:
        if not (0 <= source_index < source_count and 0 <= target_index < target_count):
            raise CheckpointError(f"MODEL.INIT_KEYPOINT_MAP pair ({source_index}, {target_index}) is outside the "
                                  f"checkpoint's {source_count} or the model's {target_count} keypoints ({name})")
        result.select(axis, target_offset + target_index).copy_(source.select(axis, source_offset + source_index))
        pairs.append((source_index, target_index))
    return result, pairs

def _log(report, path):
    logger.info("MODEL.INIT_FROM %s: %d tensors loaded, %d left at initialisation, %d with keypoint rows "
                "carried over, %d checkpoint tensors dropped", path, len(report.loaded),
                len(report.reinitialised), len(report.mapped), len(report.dropped))
    if report.reinitialised:
        logger.info("  left at initialisation (keypoint or body-part count differs): %s",
                    ", ".join(report.reinitialised))
    for name, pairs in report.mapped.items():
        logger.info("  %s: rows copied (checkpoint keypoint -> model keypoint) %s", name,
                    ", ".join(f"{s}->{t}" for s, t in pairs))
    if report.dropped:
        logger.info("  dropped (the model has no body-part prompts for them): %s", ", ".join(report.dropped))
