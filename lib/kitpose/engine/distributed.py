"""Where the run executes: one process (CPU, one GPU, DataParallel) or torchrun/DDP.

Multi-GPU on one machine: `cfg.GPUS` with several ids -> `torch.nn.DataParallel`
(the published way). Several processes: launch with `torchrun`, which sets RANK,
LOCAL_RANK and WORLD_SIZE; each process then drives one GPU (or CPU with gloo)
through DistributedDataParallel. Multi-node works through torchrun's own options
(`--nnodes`, `--node_rank`, `--rdzv_endpoint`); nothing here is node-specific.
"""
import logging
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from .logging_setup import setup_logging

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """Process placement: rank/world size, the device this process uses, the GPUs DataParallel spans."""
    distributed: bool
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    data_parallel_ids: tuple = ()

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def num_replicas_per_process(self):
        """Batch multiplier: DataParallel splits one process's batch over its GPUs."""
        return max(1, len(self.data_parallel_ids))


@contextmanager
def run_phase(cfg, phase):
    """``with run_phase(cfg, 'train') as (context, dirs):`` a run: the process group / device set up, the
    run folders and logging ('train' or 'test' log file) in place, and the process group torn down
    afterwards."""
    context = init_run_context(cfg)
    dirs = setup_logging(cfg, phase, context.is_main)
    try:
        yield context, dirs
    finally:
        cleanup(context)


def launched_by_torchrun():
    """Started by torchrun (or torch.distributed.launch), with any number of processes: one process
    under torchrun also runs the distributed path (process group, DDP, DistributedSampler)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_run_context(cfg):
    """Initialise the process group when launched by torchrun and pick the device.

    CUDA is used when available; otherwise CPU, said once in the log. Under torchrun
    the backend is nccl on CUDA and gloo on CPU.
    """
    cuda = torch.cuda.is_available()
    if launched_by_torchrun():
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        world_size = int(os.environ["WORLD_SIZE"])
        if cuda:
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo", init_method="env://")
        return RunContext(True, rank, local_rank, world_size, device)
    if not cuda:
        return RunContext(False, 0, 0, 1, torch.device("cpu"))
    visible = torch.cuda.device_count()
    gpu_ids = tuple(int(g) for g in cfg.GPUS if 0 <= int(g) < visible) or (0,)
    device = torch.device("cuda", gpu_ids[0])
    torch.cuda.set_device(device)
    data_parallel_ids = gpu_ids if len(gpu_ids) > 1 else ()
    return RunContext(False, 0, 0, 1, device, data_parallel_ids)


def describe(context):
    """One log line saying where the run executes."""
    if context.device.type == "cpu":
        where = "CPU (CUDA is not available)"
    elif context.data_parallel_ids:
        where = f"CUDA GPUs {list(context.data_parallel_ids)} with DataParallel"
    else:
        where = f"{context.device} ({torch.cuda.get_device_name(context.device)})"
    if context.distributed:
        backend = dist.get_backend()
        return f"distributed: rank {context.rank}/{context.world_size} ({backend}) on {where}"
    return f"device: {where}"


def wrap_model(model, context):
    """DDP under torchrun, DataParallel for several configured GPUs, else the model itself."""
    if context.distributed:
        # static_graph: the parameter set used per iteration never changes, and it
        # tolerates the parameters official checkpoints carry but the forward never uses.
        device_ids = [context.local_rank] if context.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, static_graph=True)
    if context.data_parallel_ids:
        return torch.nn.DataParallel(model, device_ids=list(context.data_parallel_ids))
    return model


def barrier(context):
    if context.distributed:
        dist.barrier()


def all_true(flag, context):
    """True when `flag` holds on every rank (so all ranks take the same branch)."""
    if not context.distributed:
        return bool(flag)
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def broadcast_buffers(model, context):
    """Copy rank 0's buffers (BatchNorm statistics) to every rank.

    DDP syncs buffers at the start of each forward, so after the last training step each
    replica holds statistics updated by its own batch; validation should use rank 0's,
    which are the ones saved.
    """
    if context.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def all_gather_objects(obj, context):
    """List of `obj` from every rank (just [obj] in one process)."""
    if not context.distributed:
        return [obj]
    gathered = [None] * context.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def cleanup(context):
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def _seed_worker(worker_id):
    """Workers get distinct, reproducible numpy/python streams derived from torch's worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_loader(dataset, cfg, context, is_train):
    """DataLoader with a DistributedSampler under torchrun; batch = per-GPU size x DataParallel GPUs."""
    per_gpu = cfg.TRAIN.BATCH_SIZE_PER_GPU if is_train else cfg.TEST.BATCH_SIZE_PER_GPU
    sampler = None
    shuffle = bool(is_train and cfg.TRAIN.SHUFFLE)
    if context.distributed:
        sampler = DistributedSampler(dataset, num_replicas=context.world_size, rank=context.rank,
                                     shuffle=shuffle, seed=max(cfg.SEED, 0))
        shuffle = False
    workers = int(cfg.WORKERS)
    return DataLoader(
        dataset,
        batch_size=per_gpu * context.num_replicas_per_process,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        pin_memory=bool(cfg.PIN_MEMORY and context.device.type == "cuda"),
        persistent_workers=bool(cfg.PERSISTENT_WORKERS and workers > 0),
        worker_init_fn=_seed_worker,
        drop_last=False,
    )
