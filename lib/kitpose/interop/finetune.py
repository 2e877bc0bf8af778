"""`import_labels --init-from`: the imported set's YAML starts from a trained model.

The written YAML takes the checkpoint's architecture (from `--init-config`, the YAML the
checkpoint was trained with; else the config a training checkpoint carries; else the built-in
template, when the checkpoint fits it), sets MODEL.INIT_FROM / INIT_META and writes the keypoint
map inferred from names as MODEL.INIT_KEYPOINT_MAP for the user to check, and a fine-tuning
schedule: `FINE_TUNE_TRAIN_SAMPLES` samples at the template's learning rate. Measured on
DeepLabCut's openfield mouse (20 training frames, from the synthetic-quadruped demo model): 2000
samples reached the PCK that 10000 from scratch reach, while a tenth of the learning rate left the
keypoints that start fresh (no source row) far behind. Before anything is written, the
model of that YAML is built and the checkpoint loaded into it, so that a checkpoint that does not
fit stops the import with the tensors named.
"""
import copy
import logging
import os
import tempfile
from dataclasses import dataclass, field

import yaml

from kitpose.config import load_config
from kitpose.datasets import BUILTIN_METAINFO, MetainfoError, load_metainfo
from kitpose.datasets.keypoint_names import match_keypoints
from kitpose.models import CheckpointError, build_model, init_from_checkpoint, torch_load

from . import InteropError

logger = logging.getLogger(__name__)

FINE_TUNE_TRAIN_SAMPLES = 2000   # a fifth of a training from scratch (DEFAULT_TRAIN_SAMPLES)


@dataclass
class FineTunePlan:
    checkpoint: str                 # absolute path, MODEL.INIT_FROM
    template: dict                  # the config mapping the YAML starts from
    template_label: str             # how the YAML header names it
    meta: str = ""                  # MODEL.INIT_META ('' when the checkpoint's keypoints are unnamed)
    keypoint_map: list = field(default_factory=list)   # MODEL.INIT_KEYPOINT_MAP entries 'source:target'
    starting_fresh: list = field(default_factory=list)  # target keypoints no source row carries over to

    def apply(self, config):
        """Set the fine-tuning keys in the config mapping the import writes."""
        config.setdefault("MODEL", {}).update({"INIT_FROM": self.checkpoint, "INIT_META": self.meta,
                                               "INIT_KEYPOINT_MAP": self.keypoint_map or ["none"]})
        return config

    def header(self):
        lines = [f"# fine-tunes {self.checkpoint} (MODEL.INIT_FROM) at the template's TRAIN.LR: a lower one "
                 f"leaves the keypoints that start fresh behind;",
                 f"# MODEL.INIT_KEYPOINT_MAP was inferred from keypoint names ({self.meta or 'unnamed'} -> this set): "
                 f"check it; starting fresh: {', '.join(self.starting_fresh) or 'none'}"]
        return "".join(line + "\n" for line in lines)


def _read_yaml(path, what):
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as err:
        raise InteropError(f"{what} {path}: {err}") from None
    if not isinstance(config, dict):
        raise InteropError(f"{what} {path}: expected a mapping of config keys")
    return config


def _checkpoint_config(checkpoint):
    """The config mapping a training checkpoint (checkpoint.pth) carries, or None."""
    try:
        content = torch_load(checkpoint)
    except CheckpointError as err:
        raise InteropError(f"--init-from: {err}") from None
    text = content.get("config") if isinstance(content, dict) else None
    return yaml.safe_load(text) if isinstance(text, str) else None


def _source_meta(init_meta, template):
    """MODEL.INIT_META: given, or the template's dataset when it names its keypoints, else ''."""
    if init_meta:
        return init_meta
    dataset = template.get("DATASET") or {}
    meta, root = str(dataset.get("META") or ""), str(dataset.get("ROOT") or "")
    for candidate in (meta, os.path.join(root, meta) if meta else "", str(dataset.get("DATASET") or "")):
        if candidate in BUILTIN_METAINFO or (candidate and os.path.isfile(candidate)):
            return candidate
    return ""


def plan_fine_tuning(init_from, names, builtin_template, init_config=None, init_meta=None):
    """FineTunePlan for the keypoints `names`; `builtin_template` = (mapping, label) of the default template."""
    checkpoint = os.path.abspath(os.fspath(init_from))
    if not os.path.isfile(checkpoint):
        raise InteropError(f"--init-from {init_from}: no such file")
    if init_config:
        template, label = _read_yaml(init_config, "--init-config"), os.fspath(init_config)
    else:
        own = _checkpoint_config(checkpoint)
        template, label = (own, f"the config inside {checkpoint}") if own else builtin_template
    template = copy.deepcopy(template)
    meta = _source_meta(init_meta, template)
    plan = FineTunePlan(checkpoint, template, label, meta=meta)
    pairs = []
    if meta:
        try:
            source_names = list(load_metainfo(meta).keypoints)
        except MetainfoError as err:
            raise InteropError(f"--init-meta: {err}") from None
        pairs = match_keypoints(source_names, names)
        plan.keypoint_map = [f"{source_names[s]}:{names[t]}" for s, t in pairs]
    else:
        logger.warning("--init-from %s: its keypoints are unnamed (give --init-meta, a built-in metainfo name or "
                       "JSON): every keypoint row starts fresh", checkpoint)
    carried = {t for _, t in pairs}
    plan.starting_fresh = [name for index, name in enumerate(names) if index not in carried]
    _check_fits(plan, len(names), pairs)
    logger.info("fine-tuning from %s (architecture: %s); keypoint rows carried over: %s", checkpoint, label,
                ", ".join(plan.keypoint_map) or "none")
    return plan


def _check_fits(plan, num_keypoints, pairs):
    """Build the model the YAML will describe and load the checkpoint into it: a misfit stops the import."""
    config = copy.deepcopy(plan.template)
    model = config.setdefault("MODEL", {})
    model["NUM_JOINTS"] = num_keypoints
    model["NUM_BP"] = min(int(model.get("NUM_BP", 4)), num_keypoints // 2)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"MODEL": model}, f)
        f.flush()
        try:
            cfg = load_config(f.name)
        except (KeyError, ValueError, TypeError) as err:
            raise InteropError(f"template {plan.template_label}: {err}") from None
    try:
        init_from_checkpoint(build_model(cfg), plan.checkpoint, pairs)
    except CheckpointError as err:
        raise InteropError(f"--init-from: {err}\n(the architecture comes from {plan.template_label}; give "
                           f"--init-config, the YAML the checkpoint was trained with)") from None
