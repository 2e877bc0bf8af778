"""The allowed range of every numeric key where one is evident (default.py documents the keys).

A value out of range is a ConfigError naming the key, the value, where it came from and the
allowed range, raised by load_config before anything is built: without it a batch size of -4 or
a negative learning rate ends in a torch traceback that names no key, and END_EPOCH 0 writes an
untrained final_state.pth.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """low <= value <= high (an open end excludes its bound; None: no bound)."""
    low: float = None
    high: float = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value):
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def __str__(self):
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
PROBABILITY = Range(0, 1)

# key -> range of its value (for a list: of each of its values)
RANGES = {
    "WORKERS": NON_NEGATIVE,
    "PRINT_FREQ": AT_LEAST_ONE,
    "MODEL.NUM_JOINTS": AT_LEAST_ONE,
    "MODEL.NUM_BP": NON_NEGATIVE,
    "MODEL.IMAGE_SIZE": AT_LEAST_ONE,
    "MODEL.HEATMAP_SIZE": AT_LEAST_ONE,
    "MODEL.PATCH_SIZE": AT_LEAST_ONE,
    "MODEL.SIGMA": POSITIVE,
    "MODEL.DIM": AT_LEAST_ONE,
    "MODEL.TRANSFORMER_DEPTH": AT_LEAST_ONE,
    "MODEL.TRANSFORMER_HEADS": AT_LEAST_ONE,
    "MODEL.TRANSFORMER_MLP_RATIO": AT_LEAST_ONE,
    "MODEL.EMB_DROPOUT": Range(0, 1, high_open=True),
    "MODEL.DROPOUT": Range(0, 1, high_open=True),
    "MODEL.KMEDOIDS_ITERS": AT_LEAST_ONE,
    "MODEL.KMEDOIDS_CHUNK": AT_LEAST_ONE,
    "LOSS.INTERMEDIATE_WEIGHT": NON_NEGATIVE,
    "LOSS.ADAPTIVE_BETA": POSITIVE,
    "LOSS.OHKM_TOPK": AT_LEAST_ONE,
    "LOSS.TOPK": AT_LEAST_ONE,
    # clip(1 + N(0, 1) sf, 1 - sf, 1 + sf) must stay a positive scale
    "DATASET.SCALE_FACTOR": Range(0, 1, high_open=True),
    "DATASET.ROT_FACTOR": NON_NEGATIVE,
    "DATASET.ROT_PROB": PROBABILITY,
    "DATASET.PROB_HALF_BODY": PROBABILITY,
    "DATASET.NUM_JOINTS_HALF_BODY": NON_NEGATIVE,
    "DATASET.CUTMIX_PROB": PROBABILITY,
    "TRAIN.LR_FACTOR": POSITIVE,
    "TRAIN.LR_STEP": NON_NEGATIVE,
    "TRAIN.LR": POSITIVE,
    "TRAIN.LR_END": NON_NEGATIVE,
    "TRAIN.WARMUP_EPOCHS": NON_NEGATIVE,
    "TRAIN.WARMUP_FACTOR": NON_NEGATIVE,
    "TRAIN.MOMENTUM": PROBABILITY,
    "TRAIN.WD": NON_NEGATIVE,
    "TRAIN.BACKBONE_LR_MULT": NON_NEGATIVE,
    "TRAIN.CLIP_GRAD": NON_NEGATIVE,
    "TRAIN.BEGIN_EPOCH": NON_NEGATIVE,
    "TRAIN.BATCH_SIZE_PER_GPU": AT_LEAST_ONE,
    "TRAIN.VAL_EVERY": AT_LEAST_ONE,
    "TEST.BATCH_SIZE_PER_GPU": AT_LEAST_ONE,
    "TEST.BLUR_KERNEL": AT_LEAST_ONE,
    "TEST.IMAGE_THRE": PROBABILITY,
    "TEST.OKS_THRE": PROBABILITY,
    "TEST.IN_VIS_THRE": PROBABILITY,
    "TEST.PCK_THRE": POSITIVE,
    "TEST.NUM_VIS": NON_NEGATIVE,
    "CENTROID.PEAK_THRESHOLD": PROBABILITY,
    "CENTROID.MIN_DISTANCE": NON_NEGATIVE,
    "CENTROID.BOX_SIZE": NON_NEGATIVE,
    "CENTROID.MATCH_DISTANCE": POSITIVE,
}


def _value(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def range_errors(cfg, origin_of):
    """Messages for every value of `cfg` out of its range; `origin_of(key)` names where the key was set."""
    errors = []
    for key, allowed in RANGES.items():
        value = _value(cfg, key)
        values = value if isinstance(value, (list, tuple)) else [value]
        if not all(allowed.holds(item) for item in values):
            each = "each value " if isinstance(value, (list, tuple)) else ""
            errors.append(f"{origin_of(key)}: {key} = {value!r} is out of range ({each}must be {allowed})")
    train, model = cfg.TRAIN, cfg.MODEL
    if train.END_EPOCH <= train.BEGIN_EPOCH:
        errors.append(f"{origin_of('TRAIN.END_EPOCH')}: TRAIN.END_EPOCH = {train.END_EPOCH} must be greater than "
                      f"TRAIN.BEGIN_EPOCH = {train.BEGIN_EPOCH} (training would run no epoch)")
    if cfg.TEST.BLUR_KERNEL % 2 == 0:
        errors.append(f"{origin_of('TEST.BLUR_KERNEL')}: TEST.BLUR_KERNEL = {cfg.TEST.BLUR_KERNEL} must be odd "
                      f"(a Gaussian blur kernel has a centre pixel)")
    if model.NUM_BP > model.NUM_JOINTS:
        errors.append(f"{origin_of('MODEL.NUM_BP')}: MODEL.NUM_BP = {model.NUM_BP} must be at most MODEL.NUM_JOINTS "
                      f"= {model.NUM_JOINTS} (each body part clusters at least one keypoint)")
    if model.NAME == "centroid_hrnet" and model.NUM_JOINTS != 1:
        errors.append(f"{origin_of('MODEL.NUM_JOINTS')}: MODEL.NUM_JOINTS = {model.NUM_JOINTS} must be 1 for "
                      f"MODEL.NAME centroid_hrnet (one anchor map)")
    if model.NAME == "centroid_hrnet" and cfg.DATASET.CUTMIX:
        errors.append(f"{origin_of('DATASET.CUTMIX')}: DATASET.CUTMIX must be false for MODEL.NAME centroid_hrnet "
                      f"(CutMix mixes the keypoint maps of crops, not the anchors of whole frames)")
    return errors
