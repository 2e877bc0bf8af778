"""Keys accepted only because the published KITPose YAML files (and their schema) carry them.

None of these is in ``default.py`` and no code here reads them. ``TRAIN.MODEL_LR`` is the
published name of ``TRAIN.LR`` and sets it. Every other key is type-checked against its
published default; a value asking for something this project cannot do (another target type,
zipped images, HRNet's box selection) is an error naming the key; a value with which the
published code did something harmless that this project leaves out is dropped with a warning
naming the key; values the published code itself ignored (it never read most of these keys)
are dropped silently: ignoring them changes nothing.
"""
from typing import Any, Callable, NamedTuple

# published name -> our key; both given with different values in one source is an error
ALIASES = {"TRAIN.MODEL_LR": "TRAIN.LR"}


class PublishedKey(NamedTuple):
    default: Any        # the published default; fixes the accepted type
    note: str           # what the key did in the published code
    ignorable: Callable[[Any], bool] = lambda value: True  # True: dropping the value changes nothing
    accepted: Callable[[Any], bool] = lambda value: True   # False: an error (this project cannot do it)


def _only(expected):
    return lambda value: value == expected


PUBLISHED_ONLY_KEYS = {
    "TRAIN.MODEL_LR": PublishedKey(0.001, "learning rate of every Adam parameter group; sets TRAIN.LR here"),
    "TRAIN.JOINTS_LR": PublishedKey(0.01, "read only by commented-out optimizer code"),
    "TRAIN.WARMUP_LR": PublishedKey(5e-7, "read only by a scheduler helper that the training scripts never call"),
    "TRAIN.GAMMA1": PublishedKey(0.99, "set by the published files, never read"),
    "TRAIN.GAMMA2": PublishedKey(0.0, "set by the published files, never read"),
    "TRAIN.RESUME": PublishedKey(False, "never read (AUTO_RESUME resumed a run)"),
    "TRAIN.CHECKPOINT": PublishedKey("", "never read"),
    "MODEL.TAG_PER_JOINT": PublishedKey(True, "never read"),
    "MODEL.ATTN_TYPE": PublishedKey(1, "never read"),
    "MODEL.HIDDEN_HEATMAP_DIM": PublishedKey(-1, "never read"),
    "MODEL.INNER_DIM": PublishedKey(64, "passed to the transformer, which never used it"),
    "MODEL.BASE_CHANNEL": PublishedKey(32, "set by the published files, never read"),
    "MODEL.MULTI_TRANSFORMER_DEPTH": PublishedKey([2, 2], "never read"),
    "MODEL.MULTI_TRANSFORMER_HEADS": PublishedKey([8, 8], "never read"),
    "MODEL.MULTI_DIM": PublishedKey([48, 48], "never read"),
    "MODEL.TARGET_TYPE": PublishedKey("gaussian", "target kind; only 'gaussian' targets exist (published and here)",
                                      accepted=_only("gaussian")),
    "DATASET.DATA_FORMAT": PublishedKey("jpg", "'zip' read the images from zip archives, any other value from "
                                               "files; this project reads files only",
                                        accepted=lambda value: value != "zip"),
    "DATASET.HYBRID_JOINTS_TYPE": PublishedKey("", "a non-empty value was appended to the dataset name of the "
                                                   "output folders", _only("")),
    "DATASET.SELECT_DATA": PublishedKey(False, "true dropped training boxes whose mean visible joint lies far "
                                               "from the box centre (HRNet's select_data); not implemented here",
                                        accepted=_only(False)),
    "LOG_TYPE": PublishedKey("map", "what the published training logged to wandb ('map' or 'pck'); here the best "
                                    "model is chosen by the evaluation's primary metric (AP, or PCK Mean), "
                                    "which the metainfo's 'metric' or TEST.METRIC sets"),
    "RANK": PublishedKey(0, "the process rank; here torchrun's RANK environment variable gives it"),
    "TEST.NMS_THRE": PublishedKey(0.6, "stored by the datasets, never used (TEST.OKS_THRE is the NMS threshold)"),
    "TEST.BBOX_THRE": PublishedKey(1.0, "never read"),
    "DEBUG.DEBUG": PublishedKey(False, "switch of the DEBUG.SAVE_* images; on its own it saved nothing"),
    "DEBUG.SAVE_BATCH_IMAGES_GT": PublishedKey(False, "with DEBUG.DEBUG: saved the batch with its target joints "
                                                      "every PRINT_FREQ iterations", _only(False)),
    "DEBUG.SAVE_BATCH_IMAGES_PRED": PublishedKey(False, "with DEBUG.DEBUG: saved the batch with its predicted joints "
                                                        "every PRINT_FREQ iterations", _only(False)),
    "DEBUG.SAVE_HEATMAPS_GT": PublishedKey(False, "with DEBUG.DEBUG: saved the target heatmaps every PRINT_FREQ "
                                                  "iterations", _only(False)),
    "DEBUG.SAVE_HEATMAPS_PRED": PublishedKey(False, "with DEBUG.DEBUG: saved the predicted heatmaps every "
                                                    "PRINT_FREQ iterations", _only(False)),
}

# sections that hold nothing but published-only keys (absent from default.py)
PUBLISHED_ONLY_SECTIONS = {"DEBUG"}
