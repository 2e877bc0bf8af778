"""Speed benchmark of a configuration: training, inference, data pipeline, evaluation, memory.

    python tools/benchmark.py --cfg experiments/ap10k/kitpose/kitpose_w32_256x256.yaml --batch 4
        [--device cpu|cuda] [--iters N] [--threads N] [--amp bf16|fp16|none] [--compile]
        [--json PATH] [KEY VALUE ...]

Every speed-up is a ratio against the plain eager float32 path of the same model, measured
in the same run with the two paths interleaved round by round (so machine load hits both
alike); a ratio is the median over rounds of (eager time / fast time) of that round.

- training: forward + both losses (+ CutMix when DATASET.CUTMIX) + backward + Adam step;
  eager = float32, contiguous; fast = channels_last, plus autocast (--amp, CUDA only, as in
  tools/train.py) and torch.compile (--compile).
- inference: final heatmaps without and with the flip test; eager = the model as built,
  torch.no_grad, flip test as a second forward; fast = kitpose.engine.fastpath
  (TEST.FUSE_BN, TEST.CPU_KERNELS, TEST.CHANNELS_LAST, TEST.COMPILE / --compile,
  inference_mode, both flip halves in one batch, TEST.AMP / --amp: bf16 or fp16 on CUDA
  (default bf16 there), bf16 on the CPU (not the default: it changes the numbers).
  The largest heatmap difference between the two and whether the k-medoids parts agree
  are reported with the speeds.
- KIT head and k-medoids share of the forward time (timed inside the inference calls),
  next to the head's share of the multiply-adds and the rates (GMAC/s) the head and the
  rest of the model reach; on CPU also the rate of one large oneDNN float32 GEMM at the
  same thread count, the practical ceiling of the head's linear layers.
- data pipeline: training samples/s of one worker (dataset[i] + collation in this
  process, and a DataLoader with one worker process), against the rate training consumes.
  Real files are used when the configuration's training annotation file and image folder
  exist; otherwise a small synthetic set at --image-size is written to a temporary folder.
- evaluation: seconds of evaluate_topdown (rescoring, OKS-NMS, results file, metric)
  against the number of instances, with a least-squares line through them.
- peak memory of each part (CPU: peak resident set size, reset per part through
  /proc/self/clear_refs where Linux allows it, else the process peak; CUDA:
  torch.cuda.max_memory_allocated), and model FLOPs utilisation where the peak FLOP/s of
  the device is known (CUDA table below, or --peak-tflops). Each path is credited with the
  multiply-adds it performs (the fast path skips the part maps nothing reads).

The model has random weights (MODEL.INIT_WEIGHTS is switched off, no file is read) and
random BatchNorm statistics, so that folding BatchNorm is exercised as with a trained model.
"""
import argparse
import copy
import ctypes
import ctypes.util
import json
import logging
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, default_collate

from kitpose.config import ConfigError, load_config
from kitpose.datasets import build_dataset, dataset_metric, dataset_paths, load_metainfo
from kitpose.datasets.cutmix import cutmix_batch
from kitpose.engine.fusion import FusedLinear
from kitpose.engine.fastpath import eager_heatmaps, inference_heatmaps, prepare_for_inference, prepare_for_training
from kitpose.engine.inference import autocast_context
from kitpose.engine.optim import build_optimizer
from kitpose.engine.seeding import configure_cudnn
from kitpose.evaluation import evaluate_topdown
from kitpose.losses import build_criterion
from kitpose.models import build_model, kmedoids_cosine, set_part_maps
from kitpose.models.complexity import count_macs

logger = logging.getLogger("benchmark")

# dense peak TFLOP/s (bf16/fp16 tensor cores, fp32 without TF32) of common CUDA devices; the
# first name fragment found in torch.cuda.get_device_name() wins
CUDA_PEAK_TFLOPS = (
    ("H100 PCIe", {"half": 756.0, "fp32": 51.2}),
    ("H100", {"half": 989.4, "fp32": 66.9}),
    ("H200", {"half": 989.4, "fp32": 66.9}),
    ("A100", {"half": 312.0, "fp32": 19.5}),
    ("L40S", {"half": 362.1, "fp32": 91.6}),
    ("L4", {"half": 121.0, "fp32": 30.3}),
    ("A10", {"half": 125.0, "fp32": 31.2}),
)
CPU_TARGETS = {  # issue 5, CPU batch 4 on the published AP-10K W32 256x256 configuration
    "inference_fast_over_eager": 1.2,
    "training_fast_over_eager": 1.0,
    "head_and_kmedoids_share_max": 0.05,
    "data_over_training_per_worker": 2.0,
}
CUDA_TARGETS = {"training_fast_over_eager": 2.5}
JPEG_QUALITY = 90


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="experiment configuration YAML")
    parser.add_argument("--batch", type=int, default=4, help="batch size of training and inference (default 4)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--iters", type=int, default=5, help="timed rounds per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1; more with --compile)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--amp", default="", choices=("", "none", "bf16", "fp16"),
                        help="fast-path autocast on CUDA (default bf16 on CUDA; ignored on CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast paths")
    parser.add_argument("--data-samples", type=int, default=64, help="samples timed in the data pipeline")
    parser.add_argument("--image-size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"),
                        help="size of the generated images when the dataset is absent (default 640 480)")
    parser.add_argument("--synthetic-data", action="store_true", help="generate images even if the dataset exists")
    parser.add_argument("--eval-sizes", default="100,200,400,800", help="instance counts of the evaluation timing")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="device peak TFLOP/s for the MFU figures (default: CUDA table; none on CPU)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: train,infer,data,eval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="log the library's INFO messages")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------- timing and memory
def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_rounds(variants, rounds, warmup, device):
    """Run every variant once per round, interleaved; returns {name: {'wall': [s], 'cpu': [s]}}.

    'cpu' is this process's CPU time (all threads): on a loaded machine it moves less
    than wall time. CUDA work is synchronised before each reading.
    """
    for _ in range(warmup):
        for run in variants.values():
            run()
    times = {name: {"wall": [], "cpu": []} for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            synchronize(device)
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    return times


def summarize(samples, batch):
    """Median seconds, images/s at the median, and the spread (max - min) / median."""
    wall = samples["wall"]
    median = statistics.median(wall)
    return {"seconds_median": median, "seconds_min": min(wall), "seconds_max": max(wall),
            "images_per_s": batch / median, "spread": (max(wall) - min(wall)) / median,
            "cpu_seconds_median": statistics.median(samples["cpu"]),
            "images_per_cpu_s": batch / statistics.median(samples["cpu"])}


def paired_ratio(slow, fast):
    """Median over rounds of slow/fast (wall), its range, and the same from CPU time."""
    wall = [s / f for s, f in zip(slow["wall"], fast["wall"])]
    cpu = [s / f for s, f in zip(slow["cpu"], fast["cpu"])]
    return {"ratio": statistics.median(wall), "ratio_min": min(wall), "ratio_max": max(wall),
            "ratio_cpu_time": statistics.median(cpu)}


def _release_free_heap():
    """Return freed heap pages to the OS (glibc malloc_trim), so that the resident set size
    measures what the next step allocates rather than what earlier steps left cached."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _proc_status_mib(field):
    """A memory field of /proc/self/status (Linux) in MiB, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of one part of the benchmark, in MiB."""

    def __init__(self, device):
        self.device = device
        self.resettable = False

    def reset(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:  # "5" resets the peak resident set size (VmHWM) of this process (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.resettable = True
        except OSError:
            self.resettable = False

    def current_mib(self):
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device) / 2 ** 20
        return _proc_status_mib("VmRSS:") or 0.0

    def step_increase_mib(self, run):
        """Peak memory added by one call of `run` over what was held before it (activations,
        gradients, temporaries): the part that batch size, channels_last and autocast change."""
        synchronize(self.device)
        if self.device.type == "cpu":
            _release_free_heap()
        before = self.current_mib()
        self.reset()
        run()
        synchronize(self.device)
        return max(self.peak_mib() - before, 0.0)

    def peak_mib(self):
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        peak = _proc_status_mib("VmHWM:")
        return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB

    def describe(self):
        if self.device.type == "cuda":
            return "torch.cuda.max_memory_allocated"
        return "peak RSS of this part (VmHWM reset)" if self.resettable else "peak RSS of the process so far"


# ---------------------------------------------------------------------------- model set-up
def randomize_batchnorm(model, generator):
    """Random running statistics and affine parameters: a fresh model's (0, 1, 1, 0) would make
    BatchNorm folding trivially exact."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) * 0.2 - 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) * 0.2 - 0.1)


def random_batch(cfg, batch, device, generator):
    image_w, image_h = cfg.MODEL.IMAGE_SIZE
    heatmap_w, heatmap_h = cfg.MODEL.HEATMAP_SIZE
    images = torch.randn(batch, 3, image_h, image_w, generator=generator).to(device)
    # Gaussian-like peaks so that CutMix finds joints and the losses see realistic targets
    ys = torch.arange(heatmap_h, dtype=torch.float32)[:, None]
    xs = torch.arange(heatmap_w, dtype=torch.float32)[None, :]
    centres = torch.rand(batch, cfg.MODEL.NUM_JOINTS, 2, generator=generator)
    cx = centres[..., 0, None, None] * (heatmap_w - 1)
    cy = centres[..., 1, None, None] * (heatmap_h - 1)
    sigma = float(cfg.MODEL.SIGMA)
    targets = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2)).to(device)
    weights = torch.ones(batch, cfg.MODEL.NUM_JOINTS, 1, device=device)
    return images, targets, weights


class TrainStep:
    """One optimisation step as the trainer runs it (CutMix, autocast, losses, backward, Adam)."""

    def __init__(self, model, cfg, device, amp, channels_last, batch, seed):
        self.model, self.cfg, self.device = model, cfg, device
        self.amp, self.channels_last = amp, channels_last
        self.criterion = build_criterion(cfg).to(device)
        self.optimizer = build_optimizer(model, cfg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and amp == "fp16")
        self.batch = batch
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self):
        images, targets, weights = self.batch
        mix = None
        if self.cfg.DATASET.CUTMIX:
            images, targets, mix = cutmix_batch(images, targets, weights, generator=self.generator)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast_context(self.amp, self.device, "--amp"):
            outputs = self.model(images)
        outputs = outputs._replace(**{name: value.float() for name, value in outputs._asdict().items()
                                      if value is not None})
        loss, _ = self.criterion(outputs, targets, weights, mix=mix)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()


# ---------------------------------------------------------------------------- parts
def bench_training(cfg, base_model, args, device, amp, memory):
    generator = torch.Generator().manual_seed(args.seed)
    batch = random_batch(cfg, args.batch, device, generator)
    results = {}

    eager_model = copy.deepcopy(base_model).to(device).train()
    fast_cfg = cfg.clone()
    fast_cfg.defrost()
    fast_cfg.TRAIN.CHANNELS_LAST = True
    fast_cfg.TRAIN.COMPILE = bool(args.compile)
    fast_model = prepare_for_training(copy.deepcopy(base_model), fast_cfg, device)
    if args.compile and device.type == "cpu":
        fast_model = torch.compile(fast_model)
    amp = amp if device.type == "cuda" else "none"  # training autocast is CUDA only (as in tools/train.py)
    steps = {"eager_fp32": TrainStep(eager_model, cfg, device, "none", False, batch, args.seed),
             "fast": TrainStep(fast_model, cfg, device, amp, True, batch, args.seed)}
    first_losses = {name: float(step()) for name, step in steps.items()}
    memory.reset()
    times = measure_rounds(steps, args.iters, args.warmup, device)
    results["peak_memory_mib"] = memory.peak_mib()
    results["eager_fp32"] = summarize(times["eager_fp32"], args.batch)
    results["fast"] = summarize(times["fast"], args.batch)
    results["fast_over_eager"] = paired_ratio(times["eager_fp32"], times["fast"])
    results["first_step_loss"] = first_losses
    results["step_peak_increase_mib"] = {name: memory.step_increase_mib(step) for name, step in steps.items()}
    results["fast_settings"] = {"channels_last": True, "amp": amp, "compile": bool(args.compile)}
    del steps, eager_model, fast_model
    return results


def _section_timer(device, store):
    """Forward pre/post hooks adding (wall, cpu) seconds of a module's calls to `store`."""
    def before(module, inputs):
        synchronize(device)
        module._bench_start = (time.perf_counter(), time.process_time())

    def after(module, inputs, output):
        synchronize(device)
        wall, cpu = module._bench_start
        store["wall"] += time.perf_counter() - wall
        store["cpu"] += time.process_time() - cpu
        store["images"] += inputs[0].shape[0]
    return before, after


def attach_share_timers(model, device):
    """Time the whole forward, the KIT head and the k-medoids inside real calls of `model`.

    Returns (totals, detach): totals[name] = {'wall', 'cpu', 'images'} for 'forward', 'head',
    'head_linear' (the head's linear layers together) and 'kmedoids'.
    """
    totals = {name: {"wall": 0.0, "cpu": 0.0, "images": 0} for name in ("forward", "head", "head_linear", "kmedoids")}
    head = getattr(model, "channelformer", None)
    timed = [("forward", model), ("head", head)]
    if head is not None and device.type == "cpu":  # on CUDA a sync after every linear layer would distort the run
        timed += [("head_linear", module) for module in head.modules() if isinstance(module, (nn.Linear, FusedLinear))]
    handles = []
    for name, module in timed:
        if module is None:
            continue
        before, after = _section_timer(device, totals[name])
        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    if head is not None:
        cluster = head.cluster

        def timed_cluster(keypoint_maps):
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            result = cluster(keypoint_maps)
            synchronize(device)
            totals["kmedoids"]["wall"] += time.perf_counter() - wall
            totals["kmedoids"]["cpu"] += time.process_time() - cpu
            return result
        head.cluster = timed_cluster  # instance attribute: KITHead.forward calls self.cluster

    def detach():
        for handle in handles:
            handle.remove()
        if head is not None:
            del head.cluster
    return totals, detach


def shares(totals):
    forward = totals["forward"]
    if forward["wall"] <= 0:
        return None
    return {
        "kit_head": totals["head"]["wall"] / forward["wall"],
        "kmedoids": totals["kmedoids"]["wall"] / forward["wall"],
        "kit_head_cpu_time": totals["head"]["cpu"] / max(forward["cpu"], 1e-12),
        "kmedoids_cpu_time": totals["kmedoids"]["cpu"] / max(forward["cpu"], 1e-12),
        "kit_head_linear_layers": totals["head_linear"]["wall"] / forward["wall"],
        "forward_wall_s": forward["wall"], "head_wall_s": totals["head"]["wall"],
        "head_linear_wall_s": totals["head_linear"]["wall"], "images": forward["images"],
    }


def bench_inference(cfg, base_model, args, device, amp, memory, flip_pairs):
    generator = torch.Generator().manual_seed(args.seed + 1)
    image_w, image_h = cfg.MODEL.IMAGE_SIZE
    images = torch.randn(args.batch, 3, image_h, image_w, generator=generator).to(device)
    eager_model = copy.deepcopy(base_model).to(device).eval()
    fast_cfg = cfg.clone()
    fast_cfg.defrost()
    fast_cfg.TEST.COMPILE = bool(args.compile or cfg.TEST.COMPILE)
    amp = amp if device.type == "cuda" or amp == "bf16" else "none"  # the CPU autocasts to bf16 only
    fast_cfg.TEST.AMP = amp
    fast_model = prepare_for_inference(copy.deepcopy(base_model), fast_cfg, device)
    channels_last = bool(fast_cfg.TEST.CHANNELS_LAST)
    shift = cfg.TEST.SHIFT_HEATMAP

    results = {"fast_settings": {key: bool(fast_cfg.TEST[key]) for key in
                                 ("FUSE_BN", "CPU_KERNELS", "CHANNELS_LAST", "COMPILE")}}
    results["fast_settings"]["CPU_KERNELS"] &= (device.type == "cpu" and not fast_cfg.TEST.COMPILE
                                                and amp != "bf16")  # as applied
    results["fast_settings"]["amp"] = amp
    # agreement of the two paths: in float32 (the fast path's own changes), and under the autocast
    # (which changes numbers by design); a CPU bf16 fast model holds bfloat16 weights, float32 is skipped
    with torch.no_grad():
        eager_out = eager_model(images)
    fast_images = images.contiguous(memory_format=torch.channels_last) if channels_last else images
    num_parts = eager_out.parts.shape[1] if eager_out.intermediate is not None and eager_out.parts is not None else 0

    def same_parts(outputs):
        return bool(torch.equal(kmedoids_cosine(eager_out.intermediate.flatten(2), num_parts)[0],
                                kmedoids_cosine(outputs.intermediate.float().flatten(2), num_parts)[0]))

    if not (device.type == "cpu" and amp == "bf16"):
        with torch.inference_mode():
            fast_out = fast_model(fast_images)
        # the fast path skips the part maps (nothing downstream reads them)
        difference = {name: float((a.float() - b.float()).abs().max()) for name, a, b in
                      zip(eager_out._fields, eager_out, fast_out) if a is not None and b is not None}
        flip_difference = float((eager_heatmaps(eager_model, images, flip_pairs, shift)
                                 - inference_heatmaps(fast_model, images, flip_pairs, shift, channels_last)).abs().max())
        results["max_abs_difference"] = dict(difference, flip_test_heatmaps=flip_difference)
        if num_parts:
            results["kmedoids_parts_equal"] = same_parts(fast_out)
    if amp != "none":
        with torch.inference_mode(), autocast_context(amp, device, "--amp"):
            autocast_out = fast_model(fast_images)
        results["autocast_max_abs_difference"] = {
            "heatmaps": float((autocast_out.heatmaps.float() - eager_out.heatmaps).abs().max()),
            "largest_eager_heatmap_value": float(eager_out.heatmaps.abs().max())}
        if num_parts:
            results["autocast_kmedoids_parts_equal"] = same_parts(autocast_out)

    variants = {
        "eager_fp32": lambda: eager_heatmaps(eager_model, images),
        "fast": lambda: inference_heatmaps(fast_model, images, None, shift, channels_last, amp),
        "eager_fp32_flip": lambda: eager_heatmaps(eager_model, images, flip_pairs, shift),
        "fast_flip": lambda: inference_heatmaps(fast_model, images, flip_pairs, shift, channels_last, amp),
    }
    share_totals = {}
    detachers = []
    if not fast_cfg.TEST.COMPILE:
        for name, model in (("eager_fp32", eager_model), ("fast", fast_model)):
            share_totals[name], detach = attach_share_timers(model, device)
            detachers.append(detach)
    memory.reset()
    times = measure_rounds(variants, args.iters, args.warmup, device)
    results["peak_memory_mib"] = memory.peak_mib()
    for detach in detachers:
        detach()
    for name in variants:
        results[name] = summarize(times[name], args.batch)
    results["fast_over_eager"] = paired_ratio(times["eager_fp32"], times["fast"])
    results["fast_flip_over_eager_flip"] = paired_ratio(times["eager_fp32_flip"], times["fast_flip"])
    results["share_of_forward"] = {name: shares(totals) for name, totals in share_totals.items()}
    results["step_peak_increase_mib"] = {name: memory.step_increase_mib(run) for name, run in variants.items()}
    return results


def _smooth_noise_image(rng, width, height):
    """A photograph-like test image: smooth colour fields plus fine grain (JPEG sizes like real photos)."""
    coarse = rng.uniform(0, 255, size=(max(height // 32, 2), max(width // 32, 2), 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 12, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_synthetic_keypoint_set(folder, meta, num_images, image_size, seed, instances_per_image=2,
                                 write_images=True):
    """COCO keypoint file (and JPEG images) with random boxes and keypoints; returns the file path."""
    rng = np.random.default_rng(seed)
    width, height = image_size
    folder = Path(folder)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    if write_images:
        (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_index in range(num_images):
        image_id = image_index + 1
        file_name = f"{image_id:012d}.jpg"
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        if write_images:
            cv2.imwrite(str(folder / "images" / file_name), _smooth_noise_image(rng, width, height),
                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        for _ in range(instances_per_image):
            box_w, box_h = rng.uniform(0.25, 0.6) * width, rng.uniform(0.25, 0.6) * height
            x0, y0 = rng.uniform(0, width - box_w), rng.uniform(0, height - box_h)
            xs = rng.uniform(x0, x0 + box_w, meta.num_keypoints)
            ys = rng.uniform(y0, y0 + box_h, meta.num_keypoints)
            keypoints = np.stack([xs, ys, np.full(meta.num_keypoints, 2.0)], axis=1).round(2)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": [round(x0, 2), round(y0, 2), round(box_w, 2), round(box_h, 2)],
                                "area": round(box_w * box_h, 2), "iscrowd": 0,
                                "num_keypoints": meta.num_keypoints, "keypoints": keypoints.ravel().tolist()})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "animal", "supercategory": "animal", "keypoints": meta.keypoints,
                            "skeleton": [[a + 1, b + 1] for a, b in meta.skeleton]}]}
    ann_file = folder / "annotations" / "benchmark.json"
    ann_file.write_text(json.dumps(coco))
    return ann_file


def training_dataset(cfg, args, workdir, meta):
    """(dataset, description): the configured training set if present, else a generated one."""
    ann_file, image_dir, _, _ = dataset_paths(cfg, is_train=True)
    if not args.synthetic_data and os.path.isfile(ann_file) and os.path.isdir(image_dir):
        return build_dataset(cfg, is_train=True), f"configured data {ann_file}"
    num_images = max(args.data_samples // 2, 4)
    write_synthetic_keypoint_set(workdir, meta, num_images, args.image_size, args.seed)
    data_cfg = cfg.clone()
    data_cfg.defrost()
    data_cfg.DATA_DIR = ""
    data_cfg.DATASET.ROOT = str(workdir)
    data_cfg.DATASET.TRAIN_ANN = "annotations/benchmark.json"
    data_cfg.DATASET.IMAGE_DIR = "images"
    return (build_dataset(data_cfg, is_train=True),
            f"generated: {num_images} JPEG images {args.image_size[0]}x{args.image_size[1]}, 2 instances each")


def bench_data(cfg, args, device, workdir, meta, memory):
    dataset, source = training_dataset(cfg, args, workdir, meta)
    dataset.set_random_seed(args.seed)
    count = min(args.data_samples, len(dataset))
    batch = max(1, min(args.batch, count))
    memory.reset()
    dataset[0]
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    for first in range(0, count - count % batch, batch):
        default_collate([dataset[i] for i in range(first, first + batch)])
    timed = count - count % batch
    wall = time.perf_counter() - start_wall
    cpu = time.process_time() - start_cpu
    results = {"source": source, "samples": timed,
               "in_process_samples_per_s": timed / wall, "in_process_samples_per_cpu_s": timed / max(cpu, 1e-12)}
    # one worker process, as the trainer's DataLoader runs it (startup excluded: timed from the first batch)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=1,
                        pin_memory=bool(cfg.PIN_MEMORY and device.type == "cuda"), drop_last=True)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    loaded = sum(images.shape[0] for images, *_ in iterator)
    wall = time.perf_counter() - start
    results["one_worker_samples_per_s"] = loaded / wall if loaded else None
    results["peak_memory_mib"] = memory.peak_mib()
    return results


def bench_evaluation(cfg, args, workdir, meta, memory):
    """evaluate_topdown seconds per instance count, with noisy copies of the GT as predictions."""
    metric = dataset_metric(cfg, meta)
    sizes = [int(size) for size in args.eval_sizes.split(",") if size.strip()]
    rows = []
    memory.reset()
    for size in sizes:
        folder = Path(workdir) / f"eval_{size}"
        ann_file = write_synthetic_keypoint_set(folder, meta, max(size // 2, 1), (640, 480), args.seed + size,
                                                instances_per_image=2 if size > 1 else 1, write_images=False)
        coco = json.loads(ann_file.read_text())
        rng = np.random.default_rng(args.seed)
        annotations = coco["annotations"]
        keypoints = np.array([ann["keypoints"] for ann in annotations], dtype=np.float64)
        keypoints = keypoints.reshape(len(annotations), -1, 3)
        preds = keypoints.copy()
        preds[:, :, :2] += rng.normal(0, 4.0, size=preds[:, :, :2].shape)
        preds[:, :, 2] = rng.uniform(0.1, 1.0, size=preds.shape[:2])
        bbox = np.array([ann["bbox"] for ann in annotations], dtype=np.float64)
        centers = bbox[:, :2] + bbox[:, 2:] / 2
        scales = bbox[:, 2:] * 1.25 / 200.0
        boxes = np.column_stack([centers, scales, np.prod(scales * 200.0, axis=1), np.ones(len(bbox))])
        image_ids = np.array([ann["image_id"] for ann in annotations])
        ann_ids = np.array([ann["id"] for ann in annotations])
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            _, primary = evaluate_topdown(meta, str(ann_file), preds, boxes, image_ids, ann_ids, str(folder),
                                          cfg.TEST, metric=metric)
            seconds.append(time.perf_counter() - start)
        rows.append({"instances": len(annotations), "seconds": min(seconds), "primary_metric": float(primary)})
    counts = np.array([row["instances"] for row in rows], dtype=np.float64)
    seconds = np.array([row["seconds"] for row in rows])
    results = {"metric": metric, "rows": rows, "peak_memory_mib": memory.peak_mib()}
    if len(rows) >= 2:
        slope, intercept = np.polyfit(counts, seconds, 1)
        fitted = slope * counts + intercept
        total = ((seconds - seconds.mean()) ** 2).sum()
        results["linear_fit"] = {"seconds_per_1000_instances": float(slope * 1000), "intercept_s": float(intercept),
                                 "r2": float(1 - ((seconds - fitted) ** 2).sum() / total) if total > 0 else 1.0}
    return results


# ---------------------------------------------------------------------------- report
def peak_tflops(args, device):
    if args.peak_tflops > 0:
        return {"half": args.peak_tflops, "fp32": args.peak_tflops}, "--peak-tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for fragment, peaks in CUDA_PEAK_TFLOPS:
            if fragment in name:
                return peaks, f"table entry '{fragment}'"
    return None, "unknown (pass --peak-tflops)"


def model_macs(base_model, cfg, device):
    """count_macs of the model as built (eager: with part maps) and as the fast paths run it (without)."""
    image_w, image_h = cfg.MODEL.IMAGE_SIZE
    eager = count_macs(copy.deepcopy(base_model).to(device), (image_h, image_w), device=device)
    fast = count_macs(set_part_maps(copy.deepcopy(base_model).to(device), False), (image_h, image_w), device=device)
    return {"eager_fp32": eager, "fast": fast}


def cpu_gemm_gmacs(repeats=5):
    """Rate of one 1024x2048 @ 2048x2048 float32 GEMM through oneDNN with a packed weight at the
    current thread count: the practical ceiling of the KIT head's linear layers on this CPU."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return None
    generator = torch.Generator().manual_seed(0)
    rows, inner, cols = 1024, 2048, 2048
    x = torch.randn(rows, inner, generator=generator)
    weight = torch.randn(cols, inner, generator=generator)
    packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
    bias = torch.zeros(cols)
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
            times.append(time.perf_counter() - start)
    return rows * inner * cols / min(times[1:]) / 1e9


def head_rates(results, macs):
    """Per inference variant: the KIT head's share of the multiply-adds and the GMAC/s that the
    head, its linear layers and the rest of the forward reach."""
    shares_by_variant = results.get("infer", {}).get("share_of_forward", {})
    report = {}
    for name, share in shares_by_variant.items():
        if not share or name not in macs or "channelformer" not in macs[name]["per_child"]:
            continue
        head_macs = macs[name]["per_child"]["channelformer"]
        rest_macs = macs[name]["total"] - head_macs
        linear_macs = macs[name]["per_child_type"]["channelformer"].get("linear", 0)
        rest_seconds = share["forward_wall_s"] - share["head_wall_s"]
        report[name] = {"head_mac_share": head_macs / macs[name]["total"],
                        "head_gmacs_per_s": head_macs * share["images"] / share["head_wall_s"] / 1e9,
                        "rest_gmacs_per_s": rest_macs * share["images"] / rest_seconds / 1e9}
        if share["head_linear_wall_s"] > 0:  # timed on the CPU only
            report[name]["head_linear_gmacs_per_s"] = linear_macs * share["images"] / share["head_linear_wall_s"] / 1e9
    return report


def flops_report(results, macs, peaks, amp, device):
    """Achieved TFLOP/s (2 FLOPs per MAC; training = 3x the forward) and MFU where the peak is known."""
    report = {"forward_gflops_per_image": 2 * macs["eager_fp32"]["total"] / 1e9,
              "fast_forward_gflops_per_image": 2 * macs["fast"]["total"] / 1e9}
    half = device.type == "cuda" and amp in ("bf16", "fp16")
    entries = (("training_eager_fp32", "train", "eager_fp32", 3, "fp32"),
               ("training_fast", "train", "fast", 3, "half" if half else "fp32"),
               ("inference_eager_fp32", "infer", "eager_fp32", 1, "fp32"),
               ("inference_fast", "infer", "fast", 1, "half" if half else "fp32"))
    for name, part, variant, factor, precision in entries:
        if part not in results:
            continue
        achieved = results[part][variant]["images_per_s"] * factor * 2 * macs[variant]["total"] / 1e12
        entry = {"tflops": achieved}
        if peaks is not None:
            entry["mfu"] = achieved / peaks[precision]
            entry["peak_tflops"] = peaks[precision]
        report[name] = entry
    return report


def target_checks(results, device):
    checks = {}
    if device.type == "cpu":
        if "infer" in results:
            value = results["infer"]["fast_over_eager"]["ratio"]
            checks["inference >= 1.2x eager fp32"] = {
                "value": value, "met": value >= CPU_TARGETS["inference_fast_over_eager"]}
            share = results["infer"]["share_of_forward"].get("eager_fp32")
            fast_share = results["infer"]["share_of_forward"].get("fast")
            for label, entry in (("eager", share), ("fast path", fast_share)):
                if entry is not None:
                    value = entry["kit_head"]  # the head's time includes the k-medoids it calls
                    checks[f"KIT head + k-medoids < 5% of the {label} forward"] = {
                        "value": value, "met": value < CPU_TARGETS["head_and_kmedoids_share_max"]}
        if "train" in results:
            value = results["train"]["fast_over_eager"]["ratio"]
            checks["training not slower than eager (ratio >= 1)"] = {
                "value": value, "met": value >= CPU_TARGETS["training_fast_over_eager"]}
    elif "train" in results:
        value = results["train"]["fast_over_eager"]["ratio"]
        checks["bf16 training >= 2.5x fp32 eager"] = {
            "value": value, "met": value >= CUDA_TARGETS["training_fast_over_eager"]}
    if "data" in results and "train" in results:
        consumption = results["train"]["fast"]["images_per_s"]
        for key, label in (("in_process_samples_per_s", "in process"),
                           ("one_worker_samples_per_s", "1 worker process")):
            rate = results["data"].get(key)
            if rate:
                value = rate / consumption
                checks[f"data pipeline ({label}) >= 2x training consumption"] = {
                    "value": value, "met": value >= CPU_TARGETS["data_over_training_per_worker"]}
    return checks


def _line(label, entry):
    return (f"  {label:<22} {entry['images_per_s']:9.2f} img/s   median {entry['seconds_median'] * 1e3:9.1f} ms"
            f"   min {entry['seconds_min'] * 1e3:9.1f} ms   spread {100 * entry['spread']:5.1f}%"
            f"   ({entry['images_per_cpu_s']:.2f} img per CPU-s)")


def _ratio_line(label, ratio):
    return (f"  {label:<22} {ratio['ratio']:.3f}x (rounds {ratio['ratio_min']:.3f}..{ratio['ratio_max']:.3f}; "
            f"from CPU time {ratio['ratio_cpu_time']:.3f}x)")


def print_report(report):
    env = report["environment"]
    print(f"== KITPose benchmark: {report['config']}  batch {report['batch']}  device {report['device']}")
    print(f"   {env['device_name']}; torch {env['torch']}, {env['threads']} thread(s); "
          f"load average {env['load_before'][0]:.2f} -> {env['load_after'][0]:.2f}; "
          f"{report['iters']} timed rounds")
    results = report["results"]
    if "train" in results:
        train = results["train"]
        print(f"-- training (forward + losses + backward + Adam), fast = {train['fast_settings']}")
        print(_line("eager fp32", train["eager_fp32"]))
        print(_line("fast", train["fast"]))
        print(_ratio_line("fast / eager", train["fast_over_eager"]))
        print("  first-step loss (same weights and CutMix draws): "
              + ", ".join(f"{k} {v:.6g}" for k, v in train["first_step_loss"].items()))
        print(f"  peak memory {train['peak_memory_mib']:.0f} MiB (both models and optimisers held); added by one "
              f"step: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in train["step_peak_increase_mib"].items()))
        if report["device"] == "cpu" and train["fast_settings"]["channels_last"]:
            print("  note: on CPU, channels_last training is not bit-close to eager: PyTorch's CPU BatchNorm "
                  "computes batch statistics less precisely for channels_last (TRAIN.CHANNELS_LAST stays off)")
    if "infer" in results:
        infer = results["infer"]
        print(f"-- inference (final heatmaps), fast = {infer['fast_settings']}")
        for name in ("eager_fp32", "fast", "eager_fp32_flip", "fast_flip"):
            print(_line(name, infer[name]))
        print(_ratio_line("fast / eager", infer["fast_over_eager"]))
        print(_ratio_line("flip: fast / eager", infer["fast_flip_over_eager_flip"]))
        if "max_abs_difference" in infer:
            agreement = ", ".join(f"{k} {v:.2e}" for k, v in infer["max_abs_difference"].items())
            if "kmedoids_parts_equal" in infer:
                agreement += f"; k-medoids parts equal: {infer['kmedoids_parts_equal']}"
            print(f"  max |fast - eager| in float32: {agreement}")
        if "autocast_max_abs_difference" in infer:
            autocast = infer["autocast_max_abs_difference"]
            parts = (f"; k-medoids parts equal: {infer['autocast_kmedoids_parts_equal']}"
                     if "autocast_kmedoids_parts_equal" in infer else "")
            print(f"  max |fast - eager| heatmaps under {infer['fast_settings']['amp']} autocast: "
                  f"{autocast['heatmaps']:.2e} (largest heatmap value {autocast['largest_eager_heatmap_value']:.2f})"
                  f"{parts}")
        for name, share in infer["share_of_forward"].items():
            if share:
                print(f"  share of the {name} forward: KIT head (incl. k-medoids) {100 * share['kit_head']:.2f}%, "
                      f"k-medoids {100 * share['kmedoids']:.2f}% (CPU time: {100 * share['kit_head_cpu_time']:.2f}%, "
                      f"{100 * share['kmedoids_cpu_time']:.2f}%)")
                rates = report["kit_head_rates"].get(name)
                if rates:
                    linear = (f"; its linear layers alone {100 * share['kit_head_linear_layers']:.2f}% of the "
                              f"forward time at {rates['head_linear_gmacs_per_s']:.1f} GMAC/s"
                              if "head_linear_gmacs_per_s" in rates else "")
                    print(f"    KIT head: {100 * rates['head_mac_share']:.2f}% of the multiply-adds at "
                          f"{rates['head_gmacs_per_s']:.1f} GMAC/s{linear}; rest of the forward "
                          f"{rates['rest_gmacs_per_s']:.1f} GMAC/s")
        if report.get("cpu_gemm_gmacs_per_s"):
            print(f"  oneDNN float32 GEMM 1024x2048x2048, packed weight, {report['environment']['threads']} "
                  f"thread(s): {report['cpu_gemm_gmacs_per_s']:.1f} GMAC/s")
        print(f"  peak memory {infer['peak_memory_mib']:.0f} MiB (both models held); added by one call: "
              + ", ".join(f"{k} {v:.0f} MiB" for k, v in infer["step_peak_increase_mib"].items()))
    if "data" in results:
        data = results["data"]
        print(f"-- data pipeline, training transforms ({data['source']})")
        print(f"  one worker, in process: {data['in_process_samples_per_s']:.1f} samples/s "
              f"({data['in_process_samples_per_cpu_s']:.1f} per CPU-s); one DataLoader worker process: "
              f"{data['one_worker_samples_per_s'] or float('nan'):.1f} samples/s; peak memory "
              f"{data['peak_memory_mib']:.0f} MiB")
    if "eval" in results:
        evaluation = results["eval"]
        print(f"-- evaluation (evaluate_topdown, metric {evaluation['metric']})")
        for row in evaluation["rows"]:
            print(f"  {row['instances']:6d} instances  {row['seconds']:7.3f} s  "
                  f"({1e3 * row['seconds'] / row['instances']:.2f} ms per instance)")
        if "linear_fit" in evaluation:
            fit = evaluation["linear_fit"]
            print(f"  linear fit: {fit['seconds_per_1000_instances']:.3f} s per 1000 instances + "
                  f"{fit['intercept_s']:.3f} s, R^2 {fit['r2']:.4f}; "
                  f"peak memory {evaluation['peak_memory_mib']:.0f} MiB")
    if "flops" in report:
        flops = report["flops"]
        print(f"-- FLOPs: {flops['forward_gflops_per_image']:.2f} GFLOPs per image forward (2 x MACs), "
              f"{flops['fast_forward_gflops_per_image']:.2f} on the fast path (no part maps); "
              f"peak: {report['peak_source']}")
        for name, entry in flops.items():
            if isinstance(entry, dict):
                mfu = f", MFU {100 * entry['mfu']:.1f}% of {entry['peak_tflops']:.0f} TFLOP/s" if "mfu" in entry else ""
                print(f"  {name:<22} {entry['tflops'] * 1e3:9.1f} GFLOP/s{mfu}")
    print(f"-- memory measure: {report['memory_measure']}")
    if report["targets"]:
        print("-- targets")
        for name, check in report["targets"].items():
            print(f"  [{'met' if check['met'] else 'MISSED'}] {name}: {check['value']:.3f}")


def run(args):
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    opts = list(args.opts) + ["MODEL.INIT_WEIGHTS", "False"]
    cfg = load_config(args.cfg, opts)
    configure_cudnn(cfg)
    amp = args.amp or ("bf16" if device.type == "cuda" else "none")
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    torch.manual_seed(args.seed)
    meta_source = dataset_paths(cfg, is_train=True)[2]
    meta = load_metainfo(meta_source)
    base_model = build_model(cfg)
    randomize_batchnorm(base_model, torch.Generator().manual_seed(args.seed))
    memory = PeakMemory(device)
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="kitpose_bench_") as workdir:
        if "train" not in skip:
            results["train"] = bench_training(cfg, base_model, args, device, amp, memory)
        if "infer" not in skip:
            results["infer"] = bench_inference(cfg, base_model, args, device, amp, memory, meta.flip_pairs)
        if "data" not in skip:
            results["data"] = bench_data(cfg, args, device, workdir, meta, memory)
        if "eval" not in skip:
            results["eval"] = bench_evaluation(cfg, args, workdir, meta, memory)
    macs = model_macs(base_model, cfg, device)
    gemm_gmacs = cpu_gemm_gmacs() if device.type == "cpu" and "infer" not in skip else None
    peaks, peak_source = peak_tflops(args, device)
    report = {
        "config": args.cfg, "batch": args.batch, "device": device.type, "iters": args.iters,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv else "",
        "environment": {
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s)",
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "load_before": load_before, "load_after": os.getloadavg(),
        },
        "results": results,
        "flops": flops_report(results, macs, peaks, amp, device),
        "cpu_gemm_gmacs_per_s": gemm_gmacs,
        "kit_head_rates": head_rates(results, macs),
        "peak_source": peak_source,
        "memory_measure": memory.describe(),
    }
    report["targets"] = target_checks(results, device)
    return report


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        report = run(args)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print_report(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
