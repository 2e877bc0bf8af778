"""Shared pieces of the engine tests: a tiny AP-10K-layout data set and the tiny CPU config."""
import os
from pathlib import Path

from kitpose.config import load_config
from kitpose.demo.synthetic import generate_synthetic_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO_ROOT / "experiments" / "synthetic" / "kitpose_tiny_cpu.yaml"


def make_tiny_dataset(root, train=8, val=4):
    """Synthetic quadrupeds in the AP-10K layout (a few images; ~0.1 s)."""
    generate_synthetic_dataset(str(root), train=train, val=val, test=0, seed=0)
    return Path(root)


def tiny_opts(data_root, run_root, **overrides):
    """Command-line style overrides: data, output/log folders under run_root, small batches."""
    opts = {
        "DATASET.ROOT": str(data_root),
        "OUTPUT_DIR": str(Path(run_root) / "output"),
        "LOG_DIR": str(Path(run_root) / "log"),
        "TRAIN.END_EPOCH": 2,
        "TRAIN.BATCH_SIZE_PER_GPU": 4,
        "TRAIN.VAL_EVERY": 1,
        "TEST.BATCH_SIZE_PER_GPU": 8,
        "WORKERS": 0,
        "PRINT_FREQ": 100,
    }
    opts.update(overrides)
    flat = []
    for key, value in opts.items():
        flat += [key, str(value)]
    return flat


def tiny_config(data_root, run_root, **overrides):
    return load_config(str(TINY_CONFIG), tiny_opts(data_root, run_root, **overrides))


def run_output_dir(run_root):
    """OUTPUT_DIR/<dataset>/<model>/<cfg name> of the tiny config."""
    return Path(run_root) / "output" / "ap10k" / "kitpose_part" / TINY_CONFIG.stem


# On shared, busy cores torch's intra-op threads fight each other: one thread is several times faster.
SUBPROCESS_ENV = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")


