"""Fast paths (kitpose.runtime) equal the eager float32 model; tools/benchmark.py runs.

The equality tests use the reference fixture's tiny model (trained-like BatchNorm statistics,
two attention heads) and its input batch, so BatchNorm folding and the fused kernels are
exercised on realistic numbers and the k-medoids parts can be compared exactly.
"""
import copy
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from kitpose.config import get_default_config, load_config
from kitpose.datasets import load_metainfo
from kitpose.codecs import fuse_flip_heatmaps
from kitpose.runtime import autocast_context, predict_heatmaps, prepare_for_inference, prepare_for_training
from kitpose.runtime.fusion import (FusedConv2d, FusedLinear, FusedResidualBlock, fuse_batchnorm,
                                   fuse_conv_activations, onednn_fusion_available, use_onednn_kernels)
from kitpose.losses import build_criterion
from kitpose.models import build_model, kmedoids_cosine, load_checkpoint
from kitpose.models.hrnet import BasicBlock, Bottleneck

ATOL = 1e-4
FLIP_PAIRS = load_metainfo("ap10k").flip_pairs
FAST_SWITCHES = ("FUSE_BN", "CPU_KERNELS", "CHANNELS_LAST")
needs_onednn = pytest.mark.skipif(not onednn_fusion_available(), reason="torch build without oneDNN fused kernels")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@torch.no_grad()
def eager_heatmaps(model, images, flip_pairs=None, shift_heatmap=False):
    """The plain reference: a float32 model as built, the flip test as a second forward pass."""
    heatmaps = model(images).heatmaps.float()
    if flip_pairs is None:
        return heatmaps
    flipped = model(images.flip(3)).heatmaps.float()
    return fuse_flip_heatmaps(heatmaps, flipped, flip_pairs, shift_heatmap)


@pytest.fixture(scope="module")
def reference(reference_fixture, reference_model_files):
    """(cfg, eval-mode eager model with the reference weights, input batch [10,3,64,64])."""
    config_path, checkpoint_path = reference_model_files
    cfg = load_config(config_path)
    model = build_model(cfg).eval()
    load_checkpoint(model, checkpoint_path)
    return cfg, model, reference_fixture["input"].float()


def with_switches(cfg, **switches):
    cfg = cfg.clone()
    cfg.defrost()
    for key, value in switches.items():
        cfg.TEST[key] = value
    cfg.freeze()
    return cfg


def fast_outputs(model, images, channels_last):
    with torch.inference_mode():
        return model(images.contiguous(memory_format=torch.channels_last) if channels_last else images)


def assert_outputs_close(fast, eager):
    for name in ("intermediate", "parts", "heatmaps"):
        torch.testing.assert_close(getattr(fast, name), getattr(eager, name), atol=ATOL, rtol=0, msg=name)


# ------------------------------------------------------------------ equality with the eager model
@pytest.mark.parametrize("enabled", [FAST_SWITCHES, ("FUSE_BN",), ("CPU_KERNELS",), ("CHANNELS_LAST",),
                                     ("CPU_KERNELS", "CHANNELS_LAST")])
def test_fast_path_outputs_equal_eager(reference, enabled):
    cfg, eager, images = reference
    cfg = with_switches(cfg, **{key: key in enabled for key in FAST_SWITCHES})
    with torch.no_grad():
        expected = eager(images)
    fast = prepare_for_inference(copy.deepcopy(eager), cfg, part_maps=True)
    outputs = fast_outputs(fast, images, cfg.TEST.CHANNELS_LAST)
    assert_outputs_close(outputs, expected)
    # the fast path is not trivially the same computation
    if "FUSE_BN" in enabled:
        assert not any(isinstance(module, nn.BatchNorm2d) for module in fast.modules())
    if "CPU_KERNELS" in enabled and onednn_fusion_available():
        assert any(isinstance(module, FusedConv2d) for module in fast.modules())
        assert not any(isinstance(module, nn.Linear) for module in fast.modules())


def test_fast_path_default_skips_part_maps_only(reference):
    cfg, eager, images = reference
    with torch.no_grad():
        expected = eager(images)
    fast = prepare_for_inference(copy.deepcopy(eager), cfg)
    outputs = fast_outputs(fast, images, cfg.TEST.CHANNELS_LAST)
    assert outputs.parts is None and expected.parts is not None
    torch.testing.assert_close(outputs.heatmaps, expected.heatmaps, atol=ATOL, rtol=0)
    torch.testing.assert_close(outputs.intermediate, expected.intermediate, atol=ATOL, rtol=0)


@needs_onednn
def test_packed_linear_weight_follows_weight_changes():
    torch.manual_seed(0)
    linear = nn.Linear(16, 8)
    fused = FusedLinear(linear)
    tokens = torch.randn(5, 16)
    with torch.inference_mode():
        torch.testing.assert_close(fused(tokens), linear(tokens), atol=1e-6, rtol=1e-5)
        first = fused.packed_weight.packed
        assert first is not None and first.is_mkldnn                 # the cached blocked layout is used
        fused(tokens)
        assert fused.packed_weight.packed is first                   # and reused
    with torch.no_grad():
        linear.weight.mul_(2)                                        # shared parameter changed in place
    with torch.inference_mode():
        torch.testing.assert_close(fused(tokens), linear(tokens), atol=1e-6, rtol=1e-5)
    copied = copy.deepcopy(fused)                                    # oneDNN tensors cannot be copied
    assert copied.packed_weight.packed is None
    with torch.inference_mode():
        torch.testing.assert_close(copied(tokens), linear(tokens), atol=1e-6, rtol=1e-5)


def test_kmedoids_parts_unchanged(reference):
    cfg, eager, images = reference
    num_parts = cfg.MODEL.NUM_BP
    with torch.no_grad():
        expected = eager(images)
    fast = prepare_for_inference(copy.deepcopy(eager), cfg)
    outputs = fast_outputs(fast, images, cfg.TEST.CHANNELS_LAST)
    eager_assign, eager_medoids = kmedoids_cosine(expected.intermediate.flatten(2), num_parts)
    fast_assign, fast_medoids = kmedoids_cosine(outputs.intermediate.flatten(2), num_parts)
    assert torch.equal(fast_assign, eager_assign)
    assert torch.equal(fast_medoids, eager_medoids)
    # the parts the fast model used inside its forward: the same clustering of its own maps
    seen = []
    head = fast.channelformer
    original_cluster = head.cluster
    head.cluster = lambda maps: seen.append(original_cluster(maps)) or seen[-1]
    try:
        fast_outputs(fast, images, cfg.TEST.CHANNELS_LAST)
    finally:
        del head.cluster
    assert torch.equal(seen[0][0], eager_assign)
    assert eager_assign.unique().numel() == num_parts   # a real grouping, not one part


def test_flip_test_in_one_batch_equals_two_eager_passes(reference):
    cfg, eager, images = reference
    expected = eager_heatmaps(eager, images, FLIP_PAIRS, shift_heatmap=True)
    fast = prepare_for_inference(copy.deepcopy(eager), cfg)
    batch_sizes = []
    handle = fast.register_forward_pre_hook(lambda module, inputs: batch_sizes.append(inputs[0].shape[0]))
    fused = predict_heatmaps(fast, images, FLIP_PAIRS, shift_heatmap=True, channels_last=True)
    handle.remove()
    assert batch_sizes == [2 * images.shape[0]]                  # original and mirrored in ONE forward
    torch.testing.assert_close(fused, expected, atol=ATOL, rtol=0)
    # the flip test changes the heatmaps (so the comparison above tests the fusion)
    plain = predict_heatmaps(fast, images, None, channels_last=True)
    assert (plain - fused).abs().max() > 1e-3
    # the unshifted variant differs from the shifted one
    unshifted = predict_heatmaps(fast, images, FLIP_PAIRS, shift_heatmap=False, channels_last=True)
    assert (unshifted - fused).abs().max() > 1e-4


def test_cpu_bf16_inference_stores_the_weights_autocast_would_cast(reference):
    cfg, eager, images = reference
    bf16_cfg = with_switches(cfg, AMP="bf16")
    fast = prepare_for_inference(copy.deepcopy(eager), bf16_cfg)
    convs = [m for m in fast.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert not any(isinstance(m, (FusedConv2d, FusedLinear)) for m in fast.modules())  # autocast needs plain ops
    heatmaps = predict_heatmaps(fast, images, None, channels_last=True, amp="bf16")
    assert heatmaps.dtype == torch.float32
    # the same folded model with float32 weights, cast by the autocast at every call: identical
    float_weights = prepare_for_inference(copy.deepcopy(eager), with_switches(cfg, CPU_KERNELS=False))
    torch.testing.assert_close(predict_heatmaps(float_weights, images, None, channels_last=True, amp="bf16"),
                               heatmaps, atol=0, rtol=0)
    # bf16 moves the numbers (so this is not the float32 path) but keeps the heatmaps' peaks
    with torch.no_grad():
        expected = eager(images).heatmaps
    difference = (heatmaps - expected).abs().max()
    assert 1e-4 < difference < 0.05 * expected.abs().max()
    peaks = expected.flatten(2).argmax(-1)
    assert (heatmaps.flatten(2).argmax(-1) == peaks).float().mean() > 0.9
    # the predictor's plain forward runs under the autocast too
    with torch.inference_mode(), autocast_context("bf16", torch.device("cpu"), "TEST.AMP"):
        assert fast(images).heatmaps.dtype == torch.bfloat16


def test_autocast_context_per_device():
    cpu = torch.device("cpu")
    with autocast_context("bf16", cpu, "TEST.AMP"):
        assert torch.is_autocast_enabled("cpu")
    with autocast_context("fp16", cpu, "TEST.AMP"):      # fp16 autocast is CUDA only here
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="TEST.AMP"):
        autocast_context("int8", cpu, "TEST.AMP")


def test_pose_hrnet_baseline_fast_path():
    cfg = get_default_config()
    m = cfg.MODEL
    m.NAME, m.INIT_WEIGHTS, m.NUM_JOINTS = "pose_hrnet", False, 17
    m.IMAGE_SIZE, m.HEATMAP_SIZE, m.PATCH_SIZE = [64, 64], [16, 16], [16, 16]
    for n, stage in ((2, m.EXTRA.STAGE2), (3, m.EXTRA.STAGE3), (4, m.EXTRA.STAGE4)):
        stage.NUM_MODULES, stage.NUM_BLOCKS, stage.NUM_CHANNELS = 1, [1] * n, [8, 16, 32, 64][:n]
    cfg.freeze()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    images = torch.randn(3, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = model(images).heatmaps
    fast = prepare_for_inference(copy.deepcopy(model), cfg)
    torch.testing.assert_close(predict_heatmaps(fast, images, channels_last=True), expected, atol=ATOL, rtol=0)


# ------------------------------------------------------------------ the fusion rewrites
@needs_onednn
def test_fusion_rewrites_blocks_stem_and_sequences(reference):
    _, eager, _ = reference
    model = copy.deepcopy(eager)
    fuse_batchnorm(model)
    num_blocks = sum(isinstance(module, (BasicBlock, Bottleneck)) for module in eager.modules())
    fused = fuse_conv_activations(model)
    assert sum(isinstance(module, FusedResidualBlock) for module in model.modules()) == num_blocks
    assert isinstance(model.pre_feature.conv1, FusedConv2d) and model.pre_feature.conv1.relu
    assert isinstance(model.pre_feature.relu, nn.Identity)
    meta_net = model.channelformer.prompt_learner.meta_net
    assert isinstance(meta_net[0], FusedConv2d) and meta_net[0].relu and isinstance(meta_net[2], nn.Identity)
    assert fused > 2 * num_blocks
    use_onednn_kernels(model)
    ffn = model.channelformer.transformer.layers[0].ffn.net
    assert isinstance(ffn[0], FusedLinear) and ffn[0].gelu and isinstance(ffn[1], nn.Identity)
    assert isinstance(model.pre_feature.final_layer, FusedConv2d) and not model.pre_feature.final_layer.relu


def test_fusion_needs_eval_mode(reference):
    _, eager, _ = reference
    model = copy.deepcopy(eager).train()
    with pytest.raises(ValueError, match="eval mode"):
        fuse_batchnorm(model)
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_activations(model)


def test_fused_modules_fall_back_under_autograd():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, stride=2)
    linear = nn.Linear(6, 5)
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    residual = torch.randn(2, 6, 5, 5)
    out = FusedConv2d(conv, relu=True)(x, residual)
    torch.testing.assert_close(out, torch.relu(conv(x) + residual))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    tokens = torch.randn(3, 7, 6)
    with torch.no_grad():
        torch.testing.assert_close(FusedLinear(linear, gelu=True)(tokens), nn.functional.gelu(linear(tokens)),
                                   atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ training fast path
def test_training_fast_path_matches_eager_step(reference):
    cfg, eager, images = reference
    cfg = cfg.clone()
    cfg.defrost()
    cfg.TRAIN.CHANNELS_LAST = True
    cfg.freeze()
    criterion = build_criterion(cfg)
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(images.shape[0], cfg.MODEL.NUM_JOINTS, 16, 16, generator=generator)
    weight = torch.ones(images.shape[0], cfg.MODEL.NUM_JOINTS, 1)
    plain = copy.deepcopy(eager).train()
    fast = prepare_for_training(copy.deepcopy(eager), cfg)
    assert fast.training
    assert fast.pre_feature.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    losses, maps, grads = [], [], []
    for model, batch in ((plain, images), (fast, images.contiguous(memory_format=torch.channels_last))):
        outputs = model(batch)
        losses.append(criterion(outputs, target, weight)[0].detach())
        # backbone gradient through the intermediate maps only: in training mode (batch statistics)
        # a last-bit change can regroup this model's near-tied maps, which moves the head's terms
        criterion.intermediate_loss(outputs.intermediate, target, weight).backward()
        maps.append(outputs.intermediate.detach())
        grads.append(model.pre_feature.conv1.weight.grad)
    torch.testing.assert_close(losses[1], losses[0], atol=0, rtol=1e-4)
    # relative as well: on an AVX2-only CPU one of 43,520 map values (3.8) differed by 1.1e-4
    torch.testing.assert_close(maps[1], maps[0], atol=ATOL, rtol=1e-4)
    # not 1e-4: PyTorch's CPU BatchNorm computes batch statistics less precisely for channels_last
    # input (about 20x the error of the contiguous kernel, measured against float64), and the
    # backward amplifies it to ~1% in the stem of this model; hence TRAIN.CHANNELS_LAST stays off by default
    assert (grads[1] - grads[0]).abs().max() <= 5e-2 * grads[0].abs().max()
    assert grads[0].abs().max() > 0


# ------------------------------------------------------------------ benchmark
TINY_BENCH = ["--batch", "2", "--iters", "2", "--warmup", "0", "--threads", "1", "--data-samples", "8",
              "--image-size", "160", "120", "--synthetic-data", "--eval-sizes", "10,20,40"]


def test_benchmark_times_the_package_paths_and_reports_paired_ratios(repo_root, monkeypatch):
    """The benchmark times kitpose.engine.train_step and kitpose.runtime.predict_heatmaps, and its ratios
    are medians of per-round time ratios (scripted times here: eager 3x and 2x slower than fast)."""
    from benchmarks import measurements, speed
    calls = {"train_step": 0, "predict_heatmaps": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(measurements, "train_step", counting("train_step", measurements.train_step))
    monkeypatch.setattr(measurements, "predict_heatmaps", counting("predict_heatmaps", measurements.predict_heatmaps))

    def scripted_rounds(variants, rounds, warmup, device):
        for run in variants.values():          # every variant really runs once
            run()
        slow = [0.3, 0.2]
        return {name: {"wall": ([0.1, 0.1] if "fast" in name else slow), "cpu": [0.1, 0.1]} for name in variants}

    monkeypatch.setattr(measurements, "measure_rounds", scripted_rounds)
    args = speed.parse_args(["--cfg", str(repo_root / "experiments" / "synthetic" / "kitpose_tiny_cpu.yaml")]
                            + TINY_BENCH)
    report = speed.run(args)
    results = report["results"]
    assert calls["train_step"] >= 4            # first-loss step and timed run, eager and fast
    assert calls["predict_heatmaps"] >= 4      # eager / fast, with and without the flip test
    for part in ("train", "infer"):
        ratio = results[part]["fast_over_eager"]
        assert ratio["ratio"] == pytest.approx(2.5) and (ratio["ratio_min"], ratio["ratio_max"]) == \
            pytest.approx((2.0, 3.0))
    # same weights and CutMix draws: the first losses agree (channels_last moves CPU BatchNorm slightly)
    eager_loss, fast_loss = results["train"]["first_step_loss"].values()
    assert fast_loss == pytest.approx(eager_loss, rel=1e-3)
    infer = results["infer"]
    assert max(infer["max_abs_difference"].values()) < ATOL and infer["kmedoids_parts_equal"] is True
    fast_share = infer["share_of_forward"]["fast"]
    assert 0 <= fast_share["kmedoids"] < fast_share["kit_head"] < 1
    assert report["flops"]["fast_forward_gflops_per_image"] < report["flops"]["forward_gflops_per_image"]
    assert "generated" in results["data"]["source"]
    assert [row["instances"] for row in results["eval"]["rows"]] == [10, 20, 40]
    assert results["eval"]["rows"][0]["primary_metric"] > 0.1    # noisy copies of the GT score well
    checks = report["targets"]
    assert checks["inference_fast_over_eager"] == {
        "label": "inference fast path >= 1.2x eager fp32", "value": pytest.approx(2.5), "threshold": 1.2,
        "status": "met"}
    assert checks["training_fast_over_eager"]["status"] == "met"       # 2.5x against >= 1.0x
    assert {checks[f"kit_head_share_{variant}"]["label"] for variant in ("eager_fp32", "fast")} == {
        "KIT head + k-medoids < 5% of the eager forward", "KIT head + k-medoids < 5% of the fast path forward"}


def test_one_target_table_serves_both_harnesses(capsys):
    """A ratio target is met at its threshold, a share target only below it; the benchmark's and the
    GPU check's records come from the same table and print through the same list."""
    from benchmarks.report import print_targets
    from benchmarks.targets import TARGETS, evaluate_target, unmeasured_target
    assert evaluate_target("inference_fast_over_eager", 1.2)["status"] == "met"
    assert evaluate_target("inference_fast_over_eager", 1.19)["status"] == "missed"
    assert evaluate_target("kit_head_share", 0.049, "eager")["status"] == "met"
    assert evaluate_target("kit_head_share", 0.05, "eager")["status"] == "missed"
    compiled = unmeasured_target("training_compiled", "training_compiled: skipped (--skip)")
    assert compiled["threshold"] == TARGETS["training_compiled"].threshold
    print_targets({"head": evaluate_target("kit_head_share", 0.2, "fast path"), "compiled": compiled})
    assert capsys.readouterr().out.splitlines() == [
        "-- targets", "  [missed] KIT head + k-medoids < 5% of the fast path forward: 0.200",
        "  [not measured] bf16 + channels_last + compile training >= 3.0x fp32 eager: training_compiled: skipped "
        "(--skip)"]


def test_benchmark_tool_prints_the_report(repo_root, tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(repo_root / "tools" / "benchmark.py"),
               "--cfg", str(repo_root / "experiments" / "synthetic" / "kitpose_tiny_cpu.yaml"), *TINY_BENCH,
               "--skip", "data,eval", "--profile", "3", "--json", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"train", "infer"}
    for section in ("-- training", "-- inference", "speed-up", "-- targets", "-- profile of training eager_fp32:",
                    "-- profile of training fast:"):
        assert section in completed.stdout
    # one row per timed variant, the paired speed-up on the fast ones
    rows = {line.split()[0]: line for line in completed.stdout.splitlines() if line.startswith("  ")}
    ratio = report["results"]["infer"]["fast_flip_over_eager_flip"]
    assert f"{ratio['ratio']:.2f}x ({ratio['ratio_min']:.2f}-{ratio['ratio_max']:.2f})" in rows["fast_flip"]
    for profiled in report["results"]["train"]["profile"].values():
        times = [op["self_ms_per_call"] for op in profiled["rows"]]
        assert len(times) == 3 and times == sorted(times, reverse=True) and times[-1] > 0
        assert 0 < sum(op["share"] for op in profiled["rows"]) <= 1
        assert sum(times) <= profiled["total_ms_per_call"] + 1e-6
        # the step's operators: convolutions forward and backward are among them
        assert any("convolution" in op["op"] for op in profiled["rows"])
