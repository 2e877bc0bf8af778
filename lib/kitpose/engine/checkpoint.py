"""Training checkpoints: the resume state and clear errors for unreadable files (written atomically
with ``kitpose.models.atomic_save``).

Files in the run's output folder:
  checkpoint.pth   everything needed to continue: model, optimiser, scheduler, grad scaler,
                   next epoch, best metric, RNG states of every rank, the config (YAML text).
                   Its `state_dict` entry makes it loadable by `kitpose.models.load_checkpoint`.
  model_best.pth   the model state dict of the best validation epoch.
  final_state.pth  the model state dict after the last epoch.
Every file is written to a temporary file in the same folder and renamed over the old
one, so an interrupted write never leaves a truncated checkpoint behind.

AUTO_RESUME with an unreadable checkpoint.pth stops with a CheckpointError naming the
file and how to start fresh; it never silently trains from scratch over it.

A resumed run continues bit for bit like an uninterrupted one when SEED >= 0 and the data
is loaded in the main process (WORKERS 0) or by workers restarted each epoch
(PERSISTENT_WORKERS False): persistent workers carry augmentation streams that a
checkpoint does not hold.
"""
import logging
from pathlib import Path

import torch

from kitpose.models import CheckpointError

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pth"
BEST_NAME = "model_best.pth"
FINAL_NAME = "final_state.pth"
CHECKPOINT_FORMAT = "kitpose-train-checkpoint-v1"
_REQUIRED_KEYS = ("state_dict", "optimizer", "scheduler", "epoch", "best_perf", "rng")


def training_state(model, optimizer, scheduler, scaler, next_epoch, best_perf, rng_states, cfg):
    return {
        "format": CHECKPOINT_FORMAT,
        "model": cfg.MODEL.NAME,
        "epoch": next_epoch,
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "best_perf": best_perf,
        "rng": rng_states,
        "config": cfg.dump(),
    }


def read_training_state(path):
    """Load checkpoint.pth for resuming; any problem -> CheckpointError naming the file."""
    path = Path(path)
    how_to_start_fresh = (f"To start fresh, move or delete {path} (or set AUTO_RESUME False "
                          f"with a different OUTPUT_DIR).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"AUTO_RESUME: cannot read {path}: {type(err).__name__}: {err}. The file is corrupt or "
            f"truncated. {how_to_start_fresh}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"AUTO_RESUME: {path} is not a KITPose training checkpoint "
                              f"(expected format {CHECKPOINT_FORMAT}). {how_to_start_fresh}")
    missing = [key for key in _REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"AUTO_RESUME: {path} lacks {missing}. {how_to_start_fresh}")
    return state
