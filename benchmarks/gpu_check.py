"""GPU check: one command that proves the CUDA paths right and measures GPU training and inference speed.

The device run (one H200; docs/gpu_check.md says what the machine needs besides this checkout):

    python tools/gpu_check.py --device cuda --json output/gpu_check.json \
        --grad-checkpoint output/gpu_check/ap10k/kitpose_part/kitpose_demo_cpu/final_state.pth

(`make gpu-check-prep` trains that partly trained model of the gradient check.)

The same code paths on the CPU, small (the tiny config, batch 4), in under a minute, so that the
script is known to work before any device time is spent:

    python tools/gpu_check.py --device cpu --quick --json output/gpu_check_cpu.json

Parts, in this order; each is recorded in the JSON with its status ('done', 'failed' (a
correctness check failed), 'error' (it raised; the traceback is kept), 'skipped' (--skip, or too
little of the time budget left) or 'stopped' (the budget ran out while it ran)) and its seconds:

1. correctness: the tiny reference model (tests/data/reference) in float32 with TF32 off equals
   the published implementation's outputs to 1e-4 and clusters identically; `kmedoids_case`
   clusters exactly (float32 in chunks of 8 and alone, float64); the gradient check: one
   `train_step` in float32 and one under bf16 autocast from the same weights, batch and CutMix
   draws, on five training batches of generated quadrupeds, for the demo config's model at
   initialisation (reported) and partly trained (--grad-checkpoint; judged): finite losses and a
   median cosine similarity >= 0.99 of all parameters' gradients (with, for scale, the lowest,
   the cosine per top-level module, that of fp32 gradients whose input images were rounded to
   bf16 once, and that of fp32 gradients of different batches);
   20 fp16 steps (--quick: 8) with the gradient scaler: skipped updates (the scale went down)
   after the first 5. Checks that cannot run on the device (fp16 on the CPU, bf16 on a CPU
   without native bfloat16) are reported as not applicable.
2. ddp: `torchrun --nproc_per_node 1` trains the tiny config on generated quadrupeds for one
   epoch of two iterations through the engine's DDP path (nccl on CUDA, gloo on the CPU; see
   tools/train.py) and saves a checkpoint.
3. training: img/s of `kitpose.engine.train_step` (forward, losses, CutMix, backward, Adam) on
   the published AP-10K W32 256x256 config, batch 64: fp32 (TF32 off), TF32 (CUDA), bf16
   autocast, bf16 + channels_last; interleaved rounds after warm-up, medians; paired ratios
   against fp32; memory one step adds; TFLOP/s and MFU (3x the counted forward multiply-adds,
   against the datasheet bf16 peak and against a measured bf16 matrix product).
4. inference: img/s of `kitpose.runtime.predict_heatmaps`, batch 256, with and without the flip
   test: fp32 eager (the model as built), fp32 fast path and bf16 fast path
   (`prepare_for_inference`); the fp32 fast path must equal eager to 1e-4 (a check), bf16's
   difference is reported.
5. data: training samples/s of a DataLoader with 4, 8 and 12 workers on generated 640x480 JPEGs
   (the config's own training pipeline), against the best training img/s measured.
6. training_compiled: bf16 + channels_last + torch.compile (TRAIN.COMPILE), interleaved with fp32
   and bf16 + channels_last, with dynamo's graph and graph-break counts. Last, as the slowest to
   start. The engine compiles on CUDA only; on the CPU the variant runs torch.compile's aot_eager
   backend (tracing and AOT autograd, no code generation) to show that the model compiles, and
   its speed is no target.

Targets (their thresholds: `benchmarks.targets`), each reported met, missed or not measured:
bf16 + channels_last training and compiled training against fp32, bf16 inference against fp32
eager, the data pipeline against the training consumption. A missed speed target gets a
torch.profiler table (top 10 operators by self CUDA time, or CPU time on the CPU) of that
variant; a missed data target a cProfile table (top 10 functions by own time) of the training
pipeline, since its work is mostly outside torch. The fastest variant of each training part is
profiled as well (on the CPU not the tracing-only compile).

Schedule estimate, at the end: the minutes --schedule-samples (the published AP-10K schedule,
250 epochs, about 2.4 million samples) would take at the fastest training variant measured
(bf16 ones unless the gradient check failed), bounded by the training step or the data
pipeline, whichever is slower, against the 30-minute goal, with the img/s the goal needs.

--budget-s (default 420 s, --quick 120 s) bounds the run: a part starts only when the time
left covers its usual length, else it is recorded as skipped, and a part still running when the
budget ends is stopped. The JSON is rewritten after every part, so a run killed from outside
keeps what it measured. Exit status 1 when a part raised or a correctness check failed; missed
targets are measurements, not failures.
"""
import argparse
import contextlib
import copy
import cProfile
import math
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch._dynamo.utils import counters as dynamo_counters
from torch.utils.data import ConcatDataset, default_collate

from kitpose.config import ConfigError, load_config
from kitpose.console import run_command
from kitpose.datasets import build_dataset, config_metainfo
from kitpose.demo.synthetic import generate_synthetic_dataset
from kitpose.engine.seeding import configure_cudnn
from kitpose.jsonio import write_json
from kitpose.models import build_model, load_checkpoint
from kitpose.runtime import predict_heatmaps, prepare_for_inference, prepare_for_training

from . import REPO_ROOT
from .report import print_gpu_check
from .measurements import (TimedTrainStep, achieved_tflops, bf16_gemm_tflops, environment, loader_samples_per_s,
                           model_macs, peak_tflops, random_batch, randomize_batchnorm, synthetic_training_set,
                           with_settings)
from .reference import compare_kmedoids, compare_model_outputs
from .targets import DATA_MAX_WORKERS, evaluate_target, unmeasured_target
from .timing import PeakMemory, measure_rounds, paired_ratio, profile_top_ops, summarize

__all__ = ["parse_args", "run", "main"]

PUBLISHED_CFG = REPO_ROOT / "experiments" / "ap10k" / "kitpose" / "kitpose_w32_256x256.yaml"
TINY_CFG = REPO_ROOT / "experiments" / "synthetic" / "kitpose_tiny_cpu.yaml"
REFERENCE_DIR = REPO_ROOT / "tests" / "data" / "reference"
REFERENCE_FILE = "kitpose_tiny_ap10k_reference.pt"
# the gradient check's model: the demo's (docs/gpu_check.md, "The gradient check", has the evidence)
GRAD_CFG = REPO_ROOT / "experiments" / "synthetic" / "kitpose_demo_cpu.yaml"
GRAD_BATCHES = 5
GRAD_IMAGE_SIZE = (640, 480)

PARTS = ("correctness", "ddp", "training", "inference", "data", "training_compiled")
# full run / --quick: sizes, and the seconds each part usually takes (it starts only when they are left)
MODES = {
    "full": {"cfg": PUBLISHED_CFG, "batch": 64, "infer_batch": 256, "check_batch": 16, "warmup": 3, "rounds": 5,
             "workers": "4,8,12", "data_images": 256, "data_samples": 3072, "gemm_size": 8192, "budget_s": 420.0,
             "fp16_steps": 20, "threads": 0,
             "part_seconds": {"correctness": 30, "ddp": 60, "training": 60, "inference": 45, "data": 45,
                              "training_compiled": 150}},
    "quick": {"cfg": TINY_CFG, "batch": 4, "infer_batch": 8, "check_batch": 4, "warmup": 1, "rounds": 3,
              "workers": "1,2", "data_images": 16, "data_samples": 64, "gemm_size": 512, "budget_s": 120.0,
              "fp16_steps": 8, "threads": 1,
              "part_seconds": {"correctness": 8, "ddp": 15, "training": 8, "inference": 4, "data": 4,
                               "training_compiled": 15}},
}
TOLERANCE_REFERENCE = 1e-4
TOLERANCE_FAST_PATH = 1e-4
# the median over the batches: a partly trained model's fp32 and bf16 gradients agree to 0.999-0.9998 in the
# median, single batches down to 0.991, on a CPU with native bfloat16, while the fp32 gradients of two batches
# agree to about 0.4 (docs/gpu_check.md, "The gradient check")
MIN_GRAD_COSINE = 0.99
# the published AP-10K schedule (250 epochs, about 2.4 million training samples), and the project's goal for it on
# one GPU: the schedule estimate at the end of the run
SCHEDULE_SAMPLES = 2_400_000
SCHEDULE_GOAL_MINUTES = 30
FP16_SETTLE = 5  # fp16 steps whose skipped updates (the scaler finding its scale) are allowed
# the targets (benchmarks.targets) this check measures, and the parts each needs
CHECKED_TARGETS = {"training_bf16_channels_last": ("training",), "training_compiled": ("training_compiled",),
                   "inference_bf16": ("inference",), "data_over_consumption": ("data", "training")}
CPU_COMPILE_BACKEND = "aot_eager"

TRAIN_VARIANTS = {  # name: (config settings, TF32)
    "fp32": ({"TRAIN.AMP": "none", "TRAIN.CHANNELS_LAST": False, "TRAIN.COMPILE": False}, False),
    "tf32": ({"TRAIN.AMP": "none", "TRAIN.CHANNELS_LAST": False, "TRAIN.COMPILE": False}, True),
    "bf16": ({"TRAIN.AMP": "bf16", "TRAIN.CHANNELS_LAST": False, "TRAIN.COMPILE": False}, False),
    "bf16_channels_last": ({"TRAIN.AMP": "bf16", "TRAIN.CHANNELS_LAST": True, "TRAIN.COMPILE": False}, False),
    "bf16_channels_last_compile": ({"TRAIN.AMP": "bf16", "TRAIN.CHANNELS_LAST": True, "TRAIN.COMPILE": True}, False),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true",
                        help="the tiny config and small sizes (the code paths in under a minute on a CPU)")
    parser.add_argument("--json", default="", help="write the report to this JSON file (rewritten after every part)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="seconds the run may take; parts that no longer fit are skipped (default 420, quick 120)")
    parser.add_argument("--skip", default="", help=f"comma list of parts to skip: {','.join(PARTS)}")
    parser.add_argument("--cfg", default=None, help="speed and check config (default: the published AP-10K W32 "
                                                    "256x256; --quick: experiments/synthetic/kitpose_tiny_cpu.yaml)")
    parser.add_argument("--batch", type=int, default=None, help="training and data batch (default 64, quick 4)")
    parser.add_argument("--infer-batch", type=int, default=None, help="inference batch (default 256, quick 8)")
    parser.add_argument("--check-batch", type=int, default=None,
                        help="batch of the gradient and fp16 checks (default 16, quick 4)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 3, quick 1)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5, quick 3)")
    parser.add_argument("--workers", default=None, help="DataLoader worker counts timed (default 4,8,12; quick 1,2)")
    parser.add_argument("--data-images", type=int, default=None,
                        help="640x480 JPEGs generated for the data part (default 256, quick 16)")
    parser.add_argument("--data-samples", type=int, default=None,
                        help="samples loaded per worker count (the pictures repeated; default 3072, quick 64)")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="bf16 peak TFLOP/s for the MFU (default: the CUDA table in benchmarks/measurements.py)")
    parser.add_argument("--reference", default=str(REFERENCE_DIR), help="folder of the reference outputs")
    parser.add_argument("--schedule-samples", type=int, default=SCHEDULE_SAMPLES,
                        help="training samples of the schedule estimated at the end (default: the published AP-10K "
                             "schedule's, 250 epochs)")
    parser.add_argument("--grad-checkpoint", default="",
                        help="a partly trained model of --grad-cfg (docs/gpu_check.md: the demo config after one "
                             "epoch); the gradient check judges it. Without it the model at initialisation is "
                             "reported, not judged")
    parser.add_argument("--grad-cfg", default=str(GRAD_CFG), help="config of the gradient check's model "
                                                                  "(default: the demo's)")
    parser.add_argument("--fp16-steps", type=int, default=None, help="steps of the fp16 check (default 20, quick 8)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; quick 1, as tiny steps on shared cores "
                             "stall with more)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="log the library's INFO messages")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    mode = MODES["quick" if args.quick else "full"]
    for key, value in mode.items():
        if key != "part_seconds" and getattr(args, key, None) is None:
            setattr(args, key, value)
    args.part_seconds = mode["part_seconds"]
    args.workers = [int(count) for count in str(args.workers).split(",") if count.strip()]
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    unknown = args.skip - set(PARTS)
    if unknown:
        parser.error(f"--skip: unknown part(s) {sorted(unknown)}; parts: {', '.join(PARTS)}")
    return args


# ---------------------------------------------------------------------------- small pieces
@contextlib.contextmanager
def tf32(enabled):
    """TF32 for CUDA matrix products and cuDNN convolutions on or off inside the block."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def under_tf32(run, enabled):
    def call():
        with tf32(enabled):
            return run()
    return call


class BudgetExceeded(BaseException):
    """The time budget ran out while a part was running (a BaseException, so that no `except Exception`
    on the way, the profiler's included, takes it for a failure of the part)."""


@contextlib.contextmanager
def deadline(seconds):
    """Raise BudgetExceeded in this (main) thread after `seconds`, unless the block has ended."""
    def stop(signum, frame):
        raise BudgetExceeded(f"the time budget ran out after {seconds:.0f} s of this part")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def first_conv_dtype(model, run):
    """(the dtype name the model's first convolution computed in during `run()`, run's result): shows
    whether an autocast was active."""
    conv = next(module for module in model.modules() if isinstance(module, nn.Conv2d))
    seen = []
    handle = conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    try:
        result = run()
    finally:
        handle.remove()
    return (str(seen[0]).removeprefix("torch.") if seen else None), result


def gradients(model):
    """{top-level child name: its parameters' gradients as one float32 vector} (parameters without one left out)."""
    groups = {}
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            groups.setdefault(name.split(".")[0], []).append(parameter.grad.detach().float().flatten())
    return {name: torch.cat(vectors) for name, vectors in groups.items()}


def cosine(a, b):
    return float(F.cosine_similarity(a.double(), b.double(), dim=0))  # float32 sums drift past 1 on 68M values


class Check:
    """The run: arguments, device, config, the shared random model, the report and the budget clock."""

    def __init__(self, args):
        self.args = args
        self.start = time.perf_counter()
        self.device = torch.device(args.device)
        self.cfg = load_config(str(args.cfg), ["MODEL.INIT_WEIGHTS", "False"])
        self.grad_cfg, self.grad_initial_model, self.grad_trained_model = gradient_check_models(args)
        configure_cudnn(self.cfg)
        torch.manual_seed(args.seed)
        self.base_model = build_model(self.cfg)
        randomize_batchnorm(self.base_model, torch.Generator().manual_seed(args.seed))
        self.memory = PeakMemory(self.device)
        self.macs = model_macs(self.base_model, self.cfg, self.device)
        self.peak, peak_source = peak_tflops(args, self.device)
        self.gemm = bf16_gemm_tflops(self.device, args.gemm_size)
        self.data_set = None  # the data part's dataset, kept for its profile
        self.report = {"tool": "gpu_check", "arguments": args.argv, "device": self.device.type,
                       "quick": bool(args.quick), "environment": environment(self.device), "settings": settings(args),
                       "flops": {"forward_gmacs_per_image": self.macs["eager_fp32"]["total"] / 1e9,
                                 "fast_forward_gmacs_per_image": self.macs["fast"]["total"] / 1e9,
                                 "bf16_peak_tflops": self.peak["half"] if self.peak else None,
                                 "peak_source": peak_source, "bf16_gemm_tflops": self.gemm,
                                 "bf16_gemm_size": args.gemm_size},
                       "parts": {}, "targets": {}, "profiles": {}}
        self.workdir = Path(tempfile.mkdtemp(prefix="kitpose_gpu_check_"))

    def utilisation(self, tflops):
        """TFLOP/s with the model FLOPs utilisation against the bf16 peak and the measured bf16 product."""
        return {"tflops": tflops, "mfu_vs_peak": tflops / self.peak["half"] if self.peak else None,
                "mfu_vs_bf16_gemm": tflops / self.gemm}

    def elapsed(self):
        return time.perf_counter() - self.start

    def progress(self, message):
        print(f"[{self.elapsed():7.1f} s] {message}", flush=True)

    def save(self):
        self.report["wall_s"] = self.elapsed()
        if self.args.json:
            write_json(self.args.json, self.report, indent=2)

    def run_part(self, name, body):
        seconds_left = self.args.budget_s - self.elapsed()
        needed = self.args.part_seconds[name]
        if name in self.args.skip:
            entry = {"status": "skipped", "reason": "--skip"}
        elif seconds_left < needed:
            entry = {"status": "skipped", "reason": f"budget: {max(seconds_left, 0):.0f} s left of --budget-s "
                                                    f"{self.args.budget_s:.0f}, the part takes about {needed} s"}
        else:
            self.progress(f"{name} ...")
            start = time.perf_counter()
            try:
                with deadline(seconds_left):
                    entry = body(self)
                entry.setdefault("status", "done")
            except BudgetExceeded as err:
                entry = {"status": "stopped", "reason": f"budget: {err}"}
            except Exception as err:  # one device run: keep the other parts' figures, report this one
                entry = {"status": "error", "error": f"{type(err).__name__}: {err}",
                         "traceback": traceback.format_exc()}
                print(entry["traceback"], file=sys.stderr, flush=True)
            entry["seconds"] = time.perf_counter() - start
        self.report["parts"][name] = entry
        self.progress(f"{name}: {entry['status']}" + (f" ({entry['reason']})" if entry.get("reason") else ""))
        self.save()

    def judge(self, target, value, profiled, make_profile, **details):
        """Evaluate `target` at `value` into the report; when it is missed, the profile that
        `make_profile()` returns goes into the report as `profiled` (a failing profiler is recorded,
        not fatal: the figures are measured already, the profile only explains them)."""
        entry = self.report["targets"][target] = evaluate_target(target, value, **details)
        if entry["status"] != "missed":
            return
        self.progress(f"profiling {profiled} (its target was missed)")
        try:
            self.report["profiles"][profiled] = make_profile()
        except Exception as err:
            self.report["profiles"][profiled] = {"error": f"{type(err).__name__}: {err}"}

    def judge_speed(self, target, value, variant, run):
        """`judge` with a torch.profiler table of the variant's `run`."""
        self.judge(target, value, variant, lambda: profile_top_ops(run, self.device))


def settings(args):
    return {"config": str(args.cfg), "batch": args.batch, "infer_batch": args.infer_batch,
            "check_batch": args.check_batch, "warmup": args.warmup, "rounds": args.rounds, "workers": args.workers,
            "data_images": args.data_images, "data_samples": args.data_samples, "fp16_steps": args.fp16_steps,
            "budget_s": args.budget_s, "threads": args.threads or "torch's choice", "seed": args.seed,
            "grad_cfg": str(args.grad_cfg), "grad_checkpoint": args.grad_checkpoint or None}


# ---------------------------------------------------------------------------- 1. correctness
def correctness(check):
    fixture = torch.load(Path(check.args.reference) / REFERENCE_FILE, weights_only=False)
    with tf32(False):
        model = compare_model_outputs(fixture, check.device)
        clusters = compare_kmedoids(fixture["kmedoids_case"], check.device)
    outputs = {name: value for name, value in model.values.items() if name != "k-medoids parts differ"}
    checks = {
        "reference_outputs": {"max_abs_difference": outputs, "tolerance": TOLERANCE_REFERENCE,
                              "passed": max(outputs.values()) <= TOLERANCE_REFERENCE},
        "reference_clusters": {"passed": model.values["k-medoids parts differ"] == 0},
        "kmedoids_case": {"cases": clusters.cases, "samples_differ": clusters.values,
                          "passed": not any(clusters.values.values())},
        "grad_cosine_fp32_vs_bf16": grad_cosine(check),
        "fp16_grad_scaler": fp16_scaler_steps(check),
    }
    failed = [name for name, entry in checks.items() if entry["passed"] is False]
    return {"status": "failed" if failed else "done", "failed": failed, "checks": checks}


def check_batch(check, offset):
    return random_batch(check.cfg, check.args.check_batch, check.device,
                        torch.Generator().manual_seed(check.args.seed + offset))


def train_steps(check, settings_, batch, base_model=None, base_cfg=None):
    """(model, TimedTrainStep) with `settings_`, from a copy of `base_model` (default: the shared random
    model) under `base_cfg` (default: the check's config). TRAIN.COMPILE on the CPU, where the engine does
    not compile: torch.compile's aot_eager backend (dynamo's tracing and AOT autograd without code
    generation, which took minutes on 2 cores), to show that the model compiles."""
    cfg = with_settings(check.cfg if base_cfg is None else base_cfg, **settings_)
    model = prepare_for_training(copy.deepcopy(check.base_model if base_model is None else base_model), cfg,
                                 check.device)
    if cfg.TRAIN.COMPILE and check.device.type != "cuda":
        model = torch.compile(model, backend=CPU_COMPILE_BACKEND)
    return model, TimedTrainStep(model, cfg, check.device, batch)


def grad_cosine(check):
    """fp32 and bf16-autocast gradients of one train_step from the same weights, batch and CutMix draws, on
    GRAD_BATCHES training batches of generated quadrupeds through the gradient config's own pipeline: for the
    model at initialisation (reported) and for the partly trained --grad-checkpoint (judged: the median
    cosine >= MIN_GRAD_COSINE; one batch near a flat spot of the loss can lie lower, a fault of the bf16 path
    lowers them all)."""
    batches = gradient_check_batches(check)
    entry = {"config": str(check.args.grad_cfg), "batch": check.args.check_batch, "batches": GRAD_BATCHES,
             "minimum": MIN_GRAD_COSINE, "initialised": gradient_agreement(check, check.grad_initial_model, batches)}
    if check.grad_trained_model is None:
        entry["passed"] = None
        entry["reason"] = ("no partly trained model given (--grad-checkpoint): the model at initialisation is "
                           "reported, not judged")
        return entry
    judged = entry["trained"] = gradient_agreement(check, check.grad_trained_model, batches)
    entry["checkpoint"] = str(check.args.grad_checkpoint)
    entry["cosine"] = judged["median_cosine"]
    if judged["compute_dtype"]["bf16"] != "bfloat16":
        entry["passed"] = None
        entry["reason"] = (f"TRAIN.AMP bf16 ran no autocast on this device (the first convolution computed in "
                           f"{judged['compute_dtype']['bf16']})")
    else:
        entry["passed"] = judged["finite"] and judged["median_cosine"] >= MIN_GRAD_COSINE
    return entry


def gradient_agreement(check, model, batches):
    """Per training batch: the fp32 and bf16 losses, the cosine of their gradients (whole and per top-level
    module) and, for scale, the cosine of the fp32 gradients whose input images were rounded to bfloat16 once;
    over the batches: the median and lowest cosine and the median cosine between the fp32 gradients of different
    batches (the minibatch noise the bf16 difference is to be compared with)."""
    runs = {"fp32": "none", "bf16": "bf16", "fp32_bf16_rounded_input": "none"}
    per_batch, fp32_gradients, dtypes, finite = [], [], {}, True
    for images, targets, weights in batches:
        losses, grads = {}, {}
        for name, amp in runs.items():
            run_images = images.bfloat16().float() if name == "fp32_bf16_rounded_input" else images
            train_model, step = train_steps(check, {"TRAIN.AMP": amp, "TRAIN.CHANNELS_LAST": False,
                                                    "TRAIN.COMPILE": False},
                                            (run_images, targets, weights), model, check.grad_cfg)
            torch.manual_seed(check.args.seed)  # the same CutMix draws
            dtypes[name], result = first_conv_dtype(train_model, step)
            losses[name] = result.values["loss"]
            grads[name] = gradients(train_model) if result.applied else None
        finite = finite and all(math.isfinite(loss) for loss in losses.values()) and all(
            groups is not None and all(bool(torch.isfinite(vector).all()) for vector in groups.values())
            for groups in grads.values())
        if not finite:
            per_batch.append({"losses": losses})
            break
        whole = {name: torch.cat(list(groups.values())) for name, groups in grads.items()}
        fp32_gradients.append(whole["fp32"])
        per_batch.append({"losses": losses, "cosine": cosine(whole["fp32"], whole["bf16"]),
                          "cosine_per_module": {module: cosine(grads["fp32"][module], grads["bf16"][module])
                                                for module in grads["fp32"]},
                          "cosine_fp32_bf16_rounded_input": cosine(whole["fp32"], whole["fp32_bf16_rounded_input"])})
    cosines = [batch["cosine"] for batch in per_batch] if finite else None
    entry = {"compute_dtype": dtypes, "finite": finite, "per_batch": per_batch,
             "median_cosine": statistics.median(cosines) if finite else None,
             "lowest_cosine": min(cosines) if finite else None}
    between = [cosine(first, second) for index, first in enumerate(fp32_gradients)
               for second in fp32_gradients[index + 1:]]
    entry["fp32_cosine_between_batches"] = statistics.median(between) if between else None
    return entry


def gradient_check_models(args):
    """(config, model at initialisation, partly trained model or None) of the gradient check. The checkpoint
    is read here, before any part runs, so that a wrong path or a checkpoint of another config ends the run
    before device time is spent."""
    cfg = load_config(str(args.grad_cfg), ["MODEL.INIT_WEIGHTS", "False"])
    torch.manual_seed(args.seed)
    initialised = build_model(cfg)
    trained = None
    if args.grad_checkpoint:
        trained = copy.deepcopy(initialised)
        load_checkpoint(trained, args.grad_checkpoint)
    return cfg, initialised, trained


def gradient_check_batches(check):
    """GRAD_BATCHES batches of --check-batch samples: generated quadrupeds read through the gradient config's
    training pipeline, augmentation seeded."""
    count = GRAD_BATCHES * check.args.check_batch
    dataset, _ = synthetic_training_set(check.grad_cfg, check.workdir / "gradient_check", count, GRAD_IMAGE_SIZE,
                                        check.args.seed)
    dataset.set_random_seed(check.args.seed)
    size = check.args.check_batch
    return [tuple(default_collate([dataset[index] for index in range(first, first + size)])[:3])
            for first in range(0, count, size)]


def fp16_scaler_steps(check):
    batch = check_batch(check, 3)
    model, step = train_steps(check, {"TRAIN.AMP": "fp16", "TRAIN.CHANNELS_LAST": False, "TRAIN.COMPILE": False},
                              batch)
    scales, skipped, losses, dtype = [], [], [], None
    torch.manual_seed(check.args.seed)
    for index in range(check.args.fp16_steps):
        before = step.scaler.get_scale()
        if index == 0:
            dtype, result = first_conv_dtype(model, step)
        else:
            result = step()
        scales.append(step.scaler.get_scale())
        skipped.append(not result.applied or scales[-1] < before)
        losses.append(result.values["loss"])
    entry = {"steps": check.args.fp16_steps, "settle_steps": FP16_SETTLE, "compute_dtype": dtype,
             "scaler_enabled": step.scaler.is_enabled(), "scales": scales,
             "skipped_in_settle_steps": sum(skipped[:FP16_SETTLE]), "skipped_after": sum(skipped[FP16_SETTLE:]),
             "losses_finite": all(math.isfinite(loss) for loss in losses), "first_loss": losses[0],
             "last_loss": losses[-1]}
    if not (entry["scaler_enabled"] and dtype == "float16"):
        entry["passed"] = None
        entry["reason"] = (f"fp16 autocast and the gradient scaler need CUDA: the steps ran in {dtype}, "
                           f"scaler {'on' if entry['scaler_enabled'] else 'off'}")
    else:
        entry["passed"] = entry["losses_finite"] and entry["skipped_after"] == 0
    return entry


# ---------------------------------------------------------------------------- 2. ddp
def ddp(check):
    root = check.workdir / "ddp"
    generate_synthetic_dataset(str(root / "data"), train=8, val=4, test=0, seed=0)
    instances = len(build_dataset(load_config(str(TINY_CFG), ["DATASET.ROOT", str(root / "data")]), is_train=True))
    batch = math.ceil(instances / 2)  # two iterations
    opts = {"DATASET.ROOT": root / "data", "OUTPUT_DIR": root / "output", "LOG_DIR": root / "log",
            "TRAIN.END_EPOCH": 1, "TRAIN.BATCH_SIZE_PER_GPU": batch, "TEST.BATCH_SIZE_PER_GPU": 8, "WORKERS": 1,
            "PRINT_FREQ": 1}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
               str(REPO_ROOT / "tools" / "train.py"), "--cfg", str(TINY_CFG)]
    command += [str(item) for pair in opts.items() for item in pair]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if check.device.type == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env,
                            timeout=max(check.args.budget_s - check.elapsed() - 1, 1))
    entry = {"command": "python -m torch.distributed.run --standalone --nproc_per_node 1 tools/train.py "
                        "--cfg experiments/synthetic/kitpose_tiny_cpu.yaml ...",
             "returncode": result.returncode, "wall_s": time.perf_counter() - start, "training_instances": instances,
             "batch": batch}
    logs = sorted((root / "output").glob("**/*_train.log"))
    log = logs[0].read_text() if logs else ""
    where = re.search(r"distributed: rank 0/1 \((\w+)\) on (.*)", log)
    iterations = re.search(r"\((\d+) iterations per epoch", log)
    entry["backend"] = where.group(1) if where else None
    entry["where"] = where.group(2) if where else None
    entry["iterations"] = int(iterations.group(1)) if iterations else None
    checkpoints = sorted((root / "output").glob("**/checkpoint.pth"))
    if checkpoints:
        state = torch.load(checkpoints[0], weights_only=True)
        entry["checkpoint"] = {"epoch": state["epoch"], "bytes": checkpoints[0].stat().st_size}
    expected = "nccl" if check.device.type == "cuda" else "gloo"
    entry["expected_backend"] = expected
    entry["passed"] = (result.returncode == 0 and entry["backend"] == expected and entry["iterations"] == 2
                       and entry.get("checkpoint", {}).get("epoch") == 1)
    if not entry["passed"]:
        entry["output_tail"] = (result.stdout + result.stderr)[-4000:]
    entry["status"] = "done" if entry["passed"] else "failed"
    return entry


# ---------------------------------------------------------------------------- 3./6. training speed
def training_variants(check, names):
    """Train steps of `names` on one fixed batch, each under its TF32 setting."""
    batch = random_batch(check.cfg, check.args.batch, check.device, torch.Generator().manual_seed(check.args.seed))
    steps, models = {}, {}
    for name in names:
        settings_, tf32_on = TRAIN_VARIANTS[name]
        models[name], step = train_steps(check, settings_, batch)
        steps[name] = under_tf32(step, tf32_on)
    return models, steps


def measure_training(check, names):
    models, steps = training_variants(check, names)
    first = {}
    for name, step in steps.items():
        torch.manual_seed(check.args.seed)  # the same CutMix draws for every variant
        if TRAIN_VARIANTS[name][0]["TRAIN.COMPILE"]:
            start = time.perf_counter()
            result = step()
            first[name] = {"loss": result.values["loss"], "first_call_s": time.perf_counter() - start}
        else:
            dtype, result = first_conv_dtype(models[name], step)
            first[name] = {"loss": result.values["loss"], "compute_dtype": dtype}
    check.memory.reset()
    times = measure_rounds(steps, check.args.rounds, check.args.warmup, check.device)
    variants = {}
    for name in names:
        summary = summarize(times[name], check.args.batch)
        # training runs without part maps: the fast path's multiply-adds
        tflops = achieved_tflops(summary["images_per_s"], check.macs["fast"]["total"], 3)
        variants[name] = dict(summary, **first[name], **check.utilisation(tflops), settings=variant_settings(name))
        if name != "fp32":
            variants[name]["over_fp32"] = paired_ratio(times["fp32"], times[name])
    peak = check.memory.peak_mib()
    for name, step in steps.items():
        variants[name]["step_peak_increase_mib"] = check.memory.step_increase_mib(step)
    return {"variants": variants, "peak_memory_mib": peak, "memory_measure": check.memory.describe()}, steps


def variant_settings(name):
    settings_, tf32_on = TRAIN_VARIANTS[name]
    return {"amp": settings_["TRAIN.AMP"], "channels_last": settings_["TRAIN.CHANNELS_LAST"],
            "compile": settings_["TRAIN.COMPILE"], "tf32": tf32_on}


def training(check):
    names = ["fp32", "bf16", "bf16_channels_last"]
    if check.device.type == "cuda":
        names.insert(1, "tf32")
    entry, steps = measure_training(check, names)
    if check.device.type != "cuda":
        entry["not_applicable"] = {"tf32": "TF32 is a CUDA tensor-core mode"}
    check.judge_speed("training_bf16_channels_last", entry["variants"]["bf16_channels_last"]["over_fp32"]["ratio"],
                      "training bf16_channels_last", steps["bf16_channels_last"])
    profile_fastest(check, entry, steps)
    return entry


def training_compiled(check):
    dynamo_counters.clear()
    entry, steps = measure_training(check, ["fp32", "bf16_channels_last", "bf16_channels_last_compile"])
    breaks = dynamo_counters["graph_break"]
    entry["dynamo"] = {"backend": "inductor" if check.device.type == "cuda" else CPU_COMPILE_BACKEND,
                       "unique_graphs": dynamo_counters["stats"]["unique_graphs"],
                       "graph_breaks": sum(breaks.values()),
                       "break_reasons": [{"reason": reason.splitlines()[0][:200], "count": count}
                                         for reason, count in breaks.most_common(5)]}
    if check.device.type != "cuda":
        entry["target_note"] = (f"the engine compiles on CUDA only (prepare_for_training, TRAIN.COMPILE); on the "
                                f"CPU the {CPU_COMPILE_BACKEND} backend shows that the model compiles, not its speed")
        return entry
    check.judge_speed("training_compiled", entry["variants"]["bf16_channels_last_compile"]["over_fp32"]["ratio"],
                      "training bf16_channels_last_compile", steps["bf16_channels_last_compile"])
    profile_fastest(check, entry, steps)
    return entry


def profile_fastest(check, entry, steps):
    """The torch.profiler table of the part's fastest variant, what bounds a long training (the schedule
    estimate names it), unless a missed target has profiled it already."""
    fastest = max(entry["variants"], key=lambda name: entry["variants"][name]["images_per_s"])
    label = f"training {fastest}"
    if label in check.report["profiles"]:
        return
    check.progress(f"profiling {label} (the fastest variant)")
    try:
        check.report["profiles"][label] = profile_top_ops(steps[fastest], check.device)
    except Exception as err:
        check.report["profiles"][label] = {"error": f"{type(err).__name__}: {err}"}


# ---------------------------------------------------------------------------- 4. inference
def inference(check):
    cfg, device = check.cfg, check.device
    image_w, image_h = cfg.MODEL.IMAGE_SIZE
    images = torch.randn(check.args.infer_batch, 3, image_h, image_w,
                         generator=torch.Generator().manual_seed(check.args.seed + 1)).to(device)
    flip_pairs = list(config_metainfo(cfg).flip_pairs)
    shift, channels_last = cfg.TEST.SHIFT_HEATMAP, bool(cfg.TEST.CHANNELS_LAST)
    eager = copy.deepcopy(check.base_model).to(device).eval()
    fast = {amp: prepare_for_inference(copy.deepcopy(check.base_model),
                                       with_settings(cfg, **{"TEST.AMP": amp, "TEST.COMPILE": False}), device)
            for amp in ("none", "bf16")}

    def predictor(model, flip, amp="none", fast_path=True):
        pairs = flip_pairs if flip else None
        if fast_path:
            return lambda: predict_heatmaps(model, images, pairs, shift, amp, channels_last)
        return lambda: predict_heatmaps(model, images, pairs, shift)

    runs = {"fp32_eager": predictor(eager, False, fast_path=False),
            "fp32_eager_flip": predictor(eager, True, fast_path=False),
            "fp32_fast": predictor(fast["none"], False), "fp32_fast_flip": predictor(fast["none"], True),
            "bf16_fast": predictor(fast["bf16"], False, "bf16"),
            "bf16_fast_flip": predictor(fast["bf16"], True, "bf16")}
    eager_heatmaps = runs["fp32_eager"]()
    fast_difference = float((runs["fp32_fast"]() - eager_heatmaps).abs().max())
    bf16_difference = float((runs["bf16_fast"]() - eager_heatmaps).abs().max())
    check.memory.reset()
    times = measure_rounds(runs, check.args.rounds, check.args.warmup, device)
    peak = check.memory.peak_mib()
    variants = {}
    for name in runs:
        summary = summarize(times[name], check.args.infer_batch)
        macs = check.macs["eager_fp32" if "eager" in name else "fast"]["total"]  # eager computes the part maps
        tflops = achieved_tflops(summary["images_per_s"], macs, 2 if name.endswith("_flip") else 1)
        variants[name] = dict(summary, **check.utilisation(tflops),
                              step_peak_increase_mib=check.memory.step_increase_mib(runs[name]))
    ratios = {"bf16_fast_over_fp32_eager": paired_ratio(times["fp32_eager"], times["bf16_fast"]),
              "bf16_fast_over_fp32_eager_flip": paired_ratio(times["fp32_eager_flip"], times["bf16_fast_flip"]),
              "bf16_fast_over_fp32_fast": paired_ratio(times["fp32_fast"], times["bf16_fast"]),
              "fp32_fast_over_fp32_eager": paired_ratio(times["fp32_eager"], times["fp32_fast"])}
    fast_path_ok = fast_difference <= TOLERANCE_FAST_PATH
    entry = {"status": "done" if fast_path_ok else "failed", "variants": variants, "ratios": ratios,
             "peak_memory_mib": peak, "memory_measure": check.memory.describe(),
             "checks": {"fp32_fast_vs_eager": {"max_abs_difference": fast_difference,
                                               "tolerance": TOLERANCE_FAST_PATH, "passed": fast_path_ok},
                        "bf16_fast_vs_fp32_eager": {"max_abs_difference": bf16_difference,
                                                    "largest_heatmap_value": float(eager_heatmaps.abs().max())}},
             "settings": {"fast_path": {"TEST.FUSE_BN": cfg.TEST.FUSE_BN, "TEST.CPU_KERNELS": cfg.TEST.CPU_KERNELS,
                                        "TEST.CHANNELS_LAST": channels_last}, "flip_pairs": len(flip_pairs)}}
    check.judge_speed("inference_bf16", ratios["bf16_fast_over_fp32_eager"]["ratio"], "inference bf16_fast",
                      runs["bf16_fast"])
    return entry


# ---------------------------------------------------------------------------- 5. data pipeline
def data(check):
    start = time.perf_counter()
    dataset, source = synthetic_training_set(check.cfg, check.workdir / "data", check.args.data_images, (640, 480),
                                             check.args.seed)
    generate_s = time.perf_counter() - start
    dataset.set_random_seed(check.args.seed)
    repeats = math.ceil(check.args.data_samples / len(dataset))
    loader_set = ConcatDataset([dataset] * repeats)
    rates = {}
    for workers in check.args.workers:
        rates[str(workers)] = loader_samples_per_s(loader_set, check.args.batch, workers, check.device,
                                                   check.cfg.PIN_MEMORY)
        check.progress(f"data: {workers} worker(s): {rates[str(workers)] or 0:.1f} samples/s")
    check.data_set = dataset
    return {"source": source, "generate_s": generate_s, "samples_per_pass": len(loader_set),
            "pictures_repeated": repeats, "batch": check.args.batch, "samples_per_s": rates,
            "pin_memory": bool(check.cfg.PIN_MEMORY and check.device.type == "cuda")}


def data_profile(check, batches=2):
    """cProfile of the training pipeline in this process: the 10 functions with the most own time."""
    dataset = check.data_set
    profiler = cProfile.Profile()
    count = min(len(dataset), batches * check.args.batch)
    profiler.enable()
    default_collate([dataset[index] for index in range(count)])
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:10]
    total = sum(entry[2] for entry in stats.stats.values()) or 1.0
    return {"sort_by": "own time (cProfile tottime)", "samples": count,
            "rows": [{"function": f"{Path(file).name}:{line}({name})", "own_ms_per_sample": own * 1e3 / count,
                      "share": own / total, "calls_per_sample": calls / count}
                     for (file, line, name), (_, calls, own, _, _) in rows]}


# ---------------------------------------------------------------------------- targets
def speed_parts(parts):
    """The training parts that measured speed: not the CPU's tracing-only compile."""
    return [part for part in ("training", "training_compiled")
            if "variants" in parts.get(part, {}) and "target_note" not in parts[part]]


def data_rates(parts):
    """{worker count: samples/s} the data part measured, up to DATA_MAX_WORKERS workers."""
    return {int(workers): rate for workers, rate in parts.get("data", {}).get("samples_per_s", {}).items()
            if rate and int(workers) <= DATA_MAX_WORKERS}


def finish_targets(check):
    """Every target in the report: measured ones are there already; the data target needs the best
    training rate of the whole run; the rest are 'not measured' with the reason."""
    parts, targets = check.report["parts"], check.report["targets"]
    training_rates = {name: variant["images_per_s"] for part in speed_parts(parts)
                      for name, variant in parts[part]["variants"].items()}
    rates = data_rates(parts)
    if training_rates and rates:
        consumption_variant = max(training_rates, key=training_rates.get)
        consumption = training_rates[consumption_variant]
        best_workers = max(rates, key=rates.get)
        enough = [workers for workers in sorted(rates) if rates[workers] >= consumption]
        check.judge("data_over_consumption", rates[best_workers] / consumption, "data pipeline",
                    lambda: data_profile(check), consumption_img_per_s=consumption,
                    consumption_variant=consumption_variant, best_workers=best_workers,
                    best_samples_per_s=rates[best_workers], fewest_workers_enough=enough[0] if enough else None)
    for name, needed in CHECKED_TARGETS.items():
        if name not in targets:
            notes = {part: parts[part].get("reason") or parts[part].get("target_note") for part in needed
                     if part in parts}
            why = "; ".join(f"{part}: {parts[part]['status']}" + (f" ({note})" if note else "")
                            for part, note in notes.items())
            targets[name] = unmeasured_target(name, why)


# ---------------------------------------------------------------------------- schedule estimate
def schedule_estimate(check):
    """How long --schedule-samples would take on this device at the fastest training variant measured (the
    training part's figure where both training parts measured it), and what bounds it: the training step or
    the data pipeline (its best rate with <= DATA_MAX_WORKERS workers). Validation and checkpoints are not
    counted. bf16 variants count unless the gradient check failed."""
    parts = check.report["parts"]
    gradient_check = parts.get("correctness", {}).get("checks", {}).get("grad_cosine_fp32_vs_bf16", {}).get("passed")
    rates = {}
    for part in speed_parts(parts):
        for name, variant in parts[part]["variants"].items():
            if gradient_check is False and TRAIN_VARIANTS[name][0]["TRAIN.AMP"] == "bf16":
                continue
            rates.setdefault(name, variant["images_per_s"])
    samples = check.args.schedule_samples
    estimate = {"samples": samples, "config": str(check.args.cfg), "goal_minutes": SCHEDULE_GOAL_MINUTES,
                "bf16_gradient_check": gradient_check}
    if not rates:
        return dict(estimate, status="not measured", reason="no training variant was measured")
    variant = max(rates, key=rates.get)
    data = data_rates(parts)
    workers = max(data, key=data.get) if data else None
    data_rate = data[workers] if data else None
    rate = min(rates[variant], data_rate) if data_rate else rates[variant]
    needed = samples / (SCHEDULE_GOAL_MINUTES * 60)
    return dict(estimate, status="done", variant=variant, training_img_per_s=rates[variant],
                data_samples_per_s=data_rate, data_workers=workers,
                bound="data pipeline" if data_rate and data_rate < rates[variant] else "training step",
                minutes=samples / rate / 60, img_per_s_for_goal=needed, speedup_for_goal=needed / rate,
                profile=f"training {variant}" if f"training {variant}" in check.report["profiles"] else None)


# ---------------------------------------------------------------------------- the run
def run(args):
    """The report (a dict) of the parsed arguments."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device cuda: no CUDA device is available (torch {torch.__version__}, "
                          f"CUDA build {torch.version.cuda or 'none'})")
    bodies = {"correctness": correctness, "ddp": ddp, "training": training, "inference": inference, "data": data,
              "training_compiled": training_compiled}
    previous_threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        with tf32(False):  # fp32 means fp32: the TF32 variant turns it on for its own calls
            check = Check(args)
            try:
                check.progress(f"gpu check on {check.report['environment']['device_name']}, config {args.cfg}, "
                               f"budget {args.budget_s:.0f} s")
                for name in PARTS:
                    check.run_part(name, bodies[name])
                finish_targets(check)
                check.report["schedule"] = schedule_estimate(check)
            finally:
                shutil.rmtree(check.workdir, ignore_errors=True)
    finally:
        torch.set_num_threads(previous_threads)
    check.save()
    return check.report


def exit_status(report):
    return 1 if any(part["status"] in ("error", "failed") for part in report["parts"].values()) else 0


def main(argv=None):
    """tools/gpu_check.py."""
    args = parse_args(argv)
    report = run_command(run, args)
    if report is None:
        return 1
    print_gpu_check(report)
    if args.json:
        print(f"wrote {args.json}")
    return exit_status(report)
