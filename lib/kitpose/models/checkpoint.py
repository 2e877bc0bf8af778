"""Checkpoint files: reading, unwrapping, strict loading, ImageNet initialisation, atomic writing.

The published loader used strict=False, so a renamed key silently left part of the
model random. Here every key must be accounted for; the only tolerated absences are BN
counters and the parameters published checkpoints carry but the forward never uses.
"""
import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from kitpose.jsonio import atomic_write

logger = logging.getLogger(__name__)

# parameters official checkpoints carry but the forward never uses (excluded from "used" counts)
UNUSED_PARAMETERS = ("channelformer.bp_embeddings", "channelformer.bp_to_embeddings")

# where a checkpoint file keeps its weights: HRNet/KITPose training checkpoints ('state_dict',
# 'best_state_dict'), this project's own ('model'); otherwise the file is the state dict itself
STATE_DICT_KEYS = ("state_dict", "model", "best_state_dict")
MODULE_PREFIX = "module."


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the model."""


def is_unused_parameter(name):
    """True for the published-but-unused parameters and their .weight/.bias (any 'module.' prefix)."""
    name = name[len(MODULE_PREFIX):] if name.startswith(MODULE_PREFIX) else name
    return name in UNUSED_PARAMETERS or name.rsplit(".", 1)[0] in UNUSED_PARAMETERS


# how torch.save files begin: a zip archive (PyTorch >= 1.6) or a pickle of protocol 2 or higher (older)
TORCH_FILE_SIGNATURES = (b"PK\x03\x04", b"\x80")


def _check_torch_file(path):
    """CheckpointError naming the file when it is not something torch.save writes (a text or image
    file, an empty file), instead of the unpickler's puzzle (e.g. 'KeyError: 101')."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head.startswith(TORCH_FILE_SIGNATURES):
        what = "it is empty" if not head else f"it begins with {head!r}"
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({what}; torch.save writes a zip archive, "
                              f"or a pickle before PyTorch 1.6)")


def torch_load(path):
    """torch.load on the CPU, tensors-only when possible; any failure -> CheckpointError naming the file."""
    _check_torch_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():
            raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
        # training checkpoints may hold numpy scalars or other plain objects (e.g. 'perf')
        logger.warning("%s holds objects besides tensors; loading it with full unpickling", path)
    except Exception as err:  # truncated zip, wrong format, ...
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err


def read_state_dict(path):
    """Read a checkpoint file -> (state dict with any 'module.' prefix removed, info dict)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    content = torch_load(path)
    if not isinstance(content, Mapping):
        raise CheckpointError(f"{path}: expected a state dict or a dict holding one, got {type(content).__name__}")
    source_key = next((key for key in STATE_DICT_KEYS if isinstance(content.get(key), Mapping)), None)
    state = content[source_key] if source_key else content
    not_tensors = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: not a state dict, these entries are not tensors: {not_tensors}")
    stripped = sum(key.startswith(MODULE_PREFIX) for key in state)
    state = {(key[len(MODULE_PREFIX):] if key.startswith(MODULE_PREFIX) else key): value
             for key, value in state.items()}
    info = {"path": path, "source_key": source_key, "num_tensors": len(state), "stripped_module_prefix": stripped}
    if source_key and "epoch" in content:
        info["epoch"] = content["epoch"]
    return state, info


def unwrap_model(model):
    """The bare model inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _format_keys(title, keys):
    return f"  {title} ({len(keys)}):\n" + "\n".join(f"    {key}" for key in keys)


def load_checkpoint(model, path):
    """Load a checkpoint strictly into `model`; returns an info dict.

    Accepts a plain state dict, {'state_dict': ...}, {'best_state_dict': ...}, the
    project's {'model': ...} and 'module.'-prefixed keys. Missing keys, unexpected keys
    and shape mismatches raise one CheckpointError listing all of them. Tolerated:
    absent BN `num_batches_tracked` counters and absent published-but-unused parameters
    (both keep the model's values).
    """
    state, info = read_state_dict(path)
    model = unwrap_model(model)
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    tolerated = [key for key in missing if key.endswith("num_batches_tracked") or is_unused_parameter(key)]
    missing = [key for key in missing if key not in tolerated]
    unexpected = [key for key in state if key not in own]
    mismatched = [f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(own[key].shape)}"
                  for key in state if key in own and state[key].shape != own[key].shape]
    if missing or unexpected or mismatched:
        parts = [f"checkpoint {info['path']} does not fit the model ({type(model).__name__}):"]
        hint = _prefix_hint(own, unexpected)
        if hint:
            parts.append(hint)
        if missing:
            parts.append(_format_keys("missing keys", missing))
        if unexpected:
            parts.append(_format_keys("unexpected keys", unexpected))
        if mismatched:
            parts.append(_format_keys("shape mismatches", mismatched))
        raise CheckpointError("\n".join(parts))
    model.load_state_dict(state, strict=False)
    unused = [key for key in state if is_unused_parameter(key)]
    info.update(unused_keys=unused, tolerated_missing=tolerated)
    logger.info("loaded %d tensors from %s%s", len(state), info["path"],
                f" ('{info['source_key']}' entry)" if info["source_key"] else "")
    if unused:
        logger.info("published parameters present but unused by the forward: %s", ", ".join(unused))
    if tolerated:
        logger.info("absent from the checkpoint, model values kept: %s", ", ".join(tolerated))
    return info


def _prefix_hint(own, unexpected):
    """Name the common whole-model mismatch: KITPose keys vs plain HRNet keys."""
    if not unexpected:
        return ""
    if all("pre_feature." + key in own for key in unexpected):
        return "  hint: the checkpoint holds plain HRNet keys (no 'pre_feature.'); it fits MODEL.NAME pose_hrnet"
    if all(key.startswith(("pre_feature.", "channelformer.")) for key in unexpected) and \
            not any(key.startswith(("pre_feature.", "channelformer.")) for key in own):
        return ("  hint: the checkpoint is a KITPose model ('pre_feature.', 'channelformer.'); "
                "it fits MODEL.NAME kitpose_part")
    return ""


def load_model_file(model, path, source="TEST.MODEL_FILE"):
    """`load_checkpoint` with the file and the setting it came from named in every failure."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{source} {path} does not exist (pass {source} <path>, or train first so that "
                              f"the run's final_state.pth exists)")
    try:
        return load_checkpoint(model, path)
    except CheckpointError as err:
        raise CheckpointError(f"{source} {path} cannot be used (corrupt, truncated or for another "
                              f"model configuration): {err}") from err


def load_imagenet_weights(backbone, path, pretrained_layers=("*",)):
    """Copy ImageNet HRNet tensors whose first name component is in `pretrained_layers`
    ('*' = all) and whose shape matches; returns the number of tensors loaded."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"ImageNet HRNet weights not found: {path} (MODEL.PRETRAINED). Download the ImageNet-pretrained "
            f"HRNet (e.g. hrnet_w32-36af842e.pth / hrnet_w48-8ef0771d.pth) into models/pytorch/imagenet/, "
            f"or set MODEL.INIT_WEIGHTS False / MODEL.PRETRAINED ''")
    source, _ = read_state_dict(path)
    take_all = "*" in pretrained_layers
    own = backbone.state_dict()
    selected, mismatched = {}, []
    for key, tensor in source.items():
        if not (take_all or key.split(".")[0] in pretrained_layers) or key not in own:
            continue
        if tuple(tensor.shape) != tuple(own[key].shape):
            mismatched.append(f"{key} {tuple(tensor.shape)} vs model {tuple(own[key].shape)}")
            continue
        selected[key] = tensor
    if not selected:
        raise ValueError(f"{path}: no tensor matches the backbone (MODEL.EXTRA.PRETRAINED_LAYERS "
                         f"{list(pretrained_layers)}); is this an HRNet ImageNet checkpoint of the right width?")
    backbone.load_state_dict(selected, strict=False)
    logger.info("loaded %d ImageNet tensors from %s (%d of the backbone's %d left at init%s)",
                len(selected), path, len(own) - len(selected), len(own),
                f"; shape mismatches skipped: {', '.join(mismatched)}" if mismatched else "")
    return len(selected)


def atomic_save(obj, path):
    """torch.save to a temporary file beside `path`, fsync, then rename over `path` (jsonio.atomic_write):
    an interrupted write never leaves a truncated checkpoint behind."""
    with atomic_write(path, binary=True) as f:
        torch.save(obj, f)
