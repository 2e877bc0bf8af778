"""Training: one step (`train_step`, also what tools/benchmark.py times), one epoch
(`train_one_epoch`) and a whole run (`run_training`, used by tools/train.py)."""
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tensorboardX import SummaryWriter

from kitpose.codecs import HeatmapCodec
from kitpose.datasets import build_dataset, config_metainfo
from kitpose.datasets.cutmix import check_cutmix_weights, cutmix_batch
from kitpose.losses import build_criterion
from kitpose.models import CheckpointError, atomic_save, build_model, count_parameters, unwrap_model
from kitpose.progress import progress
from kitpose.runtime import autocast_context, describe_training_amp, prepare_for_training, training_amp

from .checkpoint import BEST_NAME, CHECKPOINT_NAME, FINAL_NAME, read_training_state, training_state
from .distributed import (all_gather_objects, all_true, barrier, broadcast_buffers, build_loader, describe, run_phase,
                          wrap_model)
from .finetune import initialise_from_config
from .optim import build_optimizer, build_scheduler
from .preflight import check_image_files
from .run_folder import hold_run_folder
from .seeding import capture_rng_state, configure_cudnn, restore_rng_state, seed_everything
from .validation import evaluate_predictions, predict_dataset

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped before applying that update."""


@dataclass
class TrainingSummary:
    output_dir: Path
    tensorboard_dir: Path
    best_perf: float
    last_perf: float
    epochs_run: int


def _float_outputs(outputs):
    """Model outputs in float32 for the loss (autocast may have produced half precision)."""
    return outputs._replace(**{name: value.float() for name, value in outputs._asdict().items()
                               if value is not None})


def _non_finite_message(loss_value, epoch, iteration, num_iterations, last_checkpoint):
    if last_checkpoint is not None and Path(last_checkpoint).is_file():
        kept = f"The last good checkpoint {last_checkpoint} is intact; rerun with AUTO_RESUME True to continue from it"
    else:
        kept = "No checkpoint had been written yet"
    return (f"non-finite loss ({loss_value}) at epoch {epoch} iteration {iteration}/{num_iterations}: training "
            f"stopped before applying this update. {kept} (after lowering TRAIN.LR, setting TRAIN.CLIP_GRAD, "
            f"or checking the data).")


@dataclass
class StepResult:
    values: dict       # 'loss' and one 'loss_<term>' per loss term, floats
    applied: bool      # False: the loss was not finite and no update was made
    batch_size: int


def train_step(model, images, target, target_weight, criterion, optimizer, scaler, cfg, device,
               finite=math.isfinite):
    """One optimisation step on a batch: CutMix (DATASET.CUTMIX, DATASET.CUTMIX_WEIGHTS), the forward
    under TRAIN.AMP (CUDA; bf16 also on CPUs with native bfloat16), the loss terms, backward through the gradient scaler, TRAIN.CLIP_GRAD and
    the optimizer step. ``finite(loss)`` decides whether to apply the update (under DDP every rank must
    agree); when it is False nothing is updated and ``StepResult.applied`` is False."""
    images = images.to(device, non_blocking=True)
    target = target.to(device, non_blocking=True)
    target_weight = target_weight.to(device, non_blocking=True)
    mix = None
    if cfg.DATASET.CUTMIX:
        # draws from torch's global stream (seeded by SEED, saved in checkpoints)
        images, target, mix = cutmix_batch(images, target, target_weight, weights=cfg.DATASET.CUTMIX_WEIGHTS,
                                           prob=cfg.DATASET.CUTMIX_PROB)
    if cfg.TRAIN.CHANNELS_LAST:
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast_context(training_amp(cfg.TRAIN.AMP, device), device, "TRAIN.AMP"):
        outputs = model(images)
    loss, parts = criterion(_float_outputs(outputs), target, target_weight, mix=mix)
    # one device sync for the total and every term
    values = dict(zip(["loss"] + [f"loss_{name}" for name in parts],
                      torch.stack([loss.detach()] + [value.detach() for value in parts.values()]).tolist()))
    if not finite(values["loss"]):
        return StepResult(values, False, images.shape[0])
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if cfg.TRAIN.CLIP_GRAD > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.TRAIN.CLIP_GRAD)
    scaler.step(optimizer)
    scaler.update()
    return StepResult(values, True, images.shape[0])


def train_one_epoch(model, loader, criterion, optimizer, scheduler, scaler, cfg, context, epoch,
                    writer=None, last_checkpoint=None):
    """One pass over `loader`; returns the mean of each loss term. The scheduler steps per iteration."""
    model.train()
    num_iterations = len(loader)
    sums, count = {}, 0
    bar = progress(loader, desc=f"epoch {epoch} (of {cfg.TRAIN.END_EPOCH})", unit="batch",
                   disable=not context.is_main)
    tick = time.time()
    for iteration, (images, target, target_weight, _meta) in enumerate(bar):
        data_time = time.time() - tick
        step = train_step(model, images, target, target_weight, criterion, optimizer, scaler, cfg, context.device,
                          finite=lambda value: all_true(math.isfinite(value), context))
        if not step.applied:
            raise NonFiniteLossError(_non_finite_message(step.values["loss"], epoch, iteration, num_iterations,
                                                         last_checkpoint))
        scheduler.step()
        values = step.values
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
        count += 1
        bar.set_postfix(loss=f"{values['loss']:.3e}")
        batch_time = time.time() - tick
        tick = time.time()
        if context.is_main and (iteration % cfg.PRINT_FREQ == 0 or iteration == num_iterations - 1):
            lr = optimizer.param_groups[-1]["lr"]
            logger.info("epoch %d [%d/%d] loss %.4e (mean %.4e) %s lr %.3e | %.1f samples/s, data %.3fs",
                        epoch, iteration, num_iterations, values["loss"], sums["loss"] / count,
                        " ".join(f"{k[5:]} {v:.3e}" for k, v in values.items() if k != "loss"), lr,
                        step.batch_size * context.world_size / max(batch_time, 1e-9), data_time)
            if writer is not None:
                global_step = scheduler.last_epoch
                for name, value in values.items():
                    writer.add_scalar(f"train/{name}", value, global_step)
                for group in optimizer.param_groups:
                    writer.add_scalar(f"train/lr_{group.get('name', 'group')}", group["lr"], global_step)
    return {name: total / max(count, 1) for name, total in sums.items()}


def _time_left(seconds_per_epoch, epochs_left):
    """' (about 5.2 min for the 11 epochs left)': the training time still to come at the mean epoch time so far."""
    if epochs_left <= 0:
        return ""
    plural = "s" if epochs_left > 1 else ""
    return f" (about {seconds_per_epoch * epochs_left / 60:.1f} min for the {epochs_left} epoch{plural} left)"


def _resume(path, model, optimizer, scheduler, scaler, context):
    """Load checkpoint.pth into the training objects; returns (next epoch, best metric)."""
    state = read_training_state(path)
    try:
        model.load_state_dict(state["state_dict"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"AUTO_RESUME: {path} does not fit this configuration ({err}). Move or delete "
                              f"it to start fresh, or use the configuration it was trained with.") from err
    scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(state["scaler"])
    rng_states = state["rng"]
    if len(rng_states) == context.world_size:
        restore_rng_state(rng_states[context.rank])
    else:
        logger.warning("%s holds RNG states of %d processes, this run has %d: random streams restart",
                       path, len(rng_states), context.world_size)
    logger.info("resumed from %s: continuing at epoch %d (best so far %.4f)", path, state["epoch"],
                state["best_perf"])
    return int(state["epoch"]), float(state["best_perf"])


def _write_validation(writer, name_values, epoch):
    if writer is None:
        return
    for name, value in name_values.items():
        writer.add_scalar(f"valid/{name}", float(value), epoch + 1)


def _save_unvalidated_epoch(train_model, optimizer, scheduler, scaler, epoch, best_perf, cfg, checkpoint_file):
    """Validation failed: keep the epoch's training in checkpoint.pth before the error ends the run.
    Only this process's RNG state is at hand (under DDP a resume restarts the random streams, logged)."""
    atomic_save(training_state(unwrap_model(train_model), optimizer, scheduler, scaler, epoch + 1, best_perf,
                               [capture_rng_state()], cfg), checkpoint_file)
    logger.warning("validation after epoch %d failed; the epoch's training is saved in %s (not validated: "
                   "AUTO_RESUME True continues with epoch %d)", epoch, checkpoint_file, epoch + 1)


def run_training(cfg):
    """The whole training run described by `cfg` (see tools/train.py); returns a TrainingSummary."""
    with run_phase(cfg, "train") as (context, dirs), hold_run_folder(dirs.output_dir, context):
        return _train(cfg, context, dirs)


def _train(cfg, context, dirs):
    # a misspelt mode fails here, before any data or model is built, not at the first CutMix batch
    check_cutmix_weights(cfg.DATASET.CUTMIX_WEIGHTS)
    logger.info(describe(context))
    logger.info("output folder %s, tensorboard %s", dirs.output_dir, dirs.tensorboard_dir)
    logger.info("config:\n%s", cfg.dump())
    if cfg.SEED >= 0:
        seed_everything(cfg.SEED, context.rank)
    configure_cudnn(cfg)

    meta, codec = config_metainfo(cfg), HeatmapCodec.from_config(cfg)
    model = build_model(cfg, is_train=True)
    if cfg.MODEL.INIT_FROM:
        if cfg.AUTO_RESUME and (dirs.output_dir / CHECKPOINT_NAME).exists():
            logger.info("MODEL.INIT_FROM %s not applied: AUTO_RESUME continues from %s", cfg.MODEL.INIT_FROM,
                        dirs.output_dir / CHECKPOINT_NAME)
        else:
            initialise_from_config(cfg, model, meta.keypoints)
    num_all, num_used = count_parameters(model)
    logger.info("model %s: %s parameters (%s used by the forward pass)", cfg.MODEL.NAME, f"{num_all:,}",
                f"{num_used:,}")
    # placement, no part maps (no loss reads them), TRAIN.CHANNELS_LAST, TRAIN.COMPILE (CUDA); the
    # compiled wrapper shares the model's parameters, so the optimiser and resume use `model`
    train_model = prepare_for_training(model, cfg, context.device)
    criterion = build_criterion(cfg).to(context.device)

    train_dataset = build_dataset(cfg, is_train=True, meta=meta, codec=codec)
    valid_dataset = build_dataset(cfg, is_train=False, meta=meta, codec=codec)
    if cfg.DATASET.CHECK_IMAGES:
        check_image_files((train_dataset, valid_dataset), context)
    train_loader = build_loader(train_dataset, cfg, context, is_train=True)
    valid_loader = build_loader(valid_dataset, cfg, context, is_train=False)
    logger.info("%d training instances (%d iterations per epoch on this process), %d validation instances",
                len(train_dataset), len(train_loader), len(valid_dataset))

    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, len(train_loader),
                                start_iteration=cfg.TRAIN.BEGIN_EPOCH * len(train_loader))
    use_fp16_scaler = context.device.type == "cuda" and cfg.TRAIN.AMP.lower() == "fp16"
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16_scaler)
    amp_note = describe_training_amp(cfg.TRAIN.AMP, context.device)
    if amp_note:
        logger.info(amp_note)

    checkpoint_file = dirs.output_dir / CHECKPOINT_NAME
    begin_epoch, best_perf = cfg.TRAIN.BEGIN_EPOCH, -math.inf
    if cfg.AUTO_RESUME and checkpoint_file.exists():
        begin_epoch, best_perf = _resume(checkpoint_file, model, optimizer, scheduler, scaler, context)
    elif cfg.AUTO_RESUME:
        logger.info("AUTO_RESUME: no %s yet, starting from scratch", checkpoint_file)

    train_model = wrap_model(train_model, context)
    # under DDP every rank validates its shard with the replica it holds (kept in sync by DDP)
    valid_model = train_model.module if context.distributed else train_model
    writer = SummaryWriter(log_dir=str(dirs.tensorboard_dir)) if context.is_main else None

    last_perf = math.nan
    epochs_run = 0
    training_seconds = 0.0
    try:
        for epoch in range(begin_epoch, cfg.TRAIN.END_EPOCH):
            epoch_start = time.time()
            if context.distributed:
                train_loader.sampler.set_epoch(epoch)
            if cfg.SEED >= 0 and hasattr(train_dataset, "set_random_seed"):
                # in-process augmentation stream as a function of (seed, rank, epoch): resumable
                train_dataset.set_random_seed((cfg.SEED, context.rank, epoch))
            epoch_losses = train_one_epoch(train_model, train_loader, criterion, optimizer, scheduler, scaler, cfg,
                                           context, epoch, writer, checkpoint_file)
            epochs_run += 1
            epoch_seconds = time.time() - epoch_start
            training_seconds += epoch_seconds
            logger.info("epoch %d done in %.1f s%s: %s", epoch, epoch_seconds,
                        _time_left(training_seconds / epochs_run, cfg.TRAIN.END_EPOCH - epoch - 1),
                        ", ".join(f"{k} {v:.4e}" for k, v in epoch_losses.items()))

            perf = None
            if (epoch + 1) % max(cfg.TRAIN.VAL_EVERY, 1) == 0 or epoch + 1 == cfg.TRAIN.END_EPOCH:
                broadcast_buffers(valid_model, context)
                try:
                    predictions = predict_dataset(valid_model, valid_loader, cfg, context,
                                                  amp=cfg.TEST.AMP, channels_last=cfg.TRAIN.CHANNELS_LAST,
                                                  desc=f"validate epoch {epoch}")
                    if context.is_main:
                        name_values, perf = evaluate_predictions(valid_dataset, predictions, dirs.output_dir, cfg)
                except BaseException:
                    if context.is_main:
                        _save_unvalidated_epoch(train_model, optimizer, scheduler, scaler, epoch, best_perf, cfg,
                                                checkpoint_file)
                    raise
                if context.is_main:
                    last_perf = float(perf)
                    logger.info("epoch %d validation: %s", epoch,
                                ", ".join(f"{k} {float(v):.4f}" for k, v in name_values.items()))
                    _write_validation(writer, name_values, epoch)
            is_best = perf is not None and perf > best_perf
            if is_best:
                best_perf = float(perf)
            rng_states = all_gather_objects(capture_rng_state(), context)
            if context.is_main:
                plain_model = unwrap_model(train_model)
                atomic_save(training_state(plain_model, optimizer, scheduler, scaler, epoch + 1, best_perf,
                                           rng_states, cfg), checkpoint_file)
                logger.info("saved %s after epoch %d", checkpoint_file, epoch)
                if is_best:
                    atomic_save(plain_model.state_dict(), dirs.output_dir / BEST_NAME)
                    logger.info("new best %.4f: saved %s", best_perf, dirs.output_dir / BEST_NAME)
            barrier(context)
    finally:
        if writer is not None:
            writer.close()

    if context.is_main:
        final_file = dirs.output_dir / FINAL_NAME
        atomic_save(unwrap_model(train_model).state_dict(), final_file)
        logger.info("saved final model state %s", final_file)
    barrier(context)
    return TrainingSummary(dirs.output_dir, dirs.tensorboard_dir, best_perf, last_perf, epochs_run)
