"""The GPU check (tools/gpu_check.py) in its CPU quick mode: every part runs and reports, the correctness
checks hold on the CPU, targets are met / missed / not measured, the budget skips parts.

The quick run takes under a minute on 2 idle cores (run alone: `pytest -m gpu_check`).
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks.gpu_check import CHECKED_TARGETS, PARTS, BudgetExceeded, deadline, exit_status, main
from benchmarks.targets import TARGETS

pytestmark = pytest.mark.gpu_check

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpu_check") / "quick.json"
    status = main(["--device", "cpu", "--quick", "--json", str(path)])
    return status, json.loads(path.read_text())


def test_every_part_is_reported(quick):
    status, report = quick
    parts = report["parts"]
    assert list(parts) == list(PARTS)
    assert {name: parts[name]["status"] for name in PARTS if name != "correctness"} == {
        "ddp": "done", "training": "done", "inference": "done", "data": "done", "training_compiled": "done"}
    assert status == exit_status(report)
    assert report["environment"]["torch"] == torch.__version__


def test_correctness_checks_on_the_cpu(quick):
    _, report = quick
    checks = report["parts"]["correctness"]["checks"]
    outputs = checks["reference_outputs"]
    assert outputs["passed"] and max(outputs["max_abs_difference"].values()) <= 1e-4
    assert checks["reference_clusters"]["passed"]
    assert checks["kmedoids_case"]["passed"] and checks["kmedoids_case"]["cases"] == 40
    grad = checks["grad_cosine_fp32_vs_bf16"]
    assert grad["finite"] and grad["compute_dtype"]["fp32"] == "float32"
    if grad["compute_dtype"]["bf16"] == "bfloat16":   # bf16 autocast ran on this CPU
        assert 0 < grad["cosine"] <= 1 and grad["passed"] == (grad["cosine"] >= 0.99)
        assert set(grad["cosine_per_module"]) >= {"pre_feature", "channelformer"}
        assert 0 < grad["cosine_fp32_bf16_rounded_input"] <= 1
    else:                                              # float32 both times: nothing to compare
        assert grad["passed"] is None and "no autocast" in grad["reason"]
    fp16 = checks["fp16_grad_scaler"]
    assert fp16["passed"] is None and not fp16["scaler_enabled"] and "need CUDA" in fp16["reason"]
    assert fp16["losses_finite"] and len(fp16["scales"]) == fp16["steps"] and fp16["skipped_after"] == 0
    failed = [name for name, entry in checks.items() if entry["passed"] is False]
    assert report["parts"]["correctness"]["status"] == ("failed" if failed else "done")


def test_ddp_trains_two_iterations_over_gloo(quick):
    _, report = quick
    ddp = report["parts"]["ddp"]
    assert ddp["passed"] and ddp["returncode"] == 0
    assert (ddp["backend"], ddp["iterations"], ddp["checkpoint"]["epoch"]) == ("gloo", 2, 1)


def test_speed_parts(quick):
    _, report = quick
    training = report["parts"]["training"]
    assert set(training["variants"]) == {"fp32", "bf16", "bf16_channels_last"}
    assert "tf32" in training["not_applicable"]
    for name, variant in training["variants"].items():
        assert variant["images_per_s"] > 0 and variant["tflops"] > 0 and 0 < variant["mfu_vs_bf16_gemm"]
        assert variant["mfu_vs_peak"] is None        # no datasheet peak for a CPU
        assert ("over_fp32" in variant) == (name != "fp32")
    inference = report["parts"]["inference"]
    assert set(inference["variants"]) == {f"{precision}{flip}" for precision in ("fp32_eager", "fp32_fast", "bf16_fast")
                                          for flip in ("", "_flip")}
    assert inference["checks"]["fp32_fast_vs_eager"]["passed"]
    assert inference["ratios"]["bf16_fast_over_fp32_eager"]["ratio"] > 0
    compiled = report["parts"]["training_compiled"]
    assert set(compiled["variants"]) == {"fp32", "bf16_channels_last", "bf16_channels_last_compile"}
    assert compiled["variants"]["bf16_channels_last_compile"]["first_call_s"] > 0
    assert compiled["dynamo"]["backend"] == "aot_eager" and compiled["dynamo"]["unique_graphs"] >= 1
    assert "CUDA only" in compiled["target_note"]
    data = report["parts"]["data"]
    assert set(data["samples_per_s"]) == {"1", "2"} and all(rate > 0 for rate in data["samples_per_s"].values())
    assert "640x480" in data["source"]


def test_targets_and_profiles(quick):
    _, report = quick
    targets = report["targets"]
    assert set(targets) == set(CHECKED_TARGETS)
    for name, target in targets.items():   # thresholds and labels from the one table
        assert (target["threshold"], target["label"]) == (TARGETS[name].threshold, TARGETS[name].describe())
    assert all(target["status"] in ("met", "missed", "not measured") for target in targets.values())
    assert targets["training_compiled"]["status"] == "not measured"
    assert "CUDA only" in targets["training_compiled"]["reason"]
    profiled = {"training_bf16_channels_last": "training bf16_channels_last", "inference_bf16": "inference bf16_fast",
                "data_over_consumption": "data pipeline"}
    for name, profile in profiled.items():
        if targets[name]["status"] == "missed":
            rows = report["profiles"][profile]["rows"]
            assert 0 < len(rows) <= 10
        else:
            assert profile not in report["profiles"]
    assert targets["data_over_consumption"]["consumption_variant"] in report["parts"]["training"]["variants"]


def test_a_spent_budget_skips_parts(tmp_path):
    path = tmp_path / "budget.json"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "gpu_check.py"), "--device", "cpu", "--quick",
                             "--budget-s", "1", "--json", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(path.read_text())
    assert all(part["status"] == "skipped" and part["reason"].startswith("budget") for part in report["parts"].values())
    assert all(target["status"] == "not measured" for target in report["targets"].values())
    assert "skipped (budget" in result.stdout


def test_a_part_still_running_when_the_budget_ends_is_stopped():
    with pytest.raises(BudgetExceeded):
        with deadline(0.05):
            time.sleep(2)
    time.sleep(0.1)  # the alarm is off again: nothing is raised here


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_without_a_gpu_is_one_error_line(capsys):
    assert main(["--device", "cuda"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().count("\n") == 0 and "no CUDA device" in captured.err
