"""torchrun entry of the GPU check's DDP part: tools/train.py's training run, distributed at any world size.

    python -m torch.distributed.run --standalone --nproc_per_node 1 -m kitpose.benchmark.ddp_worker \
        --cfg X.yaml [KEY VALUE ...]

The engine takes its distributed path only when torchrun starts more than one process
(`kitpose.engine.distributed.launched_by_torchrun`: WORLD_SIZE > 1), so on a machine with one
GPU `torchrun --nproc_per_node 1 tools/train.py` trains without a process group and never
touches NCCL. This entry counts any torchrun launch (RANK set) as distributed, so that one
process runs the whole DDP path: the process group (nccl on CUDA, gloo on the CPU), the
DistributedDataParallel wrapper, the DistributedSampler, the collective calls of the training
loop and rank 0's checkpoint.
"""
import os
import sys

from kitpose.engine import distributed
from kitpose.engine.cli import train_main


def main():
    distributed.launched_by_torchrun = lambda: "RANK" in os.environ
    return train_main()


if __name__ == "__main__":
    sys.exit(main())
