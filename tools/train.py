"""Train a keypoint model: `python tools/train.py --cfg X.yaml [KEY VALUE ...]` (see kitpose.engine.cli).

Multi-GPU: list the GPUs in GPUS for DataParallel, or launch with
`torchrun --nproc_per_node N tools/train.py ...` for DistributedDataParallel.
"""
import sys

from kitpose.engine.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
