"""AUTO_RESUME: a run stopped after epoch 1 and resumed equals an uninterrupted run; corrupt checkpoints."""
import pytest
import torch

from engine_support import TINY_CONFIG, make_tiny_dataset, run_output_dir, tiny_config, tiny_opts
from kitpose.engine import read_training_state, run_training
from kitpose.engine.cli import train_main
from kitpose.models import CheckpointError

# CutMix, augmentation, a learning-rate step and validation between the epochs all
# draw on or depend on state that must survive the restart
RESUME_SETTINGS = {"SEED": 3, "TRAIN.LR_STEP": "[1]", "TRAIN.VAL_EVERY": 1, "DATASET.CUTMIX": True}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("resume_data") / "synthetic")


def _final_weights(run_root):
    return torch.load(run_output_dir(run_root) / "final_state.pth", weights_only=True)


def test_resumed_run_ends_with_the_same_weights(data_root, tmp_path):
    straight = tmp_path / "straight"
    run_training(tiny_config(data_root, straight, **RESUME_SETTINGS, **{"TRAIN.END_EPOCH": 2}))

    interrupted = tmp_path / "interrupted"
    run_training(tiny_config(data_root, interrupted, **RESUME_SETTINGS, **{"TRAIN.END_EPOCH": 1}))
    after_first_epoch = _final_weights(interrupted)
    summary = run_training(tiny_config(data_root, interrupted, **RESUME_SETTINGS,
                                       **{"TRAIN.END_EPOCH": 2, "AUTO_RESUME": True}))
    assert summary.epochs_run == 1

    expected, resumed = _final_weights(straight), _final_weights(interrupted)
    assert expected.keys() == resumed.keys()
    different = [key for key in expected if not torch.equal(expected[key], resumed[key])]
    assert not different, f"resumed weights differ from the uninterrupted run: {different[:5]}"
    changed = [key for key in expected if not torch.equal(expected[key], after_first_epoch[key])]
    assert changed, "the second epoch changed nothing: the comparison would prove nothing"

    straight_state = read_training_state(run_output_dir(straight) / "checkpoint.pth")
    resumed_state = read_training_state(run_output_dir(interrupted) / "checkpoint.pth")
    assert straight_state["scheduler"]["last_epoch"] == resumed_state["scheduler"]["last_epoch"]
    assert straight_state["scheduler"]["_last_lr"] == resumed_state["scheduler"]["_last_lr"]
    for a, b in zip(straight_state["optimizer"]["state"].values(), resumed_state["optimizer"]["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    assert straight_state["best_perf"] == resumed_state["best_perf"]


def _corrupt_checkpoint(data_root, run_root):
    """A checkpoint.pth cut in half where AUTO_RESUME looks for it."""
    run_training(tiny_config(data_root, run_root, **{"TRAIN.END_EPOCH": 1, "TRAIN.VAL_EVERY": 5}))
    checkpoint = run_output_dir(run_root) / "checkpoint.pth"
    content = checkpoint.read_bytes()
    checkpoint.write_bytes(content[: len(content) // 2])
    return checkpoint


def test_auto_resume_with_truncated_checkpoint_fails_clearly(data_root, tmp_path, caplog):
    checkpoint = _corrupt_checkpoint(data_root, tmp_path)
    corrupt_bytes = checkpoint.read_bytes()
    with pytest.raises(CheckpointError) as err:
        run_training(tiny_config(data_root, tmp_path, **{"AUTO_RESUME": True}))
    message = str(err.value)
    assert str(checkpoint) in message and "truncated" in message and "start fresh" in message
    assert checkpoint.read_bytes() == corrupt_bytes            # left for inspection, never overwritten

    argv = ["--cfg", str(TINY_CONFIG), *tiny_opts(data_root, tmp_path, **{"AUTO_RESUME": True})]
    assert train_main(argv) == 1
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert any(str(checkpoint) in error and "start fresh" in error for error in errors)
