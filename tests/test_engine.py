"""Engine: schedules, optimiser groups, atomic checkpoints, inference plumbing, train -> test end to end."""
import json
import math
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from engine_support import (REPO_ROOT, SUBPROCESS_ENV, TINY_CONFIG, make_tiny_dataset, run_output_dir, tiny_config,
                            tiny_opts)
from kitpose.config import load_config
from kitpose.datasets import build_dataset
from kitpose.engine import (build_optimizer, build_scheduler, lr_factor, predict_dataset, read_training_state,
                            run_training)
from kitpose.engine.cli import config_from_args, parse_args, train_main
from kitpose.engine.distributed import build_loader, init_run_context
from kitpose.engine.validation import evaluate_predictions
from kitpose.engine.trainer import NonFiniteLossError
from kitpose.models import ModelOutput, atomic_save, build_model, load_checkpoint
from kitpose.runtime import fuse_batchnorm, predict_heatmaps
from kitpose.vis.draw import draw_instances

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("engine_data") / "synthetic")


def _cfg(**overrides):
    return load_config(None, [item for key, value in overrides.items() for item in (key, str(value))])


# ------------------------------------------------------------------ schedules and optimiser
def test_multistep_and_warmup_schedule():
    cfg = _cfg(**{"TRAIN.LR_STEP": "[3, 5]", "TRAIN.LR_FACTOR": 0.1, "TRAIN.WARMUP_EPOCHS": 2,
                  "TRAIN.WARMUP_FACTOR": 0.1})
    assert lr_factor(cfg, 0.0) == pytest.approx(0.1)
    assert lr_factor(cfg, 1.0) == pytest.approx(0.55)         # per-iteration warmup: halfway
    assert lr_factor(cfg, 2.5) == pytest.approx(1.0)
    assert lr_factor(cfg, 2.99) == pytest.approx(1.0)         # steps happen at whole epochs
    assert lr_factor(cfg, 3.0) == pytest.approx(0.1)
    assert lr_factor(cfg, 5.5) == pytest.approx(0.01)
    per_epoch = _cfg(**{"TRAIN.WARMUP_EPOCHS": 2, "TRAIN.WARMUP_FACTOR": 0.1, "TRAIN.WARMUP_PER_ITER": False})
    assert lr_factor(per_epoch, 0.9) == pytest.approx(0.1)
    assert lr_factor(per_epoch, 1.2) == pytest.approx(0.55)
    # TRAIN.BEGIN_EPOCH without a checkpoint: the schedule starts at that epoch
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    build_scheduler(optimizer, _cfg(**{"TRAIN.LR_STEP": "[2]"}), iters_per_epoch=10, start_iteration=25)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_cosine_schedule_ends_at_lr_end_and_scheduler_steps_per_iteration():
    cfg = _cfg(**{"TRAIN.LR_SCHEDULER": "cosine", "TRAIN.LR": 0.01, "TRAIN.LR_END": 0.0001, "TRAIN.END_EPOCH": 4})
    assert lr_factor(cfg, 0.0) == pytest.approx(1.0)
    assert lr_factor(cfg, 2.0) == pytest.approx((1.0 + 0.01) / 2)
    assert lr_factor(cfg, 4.0) * 0.01 == pytest.approx(0.0001)
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = build_scheduler(optimizer, cfg, iters_per_epoch=10)
    for _ in range(20):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * lr_factor(cfg, 2.0))
    with pytest.raises(ValueError, match="TRAIN.LR_SCHEDULER"):
        lr_factor(_cfg(**{"TRAIN.LR_SCHEDULER": "linear"}), 0.0)


class _TwoPartModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre_feature = nn.Linear(4, 4)
        self.channelformer = nn.Linear(4, 2)
        self.channelformer.register_parameter("frozen", nn.Parameter(torch.zeros(3), requires_grad=False))


def test_optimizer_groups_weight_decay_and_published_quirk():
    model = _TwoPartModel()
    published = build_optimizer(model, _cfg(**{"TRAIN.LR": 0.5, "TRAIN.BACKBONE_LR_MULT": 0.1}))
    assert isinstance(published, torch.optim.Adam)
    groups = {group["name"]: group for group in published.param_groups}
    assert set(groups) == {"backbone", "head"}
    assert groups["backbone"]["lr"] == pytest.approx(0.05) and groups["head"]["lr"] == pytest.approx(0.5)
    assert all(group["weight_decay"] == 0.0 for group in published.param_groups)   # published: no decay
    assert sum(p.numel() for p in groups["head"]["params"]) == 4 * 2 + 2          # frozen parameter left out
    assert published.param_groups[0]["betas"] == (0.9, 0.999)

    honoured = build_optimizer(model, _cfg(**{"TRAIN.OPTIMIZER": "adamw", "TRAIN.PUBLISHED_NO_DECAY": False,
                                              "TRAIN.WD": 0.05}))
    assert isinstance(honoured, torch.optim.AdamW)
    assert all(group["weight_decay"] == 0.05 for group in honoured.param_groups)
    sgd = build_optimizer(model, _cfg(**{"TRAIN.OPTIMIZER": "sgd", "TRAIN.NESTEROV": True}))
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["nesterov"]
    with pytest.raises(ValueError, match="TRAIN.OPTIMIZER"):
        build_optimizer(model, _cfg(**{"TRAIN.OPTIMIZER": "lamb"}))


# ------------------------------------------------------------------ checkpoints
def test_atomic_save_leaves_old_file_intact_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint.pth"
    atomic_save({"weights": torch.arange(5)}, target)
    before = target.read_bytes()

    def failing_save(obj, f):
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"weights": torch.zeros(5)}, target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pth"]          # no temporary file left behind


# ------------------------------------------------------------------ inference plumbing
def _tiny_eval_model():
    cfg = load_config(str(TINY_CONFIG))
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():   # non-trivial BN statistics, so folding them matters
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return cfg, model.eval()


def test_fused_flip_test_equals_two_separate_passes():
    cfg, model = _tiny_eval_model()
    images = torch.randn(3, 3, 64, 64)
    flip_pairs = [[0, 1], [5, 8], [6, 9]]
    with torch.no_grad():
        fused = predict_heatmaps(model, images, flip_pairs, shift_heatmap=True)
        original = model(images).heatmaps
        mirrored = model(images.flip(3)).heatmaps
    restored = mirrored.flip(3)
    restored[:, [0, 1, 5, 8, 6, 9]] = restored[:, [1, 0, 8, 5, 9, 6]].clone()
    restored[..., 1:] = restored[..., :-1].clone()                     # HRNet shift
    torch.testing.assert_close(fused, (original + restored) / 2, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fused, original, atol=1e-4)


def test_fuse_batchnorm_keeps_outputs():
    cfg, model = _tiny_eval_model()
    images = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        reference = model(images)
        assert fuse_batchnorm(model) > 20
        assert not any(isinstance(module, nn.BatchNorm2d) for module in model.modules())
        fused = model(images)
    torch.testing.assert_close(fused.intermediate, reference.intermediate, atol=1e-5, rtol=1e-5)
    # k-medoids is discontinuous: last-bit differences can regroup near-tied maps of this random
    # model, which moves the part prompts; the final heatmaps stay close
    torch.testing.assert_close(fused.heatmaps, reference.heatmaps, atol=5e-3, rtol=0)


class _OracleModel(nn.Module):
    """Returns the ground-truth target heatmaps of the loader's batches, in order (a perfect model)."""

    def __init__(self, targets, flip_pairs):
        super().__init__()
        self.targets, self.flip_pairs, self.position = targets, flip_pairs, 0

    def forward(self, images):
        from kitpose.codecs import flip_back
        batch = images.shape[0] // 2                                  # flip test: [originals; mirrored]
        target = self.targets[self.position:self.position + batch]
        self.position += batch
        heatmaps = torch.cat([target, flip_back(target, self.flip_pairs)])
        return ModelOutput(None, None, heatmaps)


def test_inference_decodes_perfect_heatmaps_to_high_ap(data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path, **{"MODEL.IMAGE_SIZE": "[256, 256]", "MODEL.HEATMAP_SIZE": "[64, 64]",
                                              "MODEL.SIGMA": 2, "TEST.SHIFT_HEATMAP": False,
                                              "TEST.BLUR_KERNEL": 11})
    dataset = build_dataset(cfg, is_train=False)
    targets = torch.stack([dataset[i][1] for i in range(len(dataset))])
    context = init_run_context(cfg)
    loader = build_loader(dataset, cfg, context, is_train=False)
    predictions = predict_dataset(_OracleModel(targets, dataset.meta.flip_pairs), loader, cfg, context)
    assert predictions.preds.shape == (len(dataset), 17, 3)
    np.testing.assert_array_equal(predictions.ann_ids, dataset.ann_ids)
    np.testing.assert_allclose(predictions.boxes[:, :2], dataset.centers)
    name_values, ap = evaluate_predictions(dataset, predictions, tmp_path, cfg)
    assert ap > 0.9, name_values


def test_draw_instances_draws_confident_keypoints_only():
    canvas = np.zeros((60, 60, 3), np.uint8)
    instance = np.array([[[10, 10, 0.9], [50, 50, 0.9], [30, 50, 0.05]]])
    drawn = draw_instances(canvas, instance, skeleton=[[0, 1], [1, 2]], score_thr=0.2)
    assert drawn[10, 10].any() and drawn[50, 50].any() and drawn[30, 30].any()   # joints and their limb
    assert not drawn[50, 30].any()                                                 # below threshold
    assert not canvas.any()                                                        # input untouched


def test_cli_maps_directories_to_config(tmp_path):
    args = parse_args(["--cfg", str(TINY_CONFIG), "--modelDir", "m", "--logDir", "l", "--dataDir", "d",
                       "TRAIN.LR", "0.5"], "x")
    cfg = config_from_args(args)
    assert (cfg.OUTPUT_DIR, cfg.LOG_DIR, cfg.DATA_DIR, cfg.TRAIN.LR) == ("m", "l", "d", 0.5)


def test_run_phase_tears_the_run_down_when_its_block_raises(data_root, tmp_path, monkeypatch):
    import kitpose.engine.distributed as distributed
    cleaned = []
    monkeypatch.setattr(distributed, "cleanup", cleaned.append)
    with pytest.raises(RuntimeError, match="inside the run"):
        with distributed.run_phase(tiny_config(data_root, tmp_path), "test") as (context, dirs):
            assert context.is_main and dirs.output_dir == run_output_dir(tmp_path) and dirs.output_dir.is_dir()
            raise RuntimeError("inside the run")
    assert cleaned == [context]
    assert list(dirs.output_dir.glob("kitpose_tiny_cpu_*_test.log"))


# ------------------------------------------------------------------ end to end
def test_train_checkpoint_test_end_to_end(data_root, tmp_path, capfd, monkeypatch):
    import kitpose.datasets as datasets
    from kitpose.codecs import HeatmapCodec
    built = {"metainfo": 0, "codec": 0}

    def counted(kind, build):
        def wrapper(*args, **kwargs):
            built[kind] += 1
            return build(*args, **kwargs)
        return wrapper
    monkeypatch.setattr(datasets, "load_metainfo", counted("metainfo", datasets.load_metainfo))
    monkeypatch.setattr(HeatmapCodec, "from_config", classmethod(counted("codec", HeatmapCodec.from_config.__func__)))
    cfg = tiny_config(data_root, tmp_path)
    summary = run_training(cfg)
    # the metainfo is read and the codec built once for the run, not once per dataset
    assert built == {"metainfo": 1, "codec": 1}
    # stderr is not a terminal here: progress comes as whole lines, not carriage-return redraws
    console = capfd.readouterr().err
    assert "\r" not in console
    assert re.search(r"^epoch 1 \(of 2\): 100% \(3/3 batch, .* loss=", console, re.MULTILINE)
    out = run_output_dir(tmp_path)
    assert summary.output_dir == out and summary.epochs_run == 2
    for name in ("checkpoint.pth", "model_best.pth", "final_state.pth", "results/keypoints_val_results.json"):
        assert (out / name).is_file(), name
    train_logs = list(out.glob("kitpose_tiny_cpu_*_train.log"))
    assert len(train_logs) == 1
    # each epoch reports its time; the first also the time the rest will take at that pace
    done_lines = [line for line in train_logs[0].read_text().splitlines() if " done in " in line]
    assert len(done_lines) == 2
    assert re.search(r"epoch 0 done in [0-9.]+ s \(about [0-9.]+ min for the 1 epoch left\): loss ", done_lines[0])
    assert re.search(r"epoch 1 done in [0-9.]+ s: loss ", done_lines[1])
    assert list(summary.tensorboard_dir.glob("events.out.tfevents.*"))
    state = read_training_state(out / "checkpoint.pth")
    assert state["epoch"] == 2 and len(state["rng"]) == 1 and math.isfinite(state["best_perf"])
    assert load_checkpoint(build_model(cfg), out / "checkpoint.pth")["source_key"] == "state_dict"
    validation_results = json.loads((out / "results" / "keypoints_val_results.json").read_text())

    command = [sys.executable, str(REPO_ROOT / "tools" / "test.py"), "--cfg", str(TINY_CONFIG),
               *tiny_opts(data_root, tmp_path), "TEST.MODEL_FILE", str(out / "final_state.pth"),
               "TEST.NUM_VIS", "2", "TEST.FUSE_BN", "False", "TEST.CHANNELS_LAST", "False",
               "TEST.CPU_KERNELS", "False"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env=SUBPROCESS_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "\r" not in result.stderr and re.search(r"^test: 100% \(1/1 batch", result.stderr, re.MULTILINE)
    assert "| Arch | AP |" in result.stdout
    assert "| Arch | AP |" not in result.stderr                       # the console shows the table once
    test_logs = list(out.glob("kitpose_tiny_cpu_*_test.log"))
    assert len(test_logs) == 1 and "| Arch | AP |" in test_logs[0].read_text()   # and the log file keeps it
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "oks" and set(metrics["metrics"]) >= {"AP", "AP50", "AR"}
    assert metrics["primary"] == pytest.approx(summary.last_perf)
    test_results = json.loads((out / "results" / "keypoints_val_results.json").read_text())
    np.testing.assert_allclose([r["keypoints"] for r in test_results],
                               [r["keypoints"] for r in validation_results], atol=1e-3)
    pictures = sorted((out / "vis").glob("*.jpg"))
    assert len(pictures) == 2 and cv2.imread(str(pictures[0])) is not None


def test_non_finite_loss_stops_and_keeps_last_checkpoint(data_root, tmp_path, monkeypatch, caplog):
    import kitpose.engine.trainer as trainer
    real_build_criterion = trainer.build_criterion
    calls = {"count": 0}

    def poisoned_criterion(cfg):
        criterion = real_build_criterion(cfg)

        def forward(outputs, target, target_weight, mix=None):
            calls["count"] += 1
            total, parts = criterion(outputs, target, target_weight, mix=mix)
            return (total * float("nan") if calls["count"] == 5 else total), parts
        return forward

    monkeypatch.setattr(trainer, "build_criterion", lambda cfg: _ModuleLike(poisoned_criterion(cfg)))
    cfg = tiny_config(data_root, tmp_path, **{"TRAIN.VAL_EVERY": 5})
    with pytest.raises(NonFiniteLossError) as err:       # 3 iterations per epoch: call 5 = epoch 1, iteration 1
        run_training(cfg)
    out = run_output_dir(tmp_path)
    message = str(err.value)
    assert "epoch 1 iteration 1/3" in message and str(out / "checkpoint.pth") in message
    assert read_training_state(out / "checkpoint.pth")["epoch"] == 1
    assert not (out / "final_state.pth").exists()

    # the command line reports it as one error line, exit status 1
    calls["count"] = 0
    argv = ["--cfg", str(TINY_CONFIG), *tiny_opts(data_root, tmp_path / "cli", **{"TRAIN.VAL_EVERY": 5})]
    assert train_main(argv) == 1
    assert any("non-finite loss" in record.getMessage() and record.levelname == "ERROR"
               for record in caplog.records)


class _ModuleLike:
    """Wraps a function so that `criterion.to(device)` works like on an nn.Module."""

    def __init__(self, function):
        self.function = function

    def to(self, device):
        return self

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)


def test_test_py_reports_truncated_checkpoint_without_traceback(data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path)
    good = tmp_path / "good.pth"
    torch.save(build_model(cfg).state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    command = [sys.executable, str(REPO_ROOT / "tools" / "test.py"), "--cfg", str(TINY_CONFIG),
               *tiny_opts(data_root, tmp_path), "TEST.MODEL_FILE", str(truncated)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env=SUBPROCESS_ENV)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert str(truncated) in output and "corrupt" in output
    assert "Traceback" not in output


def test_training_amp_on_the_cpu(monkeypatch):
    """TRAIN.AMP bf16 runs a bfloat16 autocast on CPUs with native bfloat16 and float32 elsewhere (logged);
    fp16 is CUDA only."""
    from kitpose.engine import train_step
    from kitpose.losses import build_criterion
    from kitpose.runtime import amp as amp_module
    cpu = torch.device("cpu")
    assert amp_module.training_amp("fp16", cpu) == "none" and amp_module.training_amp("none", cpu) == "none"
    assert "fp16 needs CUDA" in amp_module.describe_training_amp("fp16", cpu)

    _, model = _tiny_eval_model()
    cfg = load_config(str(TINY_CONFIG), ["TRAIN.AMP", "bf16", "DATASET.CUTMIX", "false"])
    model.train()
    images = torch.randn(2, 3, 64, 64)
    target = torch.rand(2, 17, 16, 16)
    weight = torch.ones(2, 17, 1)
    seen = []
    hook = model.pre_feature.conv1.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    criterion = build_criterion(cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(amp_module, "cpu_has_native_bf16", lambda native=native: native)
        step = train_step(model, images, target, weight, criterion, optimizer, scaler, cfg, cpu)
        assert step.applied and math.isfinite(step.values["loss"])
        assert seen[-1] == expected
        note = amp_module.describe_training_amp("bf16", cpu)
        assert ("cpu autocast" in note) == native and ("training in float32" in note) == (not native)
    hook.remove()


def test_avx2_kernel_limit_shows_the_float32_training_path_on_any_cpu():
    # README: these two variables make an AVX-512 CPU take (and log) the float32 path an AVX2-only CPU takes
    code = ("import torch; from kitpose.runtime import amp; "
            "print(amp.cpu_has_native_bf16()); print(amp.describe_training_amp('bf16', torch.device('cpu')))")
    env = dict(SUBPROCESS_ENV, ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    lines = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert lines == ["False", "TRAIN.AMP bf16: this CPU has no native bfloat16 instructions (AVX-512 BF16 / AMX); "
                              "training in float32"]


def test_unknown_cutmix_weights_mode_stops_training_before_it_starts(data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path)
    cfg.defrost()
    cfg.DATASET.CUTMIX_WEIGHTS = "intent"
    cfg.freeze()
    with pytest.raises(ValueError, match="DATASET.CUTMIX_WEIGHTS = 'intent'"):
        run_training(cfg)
    assert not list(tmp_path.rglob("checkpoint.pth"))
