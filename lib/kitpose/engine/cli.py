"""Command lines of tools/train.py and tools/test.py (HRNet conventions).

    python tools/train.py --cfg X.yaml [--dataDir D] [--modelDir M] [--logDir L] [KEY VALUE ...]
    python tools/test.py  --cfg X.yaml TEST.MODEL_FILE path.pth [KEY VALUE ...]
    torchrun --nproc_per_node N tools/train.py --cfg X.yaml ...   # DistributedDataParallel

--dataDir sets DATA_DIR (prefix of DATASET.ROOT and TEST.COCO_BBOX_FILE), --modelDir
OUTPUT_DIR, --logDir LOG_DIR. Problems a user can fix (configuration, data, checkpoint,
non-finite loss, an output folder another training run holds) end with one clear error line
and exit status 1, without a traceback.
"""
import argparse
import logging
import sys

from kitpose.config import load_config
from kitpose.console import USER_ERRORS

from .testing import run_test
from .run_folder import RunFolderBusy
from .trainer import NonFiniteLossError, run_training

logger = logging.getLogger(__name__)

ERRORS = USER_ERRORS + (NonFiniteLossError, RunFolderBusy)


def parse_args(argv, description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg", required=True, help="experiment configuration YAML")
    parser.add_argument("--dataDir", default="", help="DATA_DIR: prefix of relative dataset paths")
    parser.add_argument("--modelDir", default="", help="OUTPUT_DIR: checkpoints, results, log files")
    parser.add_argument("--logDir", default="", help="LOG_DIR: tensorboard event files")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser.parse_args(argv)


def config_from_args(args):
    opts = list(args.opts)
    for flag_value, key in ((args.dataDir, "DATA_DIR"), (args.modelDir, "OUTPUT_DIR"), (args.logDir, "LOG_DIR")):
        if flag_value:
            opts += [key, flag_value]
    return load_config(args.cfg, opts)


def _run(action, argv, description):
    args = parse_args(argv, description)
    try:
        action(config_from_args(args))
    except ERRORS as err:
        if logging.getLogger().handlers:
            logger.error("%s", err)
        else:
            print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; checkpoints already written are complete (writes are atomic)", file=sys.stderr)
        return 130
    return 0


def train_main(argv=None):
    return _run(run_training, argv, "Train a KITPose / HRNet keypoint model.")


def test_main(argv=None):
    return _run(run_test, argv, "Test a KITPose / HRNet checkpoint: metrics, COCO results, pictures.")
