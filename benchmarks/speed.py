"""Speed benchmark of a configuration: training, inference, data pipeline, evaluation, memory.

    python tools/benchmark.py --cfg experiments/ap10k/kitpose/kitpose_w32_256x256.yaml --batch 4
        [--device cpu|cuda] [--iters N] [--threads N] [--amp bf16|fp16|none] [--compile]
        [--json PATH] [KEY VALUE ...]

Every speed-up is a ratio against the plain path of the same model, measured in the same run
with the two paths interleaved round by round (so machine load hits both alike); a ratio is the
median over rounds of (eager time / fast time) of that round.

- training: `kitpose.engine.train_step` (forward + losses (+ CutMix when DATASET.CUTMIX) +
  backward + optimiser step); eager = float32, contiguous, the optimiser's loop over parameters;
  fast = channels_last, the fused optimiser kernel, plus autocast (--amp as TRAIN.AMP: CUDA, or
  bf16 on CPUs with native bfloat16, as in tools/train.py) and torch.compile (--compile).
  --profile N adds each path's N operators with the most self time per step (torch.profiler over
  3 steps, after the timed rounds): where the time of a step goes, per operator.
- inference: `kitpose.runtime.predict_heatmaps` without and with the flip test (both halves
  in one batch in either path); eager = the model as built; fast = prepare_for_inference
  (TEST.FUSE_BN, TEST.CPU_KERNELS, TEST.CHANNELS_LAST, TEST.COMPILE / --compile, TEST.AMP /
  --amp: bf16 or fp16 on CUDA (default bf16 there), bf16 on the CPU (not the default: it
  changes the numbers)). The largest heatmap difference between the two and whether the
  k-medoids parts agree are reported with the speeds.
- KIT head and k-medoids share of the forward time (timed inside the inference calls), next
  to the head's share of the multiply-adds and the rates (GMAC/s) the head and the rest of the
  model reach; on CPU also the rate of one large oneDNN float32 GEMM at the same thread count.
- data pipeline: training samples/s of one worker (dataset[i] + collation in this process, and
  a DataLoader with one worker process), against the rate training consumes. Real files are
  used when the configuration's training annotation file and image folder exist; otherwise
  synthetic quadrupeds (kitpose.demo.synthetic) at --image-size are generated in a temporary folder.
- evaluation: seconds of evaluate_topdown (rescoring, OKS-NMS, results file, metric) against
  the number of instances, with a least-squares line through them.
- peak memory of each part (CPU: peak resident set size, reset per part through
  /proc/self/clear_refs where Linux allows it; CUDA: torch.cuda.max_memory_allocated), and
  model FLOPs utilisation where the peak FLOP/s of the device is known.
- targets: those of `benchmarks.targets` that the run measured, met or missed.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from kitpose.config import ConfigError, load_config
from kitpose.console import USER_ERRORS, run_command
from kitpose.datasets import config_metainfo
from kitpose.engine.seeding import configure_cudnn
from kitpose.jsonio import write_json
from kitpose.models import build_model

from .measurements import (bench_data, bench_evaluation, bench_inference, bench_training, cpu_gemm_gmacs,
                           environment, flops_report, head_rates, model_macs, peak_tflops, randomize_batchnorm)
from .report import print_benchmark
from .targets import evaluate_target
from .timing import PeakMemory

__all__ = ["parse_args", "run", "main"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="experiment configuration YAML")
    parser.add_argument("--batch", type=int, default=4, help="batch size of training and inference (default 4)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--iters", type=int, default=5, help="timed rounds per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1; more with --compile)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--amp", default="", choices=("", "none", "bf16", "fp16"),
                        help="fast-path autocast (default bf16 on CUDA, none on the CPU; bf16 on the CPU needs "
                             "native bfloat16)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast paths")
    parser.add_argument("--data-samples", type=int, default=64, help="samples timed in the data pipeline")
    parser.add_argument("--image-size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"),
                        help="size of the generated pictures when the dataset is absent (default 640 480)")
    parser.add_argument("--synthetic-data", action="store_true", help="generate pictures even if the dataset exists")
    parser.add_argument("--eval-sizes", default="100,200,400,800", help="instance counts of the evaluation timing")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="device peak TFLOP/s for the MFU figures (default: CUDA table; none on CPU)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile 3 training steps of each path (torch.profiler) and print its N "
                             "operators with the most self time")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: train,infer,data,eval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="log the library's INFO messages")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser.parse_args(argv)


def run(args):
    """The benchmark report (a dict) of the parsed arguments."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.cfg, list(args.opts) + ["MODEL.INIT_WEIGHTS", "False"])
    configure_cudnn(cfg)
    amp = args.amp or ("bf16" if device.type == "cuda" else "none")
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    torch.manual_seed(args.seed)
    meta = config_metainfo(cfg)
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
            results["data"] = bench_data(cfg, args, device, workdir, memory)
        if "eval" not in skip:
            results["eval"] = bench_evaluation(cfg, args, workdir, meta, memory)
    macs = model_macs(base_model, cfg, device)
    gemm_gmacs = cpu_gemm_gmacs() if device.type == "cpu" and "infer" not in skip else None
    peaks, peak_source = peak_tflops(args, device)
    report = {
        "config": args.cfg, "batch": args.batch, "device": device.type, "iters": args.iters,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv else "",
        "environment": dict(environment(device), load_before=load_before, load_after=os.getloadavg()),
        "results": results,
        "flops": flops_report(results, macs, peaks, amp, device),
        "cpu_gemm_gmacs_per_s": gemm_gmacs,
        "kit_head_rates": head_rates(results, macs),
        "peak_source": peak_source,
        "memory_measure": memory.describe(),
    }
    report["targets"] = target_checks(results, device)
    return report


def target_checks(results, device):
    """The targets (benchmarks.targets) this run measured, each evaluated."""
    checks = {}
    if "train" in results:
        name = "training_fast_over_eager" if device.type == "cpu" else "training_bf16_channels_last"
        checks[name] = evaluate_target(name, results["train"]["fast_over_eager"]["ratio"])
    if "infer" in results and device.type == "cpu":
        infer = results["infer"]
        checks["inference_fast_over_eager"] = evaluate_target("inference_fast_over_eager",
                                                              infer["fast_over_eager"]["ratio"])
        for variant, where in (("eager_fp32", "eager"), ("fast", "fast path")):
            share = infer["share_of_forward"].get(variant)
            if share is not None:  # the head's time includes the k-medoids it calls
                checks[f"kit_head_share_{variant}"] = evaluate_target("kit_head_share", share["kit_head"], where)
    if "data" in results and "train" in results:
        consumption = results["train"]["fast"]["images_per_s"]
        for measure, where in (("in_process", "in process"), ("one_worker", "1 worker process")):
            rate = results["data"].get(f"{measure}_samples_per_s")
            if rate:
                checks[f"data_{measure}_over_training"] = evaluate_target("data_per_worker_over_training",
                                                                          rate / consumption, where)
    return checks


def main(argv=None):
    args = parse_args(argv)
    report = run_command(run, args, USER_ERRORS + (ValueError,))
    if report is None:
        return 1
    print_benchmark(report)
    if args.json:
        write_json(args.json, report, indent=2)
        print(f"wrote {args.json}")
    return 0
