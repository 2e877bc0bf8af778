"""The GPU check (tools/gpu_check.py) in its CPU quick mode: every part runs and reports, the correctness
checks hold on the CPU, targets are met / missed / not measured, the budget skips parts.

The quick run takes under a minute on 2 idle cores (run alone: `pytest -m gpu_check`).
"""
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from benchmarks.gpu_check import (CHECKED_TARGETS, GRAD_BATCHES, GRAD_CFG, MIN_GRAD_COSINE, PARTS, SCHEDULE_SAMPLES,
                                  TRAIN_VARIANTS, BudgetExceeded, deadline, exit_status, main, schedule_estimate)
from benchmarks.targets import TARGETS
from kitpose.config import load_config
from kitpose.models import build_model

pytestmark = pytest.mark.gpu_check

REPO_ROOT = Path(__file__).resolve().parents[1]


def saved_model(cfg_path, seed, path):
    """The state dict of `cfg_path`'s model at its initialisation with `seed`, written to `path`."""
    torch.manual_seed(seed)
    torch.save(build_model(load_config(str(cfg_path), ["MODEL.INIT_WEIGHTS", "False"])).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu_check")
    # a stand-in for the partly trained model (another initialisation): the check's mechanics, not its figure
    checkpoint = saved_model(GRAD_CFG, 1, folder / "stand_in.pth")
    path = folder / "quick.json"
    status = main(["--device", "cpu", "--quick", "--json", str(path), "--grad-checkpoint", str(checkpoint)])
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
    assert grad["checkpoint"].endswith("stand_in.pth") and grad["batches"] == GRAD_BATCHES
    for state in ("initialised", "trained"):
        entry = grad[state]
        assert entry["finite"] and entry["compute_dtype"]["fp32"] == "float32"
        assert len(entry["per_batch"]) == GRAD_BATCHES
        cosines = sorted(batch["cosine"] for batch in entry["per_batch"])
        assert (entry["lowest_cosine"], entry["median_cosine"]) == (cosines[0], cosines[len(cosines) // 2])
        for batch in entry["per_batch"]:
            assert -1 <= batch["cosine"] <= 1 and -1 <= batch["cosine_fp32_bf16_rounded_input"] <= 1
            assert set(batch["cosine_per_module"]) >= {"pre_feature", "channelformer"}
        assert -1 <= entry["fp32_cosine_between_batches"] <= 1
    # another initialisation than the reported one: the two rows differ
    assert grad["trained"]["per_batch"][0]["losses"] != grad["initialised"]["per_batch"][0]["losses"]
    if grad["trained"]["compute_dtype"]["bf16"] == "bfloat16":   # bf16 autocast ran on this CPU
        assert grad["passed"] == (grad["cosine"] >= MIN_GRAD_COSINE) and grad["cosine"] == grad["trained"]["median_cosine"]
    else:                                                        # float32 both times: nothing to compare
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


def test_schedule_estimate_of_the_quick_run(quick):
    _, report = quick
    schedule, parts = report["schedule"], report["parts"]
    bf16_allowed = parts["correctness"]["checks"]["grad_cosine_fp32_vs_bf16"]["passed"] is not False
    rates = {name: variant["images_per_s"] for name, variant in parts["training"]["variants"].items()
             if bf16_allowed or TRAIN_VARIANTS[name][0]["TRAIN.AMP"] != "bf16"}   # the CPU's compile part: no speed
    variant = max(rates, key=rates.get)
    data = parts["data"]["samples_per_s"]
    workers = max(data, key=data.get)
    rate = min(rates[variant], data[workers])
    assert (schedule["status"], schedule["variant"], schedule["data_workers"]) == ("done", variant, int(workers))
    assert schedule["minutes"] == pytest.approx(SCHEDULE_SAMPLES / rate / 60)
    assert schedule["speedup_for_goal"] == pytest.approx(SCHEDULE_SAMPLES / (30 * 60) / rate)
    assert schedule["bound"] == ("data pipeline" if data[workers] < rates[variant] else "training step")
    measured = parts["training"]["variants"]
    fastest = max(measured, key=lambda name: measured[name]["images_per_s"])
    assert report["profiles"][f"training {fastest}"]["rows"]   # profiled whether or not a target was missed


def fake_check(gradient_check, training, data):
    variants = {name: {"images_per_s": rate} for name, rate in training.items()}
    report = {"parts": {"correctness": {"checks": {"grad_cosine_fp32_vs_bf16": {"passed": gradient_check}}},
                        "training": {"variants": variants}, "data": {"samples_per_s": data}},
              "profiles": {}}
    return SimpleNamespace(report=report, args=SimpleNamespace(schedule_samples=1_800_000, cfg="w32.yaml"))


def test_schedule_estimate_leaves_out_bf16_after_a_failed_gradient_check_and_finds_the_bound():
    training = {"fp32": 500.0, "bf16": 900.0, "bf16_channels_last": 1200.0}
    estimate = schedule_estimate(fake_check(True, training, {"4": 700.0, "8": 1400.0, "16": 5000.0}))
    # 16 workers lie past DATA_MAX_WORKERS: the GPU's 1200 img/s bound it, 1000 img/s meet the 30 minutes
    assert (estimate["variant"], estimate["bound"], estimate["data_workers"]) == ("bf16_channels_last", "training step", 8)
    assert estimate["minutes"] == pytest.approx(25.0) and estimate["speedup_for_goal"] == pytest.approx(1000 / 1200)
    estimate = schedule_estimate(fake_check(False, training, {"4": 400.0}))
    assert (estimate["variant"], estimate["bound"]) == ("fp32", "data pipeline")
    assert estimate["minutes"] == pytest.approx(1_800_000 / 400 / 60)
    assert schedule_estimate(fake_check(None, {}, {}))["status"] == "not measured"


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


def test_without_a_trained_model_the_gradient_check_is_reported_not_judged(tmp_path):
    path = tmp_path / "no_checkpoint.json"
    main(["--device", "cpu", "--quick", "--json", str(path), "--skip", ",".join(PARTS[1:])])
    grad = json.loads(path.read_text())["parts"]["correctness"]["checks"]["grad_cosine_fp32_vs_bf16"]
    assert grad["passed"] is None and "--grad-checkpoint" in grad["reason"]
    assert "trained" not in grad and len(grad["initialised"]["per_batch"]) == GRAD_BATCHES


@pytest.mark.parametrize("problem", ["missing", "other config"])
def test_a_wrong_gradient_checkpoint_ends_the_run_before_any_part(tmp_path, capsys, problem):
    checkpoint = tmp_path / "model.pth"
    if problem == "other config":
        saved_model(REPO_ROOT / "experiments" / "synthetic" / "kitpose_tiny_cpu.yaml", 0, checkpoint)
    path = tmp_path / "report.json"
    assert main(["--device", "cpu", "--quick", "--json", str(path), "--grad-checkpoint", str(checkpoint)]) == 1
    assert str(checkpoint) in capsys.readouterr().err and not path.exists()
