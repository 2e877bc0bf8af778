"""Output folders (HRNet layout), the log file and console logging.

OUTPUT_DIR/<dataset>/<model>/<cfg name>/        checkpoints, results, metrics, pictures, log files
LOG_DIR/<dataset>/<model>/<cfg name>_<time>/    tensorboard event files
"""
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from kitpose.console import LOG_FORMAT, TqdmConsoleHandler

# logger.info(..., extra=FILE_ONLY): the record goes to the log file, not the console (for text
# the tool prints to stdout itself, such as the metrics table)
FILE_ONLY = {"kitpose_file_only": True}


@dataclass(frozen=True)
class RunDirs:
    output_dir: Path
    tensorboard_dir: Path
    log_file: Path


def run_dirs(cfg, phase):
    """The folders and log-file path of a run, named as HRNet names them (nothing is created)."""
    dataset = cfg.DATASET.DATASET.replace(":", "_")
    model = cfg.MODEL.NAME
    cfg_name = cfg.CFG_NAME or "default"
    stamp = time.strftime("%Y-%m-%d-%H-%M")
    output_dir = Path(cfg.OUTPUT_DIR) / dataset / model / cfg_name
    tensorboard_dir = Path(cfg.LOG_DIR) / dataset / model / f"{cfg_name}_{stamp}"
    return RunDirs(output_dir, tensorboard_dir, output_dir / f"{cfg_name}_{stamp}_{phase}.log")


def setup_logging(cfg, phase, is_main=True):
    """Create the run folders (main process only) and route logging to console + log file.

    Non-main ranks log warnings and errors to the console only.
    """
    dirs = run_dirs(cfg, phase)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_kitpose", False):
            root.removeHandler(handler)
            handler.close()
    formatter = logging.Formatter(LOG_FORMAT)
    console = TqdmConsoleHandler()
    console.setFormatter(formatter)
    console.addFilter(lambda record: not getattr(record, "kitpose_file_only", False))
    handlers = [console]
    if is_main:
        os.makedirs(dirs.output_dir, exist_ok=True)
        os.makedirs(dirs.tensorboard_dir, exist_ok=True)
        log_file = logging.FileHandler(dirs.log_file)
        log_file.setFormatter(formatter)
        handlers.append(log_file)
    for handler in handlers:
        handler._kitpose = True
        root.addHandler(handler)
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    return dirs
