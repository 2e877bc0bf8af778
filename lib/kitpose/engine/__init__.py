"""Training and testing engine: loops, checkpoints, distributed set-up, logging."""
from .checkpoint import BEST_NAME, CHECKPOINT_NAME, FINAL_NAME, atomic_save, read_training_state
from .distributed import RunContext, init_run_context, unwrap_model, wrap_model
from .fusion import fuse_batchnorm
from .inference import Predictions, evaluate_predictions, flip_test_heatmaps, run_inference
from .optim import build_optimizer, build_scheduler, lr_factor
from .testing import load_model_weights, run_test
from .trainer import NonFiniteLossError, TrainingSummary, run_training, train_one_epoch

__all__ = ["BEST_NAME", "CHECKPOINT_NAME", "FINAL_NAME", "atomic_save", "read_training_state", "RunContext",
           "init_run_context", "unwrap_model", "wrap_model", "fuse_batchnorm", "Predictions",
           "evaluate_predictions", "flip_test_heatmaps", "run_inference", "build_optimizer", "build_scheduler",
           "lr_factor", "load_model_weights", "run_test", "NonFiniteLossError", "TrainingSummary",
           "run_training", "train_one_epoch"]
