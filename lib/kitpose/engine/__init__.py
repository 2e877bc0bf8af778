"""Training and testing engine: the train step and loops, checkpoints of training state,
distributed set-up, logging. Used by tools/train.py and tools/test.py (`kitpose.engine.cli`)."""
from .checkpoint import BEST_NAME, CHECKPOINT_NAME, FINAL_NAME, read_training_state
from .distributed import RunContext, init_run_context, wrap_model
from .optim import build_optimizer, build_scheduler, lr_factor
from .testing import run_test
from .trainer import NonFiniteLossError, StepResult, TrainingSummary, run_training, train_one_epoch, train_step
from .validation import Predictions, evaluate_predictions, predict_dataset

__all__ = ["BEST_NAME", "CHECKPOINT_NAME", "FINAL_NAME", "read_training_state", "RunContext", "init_run_context",
           "wrap_model", "Predictions", "evaluate_predictions", "predict_dataset", "build_optimizer",
           "build_scheduler", "lr_factor", "run_test", "NonFiniteLossError", "StepResult", "TrainingSummary",
           "run_training", "train_one_epoch", "train_step"]
