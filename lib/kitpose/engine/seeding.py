"""Seeding and the random-number-generator states a checkpoint carries."""
import logging
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)


def seed_everything(seed, rank=0):
    """Seed python, numpy and torch (all CUDA devices too). Ranks get seed + rank.

    DDP broadcasts rank 0's initial weights, so per-rank seeds only decorrelate the
    data augmentation of the ranks.
    """
    seed = int(seed) + int(rank)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def configure_cudnn(cfg):
    torch.backends.cudnn.benchmark = bool(cfg.CUDNN.BENCHMARK)
    torch.backends.cudnn.deterministic = bool(cfg.CUDNN.DETERMINISTIC)
    torch.backends.cudnn.enabled = bool(cfg.CUDNN.ENABLED)


def capture_rng_state():
    """Everything needed to continue the random streams exactly.

    Plain python values and tensors only, so checkpoints load with torch.load(weights_only=True).
    """
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), int(position), int(has_gauss), float(cached_gaussian)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda")
    if cuda_states is not None and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning("checkpoint holds CUDA RNG states of %d devices, %d visible: CUDA streams not restored",
                           len(cuda_states), torch.cuda.device_count())
