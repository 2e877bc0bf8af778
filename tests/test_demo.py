"""`make demo`: its experiment YAML loads and builds a CPU-sized KITPose, the MODEL.EXTRA.STAGE1
switch it relies on, and the report tools/demo_summary.py prints at the end."""
import json
import re
import subprocess
import sys
import time

import pytest
import torch

from kitpose.config import load_config
from kitpose.models import build_model
from kitpose.models.complexity import count_macs
from kitpose.models.hrnet import BasicBlock, Bottleneck

DEMO_CONFIG = "experiments/synthetic/kitpose_demo_cpu.yaml"


@pytest.fixture(scope="module")
def demo_cfg(repo_root):
    return load_config(str(repo_root / DEMO_CONFIG))


def test_demo_config_builds_a_small_kitpose(demo_cfg):
    model = build_model(demo_cfg, is_train=True).eval()
    layer1 = model.pre_feature.layer1
    stage1 = demo_cfg.MODEL.EXTRA.STAGE1
    assert len(layer1) == stage1.NUM_BLOCKS[0]
    assert layer1[-1].conv3.out_channels == stage1.NUM_CHANNELS[0] * Bottleneck.expansion
    width, height = demo_cfg.MODEL.IMAGE_SIZE
    with torch.no_grad():
        out = model(torch.randn(2, 3, height, width))
    heatmap_w, heatmap_h = demo_cfg.MODEL.HEATMAP_SIZE
    assert out.heatmaps.shape == out.intermediate.shape == (2, demo_cfg.MODEL.NUM_JOINTS, heatmap_h, heatmap_w)
    assert out.parts.shape == (2, demo_cfg.MODEL.NUM_BP, heatmap_h, heatmap_w)
    # the 10-minute CPU budget: a forward pass must stay far below the published W32 (~10 GMACs)
    assert count_macs(model, (height, width))["total"] < 0.3e9


@pytest.mark.parametrize("key,value,message", [
    ("BLOCK", "WIDE", "STAGE1.BLOCK"),
    ("NUM_BRANCHES", 2, "NUM_BRANCHES must be 1"),
    ("NUM_CHANNELS", [16, 32], "one-element lists"),
])
def test_stage1_bad_values_are_named(demo_cfg, key, value, message):
    cfg = demo_cfg.clone()
    cfg.defrost()
    cfg.MODEL.EXTRA.STAGE1[key] = value
    with pytest.raises(ValueError, match=message):
        build_model(cfg)


def test_stage1_basic_block(demo_cfg):
    cfg = demo_cfg.clone()
    cfg.defrost()
    cfg.MODEL.EXTRA.STAGE1.BLOCK = "BASIC"
    cfg.MODEL.EXTRA.STAGE1.NUM_CHANNELS = [24]
    layer1 = build_model(cfg).pre_feature.layer1
    assert isinstance(layer1[0], BasicBlock) and layer1[0].conv2.out_channels == 24


def _run_summary(repo_root, run_dir, min_ap):
    return subprocess.run([sys.executable, str(repo_root / "tools" / "demo_summary.py"), "--run", str(run_dir),
                           "--start", str(time.time() - 125), "--min-ap", str(min_ap)],
                          capture_output=True, text=True, timeout=60)


def test_demo_summary_reports_metrics_and_fails_below_target(repo_root, tmp_path):
    (tmp_path / "vis").mkdir()
    (tmp_path / "vis" / "1_a.jpg").write_bytes(b"")
    report = {"model_file": "m.pth", "ann_file": "val.json", "metric": "oks", "primary": 0.8125,
              "num_instances": 3, "metrics": {"AP": 0.8125, "AP50": 0.99}}
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    passed = _run_summary(repo_root, tmp_path, 0.8)
    assert passed.returncode == 0, passed.stderr
    assert "| 0.812 | 0.990 |" in passed.stdout and "AP: 0.8125" in passed.stdout
    # the demo started 125 s before the call; the summary's own start-up (importing torch) adds
    # seconds on a slow machine
    wall = re.search(r"wall time: \d+\.\d min \((\d+) s\)", passed.stdout)
    assert wall and 125 <= int(wall.group(1)) <= 125 + 60, passed.stdout
    assert "(1 files)" in passed.stdout
    # the wall time is stated with the CPU it ran on and the precision its training took
    assert "machine: " in passed.stdout and "CPU training path: " in passed.stdout
    failed = _run_summary(repo_root, tmp_path, 0.9)
    assert failed.returncode == 1 and "below the promised 0.9" in failed.stderr
    (tmp_path / "metrics.json").unlink()
    missing = _run_summary(repo_root, tmp_path, 0.8)
    assert missing.returncode == 1 and "metrics.json is missing" in missing.stderr
