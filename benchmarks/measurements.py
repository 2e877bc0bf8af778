"""Measurements of the speed benchmark (its training, inference, data-pipeline and evaluation parts)
and what the GPU check shares with it: the random model and batches, the timed train step, the
data set and loader rates, the environment record, MACs, FLOP/s and the device peaks.

Every speed-up is a ratio against the plain path of the same model, measured in the same run
with the two paths interleaved round by round: training through `kitpose.engine.train_step`
(eager: float32, contiguous; fast: channels_last, autocast, torch.compile as configured),
inference through `kitpose.runtime.predict_heatmaps` (eager: the model as built; fast:
`prepare_for_inference`). The model has random weights and random BatchNorm statistics, so that
folding BatchNorm is exercised as with a trained model.
"""
import copy
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, default_collate

from kitpose.datasets import build_dataset, dataset_paths
from kitpose.demo.synthetic import annotation_path, generate_synthetic_dataset
from kitpose.engine.optim import build_optimizer
from kitpose.engine.trainer import train_step
from kitpose.evaluation import evaluate_topdown, evaluation_settings
from kitpose.jsonio import write_json
from kitpose.losses import build_criterion
from kitpose.models import kmedoids_cosine, set_part_maps, unwrap_model
from kitpose.models.complexity import count_macs
from kitpose.runtime import (autocast_context, cpu_model, predict_heatmaps, prepare_for_inference,
                             prepare_for_training, training_amp)
from kitpose.runtime.fusion import FusedLinear

from .timing import measure_rounds, paired_ratio, profile_top_ops, summarize, synchronize

# dense peak TFLOP/s (bf16/fp16 tensor cores, fp32 without TF32) of common CUDA devices; the
# first name fragment found in torch.cuda.get_device_name() wins
CUDA_PEAK_TFLOPS = (
    ("H100 PCIe", {"half": 756.0, "fp32": 51.2}),
    ("H100", {"half": 989.4, "fp32": 66.9}),
    ("H200 NVL", {"half": 835.5, "fp32": 60.0}),
    ("H200", {"half": 989.4, "fp32": 66.9}),
    ("A100", {"half": 312.0, "fp32": 19.5}),
    ("L40S", {"half": 362.1, "fp32": 91.6}),
    ("L4", {"half": 121.0, "fp32": 30.3}),
    ("A10", {"half": 125.0, "fp32": 31.2}),
)


# ---------------------------------------------------------------------------- model and batches
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
    """Images, Gaussian-peaked targets (so that CutMix finds joints) and unit weights."""
    image_w, image_h = cfg.MODEL.IMAGE_SIZE
    heatmap_w, heatmap_h = cfg.MODEL.HEATMAP_SIZE
    images = torch.randn(batch, 3, image_h, image_w, generator=generator).to(device)
    ys = torch.arange(heatmap_h, dtype=torch.float32)[:, None]
    xs = torch.arange(heatmap_w, dtype=torch.float32)[None, :]
    centres = torch.rand(batch, cfg.MODEL.NUM_JOINTS, 2, generator=generator)
    cx = centres[..., 0, None, None] * (heatmap_w - 1)
    cy = centres[..., 1, None, None] * (heatmap_h - 1)
    sigma = float(cfg.MODEL.SIGMA)
    targets = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2)).to(device)
    weights = torch.ones(batch, cfg.MODEL.NUM_JOINTS, 1, device=device)
    return images, targets, weights


def with_settings(cfg, **settings):
    """A copy of `cfg` with dotted keys set, e.g. with_settings(cfg, **{"TRAIN.AMP": "bf16"})."""
    changed = cfg.clone()
    changed.defrost()
    for key, value in settings.items():
        node = changed
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    changed.freeze()
    return changed


class TimedTrainStep:
    """`kitpose.engine.train_step` on a fixed batch with its own criterion, optimiser and scaler."""

    def __init__(self, model, cfg, device, batch):
        self.model, self.cfg, self.device, self.batch = model, cfg, device, batch
        self.criterion = build_criterion(cfg).to(device)
        # parameter groups by name: a compiled wrapper's names carry '_orig_mod.'
        self.optimizer = build_optimizer(unwrap_model(model), cfg)
        fp16 = device.type == "cuda" and cfg.TRAIN.AMP.lower() == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)

    def __call__(self):
        return train_step(self.model, *self.batch, self.criterion, self.optimizer, self.scaler, self.cfg,
                          self.device)


# ---------------------------------------------------------------------------- training
PROFILED_STEPS = 3   # training steps under torch.profiler with --profile


def bench_training(cfg, base_model, args, device, amp, memory):
    generator = torch.Generator().manual_seed(args.seed)
    batch = random_batch(cfg, args.batch, device, generator)
    eager_cfg = with_settings(cfg, **{"TRAIN.CHANNELS_LAST": False, "TRAIN.COMPILE": False, "TRAIN.AMP": "none",
                                      "TRAIN.FUSED_OPTIMIZER": False})
    fast_cfg = with_settings(cfg, **{"TRAIN.CHANNELS_LAST": True, "TRAIN.COMPILE": bool(args.compile),
                                     "TRAIN.AMP": amp, "TRAIN.FUSED_OPTIMIZER": True})
    steps = {"eager_fp32": TimedTrainStep(prepare_for_training(copy.deepcopy(base_model), eager_cfg, device),
                                          eager_cfg, device, batch),
             "fast": TimedTrainStep(prepare_for_training(copy.deepcopy(base_model), fast_cfg, device),
                                    fast_cfg, device, batch)}
    first_losses = {}
    for name, step in steps.items():
        torch.manual_seed(args.seed)  # the same CutMix draws for both
        first_losses[name] = step().values["loss"]
    memory.reset()
    times = measure_rounds(steps, args.iters, args.warmup, device)
    results = {"peak_memory_mib": memory.peak_mib(),
               "eager_fp32": summarize(times["eager_fp32"], args.batch),
               "fast": summarize(times["fast"], args.batch),
               "fast_over_eager": paired_ratio(times["eager_fp32"], times["fast"]),
               "first_step_loss": first_losses,
               "step_peak_increase_mib": {name: memory.step_increase_mib(step) for name, step in steps.items()},
               "fast_settings": {"channels_last": True, "amp": training_amp(amp, device),
                                 "compile": bool(args.compile), "fused_optimizer": True}}
    if args.profile > 0:
        results["profile"] = {name: profile_top_ops(step, device, calls=PROFILED_STEPS, rows=args.profile)
                              for name, step in steps.items()}
    return results


# ---------------------------------------------------------------------------- inference
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
    amp = amp if device.type == "cuda" or amp == "bf16" else "none"  # the CPU autocasts to bf16 only
    fast_cfg = with_settings(cfg, **{"TEST.COMPILE": bool(args.compile or cfg.TEST.COMPILE), "TEST.AMP": amp})
    eager_model = copy.deepcopy(base_model).to(device).eval()
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

    def eager(flip):
        return predict_heatmaps(eager_model, images, flip)

    def fast(flip, run_amp=amp):
        return predict_heatmaps(fast_model, images, flip, shift, run_amp, channels_last)

    if not (device.type == "cpu" and amp == "bf16"):
        with torch.inference_mode():
            fast_out = fast_model(fast_images)
        # the fast path skips the part maps (nothing downstream reads them)
        difference = {name: float((a.float() - b.float()).abs().max()) for name, a, b in
                      zip(eager_out._fields, eager_out, fast_out) if a is not None and b is not None}
        flip_difference = float((predict_heatmaps(eager_model, images, flip_pairs, shift)
                                 - fast(flip_pairs, "none")).abs().max())
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

    variants = {"eager_fp32": lambda: eager(None), "fast": lambda: fast(None),
                "eager_fp32_flip": lambda: predict_heatmaps(eager_model, images, flip_pairs, shift),
                "fast_flip": lambda: fast(flip_pairs)}
    share_totals, detachers = {}, []
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


# ---------------------------------------------------------------------------- data and evaluation
def synthetic_training_set(cfg, workdir, num_images, image_size, seed):
    """(dataset, description): generated quadrupeds (kitpose.demo.synthetic) at `image_size`, read
    through the configuration's own training pipeline."""
    root = Path(workdir) / "synthetic"
    generate_synthetic_dataset(root, train=num_images, val=0, test=0, seed=seed, image_size=image_size)
    data_cfg = with_settings(cfg, **{"DATA_DIR": "", "DATASET.ROOT": str(root), "DATASET.DATASET": "custom",
                                     "DATASET.META": "ap10k", "DATASET.IMAGE_DIR": "data",
                                     "DATASET.TRAIN_ANN": annotation_path(str(root), "train"),
                                     "MODEL.NUM_JOINTS": 17})
    return (build_dataset(data_cfg, is_train=True),
            f"generated: {num_images} JPEG pictures {image_size[0]}x{image_size[1]} (synthetic quadrupeds)")


def training_dataset(cfg, args, workdir):
    """(dataset, description): the configured training set if present, else a generated one."""
    ann_file, image_dir, _, _ = dataset_paths(cfg, is_train=True)
    if not args.synthetic_data and Path(ann_file).is_file() and Path(image_dir).is_dir():
        return build_dataset(cfg, is_train=True), f"configured data {ann_file}"
    return synthetic_training_set(cfg, workdir, max(args.data_samples // 2, 4), tuple(args.image_size), args.seed)


def bench_data(cfg, args, device, workdir, memory):
    dataset, source = training_dataset(cfg, args, workdir)
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
    results["one_worker_samples_per_s"] = loader_samples_per_s(dataset, batch, 1, device, cfg.PIN_MEMORY)
    results["peak_memory_mib"] = memory.peak_mib()
    return results


def loader_samples_per_s(dataset, batch, workers, device, pin_memory):
    """Samples/s a shuffling DataLoader with `workers` processes delivers, timed from its first batch."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                        pin_memory=bool(pin_memory and device.type == "cuda"), drop_last=True)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    loaded = sum(images.shape[0] for images, *_ in iterator)
    wall = time.perf_counter() - start
    return loaded / wall if loaded else None


def bench_evaluation(cfg, args, workdir, meta, memory):
    """evaluate_topdown seconds per instance count, with noisy copies of the GT as predictions."""
    settings = evaluation_settings(cfg.TEST, meta)
    sizes = [int(size) for size in args.eval_sizes.split(",") if size.strip()]
    root = Path(workdir) / "evaluation"
    # ~1.5 animals per picture: enough pictures for the largest count
    generate_synthetic_dataset(root, train=0, val=max(sizes) * 2 // 3 + 1, test=0, seed=args.seed)
    coco = json.loads(Path(annotation_path(str(root), "val")).read_text())
    rows = []
    memory.reset()
    for size in sizes:
        annotations = coco["annotations"][:size]
        subset = dict(coco, annotations=annotations,
                      images=[image for image in coco["images"] if image["id"] in {a["image_id"] for a in annotations}])
        ann_file = write_json(root / f"eval_{size}.json", subset)
        rng = np.random.default_rng(args.seed)
        preds = np.array([ann["keypoints"] for ann in annotations], dtype=np.float64).reshape(len(annotations), -1, 3)
        preds[:, :, :2] += rng.normal(0, 4.0, size=preds[:, :, :2].shape)
        preds[:, :, 2] = rng.uniform(0.1, 1.0, size=preds.shape[:2])
        bbox = np.array([ann["bbox"] for ann in annotations], dtype=np.float64)
        scales = bbox[:, 2:] * 1.25 / 200.0
        boxes = np.column_stack([bbox[:, :2] + bbox[:, 2:] / 2, scales, np.prod(scales * 200.0, axis=1),
                                 np.ones(len(bbox))])
        image_ids = np.array([ann["image_id"] for ann in annotations])
        ann_ids = np.array([ann["id"] for ann in annotations])
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            _, primary = evaluate_topdown(meta, str(ann_file), preds, boxes, image_ids, ann_ids, str(root / "out"),
                                          **settings)
            seconds.append(time.perf_counter() - start)
        rows.append({"instances": len(annotations), "seconds": min(seconds), "primary_metric": float(primary)})
    counts = np.array([row["instances"] for row in rows], dtype=np.float64)
    seconds = np.array([row["seconds"] for row in rows])
    results = {"metric": settings["metric"], "rows": rows, "peak_memory_mib": memory.peak_mib()}
    if len(rows) >= 2:
        slope, intercept = np.polyfit(counts, seconds, 1)
        fitted = slope * counts + intercept
        total = ((seconds - seconds.mean()) ** 2).sum()
        results["linear_fit"] = {"seconds_per_1000_instances": float(slope * 1000), "intercept_s": float(intercept),
                                 "r2": float(1 - ((seconds - fitted) ** 2).sum() / total) if total > 0 else 1.0}
    return results


# ---------------------------------------------------------------------------- derived figures
def environment(device):
    """The machine and software a report was measured on."""
    env = {"torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "cpu": cpu_model(),
           "cxx_compiler": shutil.which("c++") or shutil.which("g++")}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        env.update(device_name=properties.name, gpu_memory_gib=properties.total_memory / 2 ** 30,
                   multiprocessors=properties.multi_processor_count, cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    else:
        env["device_name"] = f"{env['cpu']}, {os.cpu_count()} CPU(s)"
    return env


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


def achieved_tflops(images_per_s, macs_per_image, factor=1):
    """TFLOP/s at `images_per_s`: 2 FLOPs per multiply-add, `factor` forwards' worth per image
    (3 for a training step: the forward and a backward of about twice its cost)."""
    return images_per_s * factor * 2 * macs_per_image / 1e12


def bf16_gemm_tflops(device, size, repeats=10, warmup=3):
    """TFLOP/s of one size x size x size bfloat16 matrix product on `device` (median of `repeats`
    after `warmup`): the rate this device reaches in practice, a second yardstick for the model
    FLOPs utilisation beside the datasheet peak."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device, torch.bfloat16) for _ in range(2))
    times = []
    for _ in range(warmup + repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times[warmup:]) / 1e12


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
        achieved = achieved_tflops(results[part][variant]["images_per_s"], macs[variant]["total"], factor)
        entry = {"tflops": achieved}
        if peaks is not None:
            entry["mfu"] = achieved / peaks[precision]
            entry["peak_tflops"] = peaks[precision]
        report[name] = entry
    return report
