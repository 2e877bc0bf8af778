"""Checks a training run makes before its first step, so that bad data stops it at once, not after
an epoch's work (a corrupt validation image would otherwise surface only at the first validation)."""
import logging
import time

from kitpose.datasets import ImageReadError
from kitpose.datasets.image_check import unreadable_images

from .distributed import all_gather_objects

logger = logging.getLogger(__name__)


def check_image_files(datasets, context):
    """DATASET.CHECK_IMAGES: every image file of `datasets` must be readable, else one ImageReadError
    lists all that are not. Under DDP each rank checks a share and every rank raises the same error."""
    paths = sorted({path for dataset in datasets for path in dataset.image_files})
    start = time.perf_counter()
    shares = all_gather_objects(unreadable_images(paths[context.rank::context.world_size]), context)
    unreadable = sorted(item for share in shares for item in share)
    logger.info("checked the headers of %d image files in %.1f s (DATASET.CHECK_IMAGES)", len(paths),
                time.perf_counter() - start)
    if unreadable:
        raise ImageReadError(
            f"{len(unreadable)} of the {len(paths)} image files of the training and validation sets cannot be "
            f"read; nothing was trained (fix or remove them, or drop their annotations):\n"
            + "\n".join(f"  {path}: {reason}" for path, reason in unreadable))
