"""No silent wrong result, no lost work (docs/reliability.md): two runs into one output folder, a killed
run's lock and temporaries, unreadable images found before training, a failed validation keeping the
epoch's training, files written with the user's umask, a file that is not a checkpoint."""
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from engine_support import SUBPROCESS_ENV, TINY_CONFIG, make_tiny_dataset, run_output_dir, tiny_config, tiny_opts
from kitpose.datasets import ImageReadError
from kitpose.engine import read_training_state, run_training
from kitpose.engine.cli import test_main as run_test_tool
from kitpose.engine.cli import train_main
from kitpose.engine.run_folder import LOCK_NAME, RunFolderBusy, RunFolderLock, remove_leftover_temporaries
from kitpose.jsonio import leftover_temporaries, write_json
from kitpose.models import CheckpointError, atomic_save

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ONE_EPOCH = {"TRAIN.END_EPOCH": 1}

# holds the lock of the folder argv[1] until killed
HOLDER = """
import sys, time
from kitpose.engine.run_folder import RunFolderLock
RunFolderLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


# a training run's hold on the folder argv[1], until stopped
RUN_HOLDER = """
import sys, time, torch
from kitpose.engine.distributed import RunContext
from kitpose.engine.run_folder import hold_run_folder
with hold_run_folder(sys.argv[1], RunContext(False, 0, 0, 1, torch.device("cpu"))):
    print("held", flush=True)
    time.sleep(120)
"""

# saves a checkpoint, then starts a second save of it and is killed halfway through writing it
SAVER = """
import sys, time, torch
from kitpose.models import CheckpointError, atomic_save
atomic_save({"weights": torch.arange(1000)}, sys.argv[1])
real_save = torch.save
def slow_save(obj, f):
    f.write(b"half a checkpoint")
    f.flush()
    print("writing", flush=True)
    time.sleep(120)
torch.save = slow_save
atomic_save({"weights": torch.zeros(1000)}, sys.argv[1])
"""


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("reliability_data") / "synthetic")


def _errors(caplog):
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def _start(script, argument, first_line):
    """A Python process running `script` with `argument`, once it has printed `first_line`."""
    env = dict(SUBPROCESS_ENV, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-c", script, str(argument)], stdout=subprocess.PIPE, text=True,
                               env=env)
    assert process.stdout.readline().strip() == first_line
    return process


def _start_holder(folder):
    return _start(HOLDER, folder, "held")


def test_sigterm_releases_the_folder(tmp_path):
    holder = _start(RUN_HOLDER, tmp_path, "held")
    assert (tmp_path / LOCK_NAME).exists()
    holder.terminate()
    assert holder.wait() == 128 + signal.SIGTERM
    assert not (tmp_path / LOCK_NAME).exists()


def test_kill_9_during_a_save_leaves_the_checkpoint_intact_and_its_temporary_is_removed_later(tmp_path):
    target = tmp_path / "checkpoint.pth"
    saver = _start(SAVER, target, "writing")
    saver.kill()
    saver.wait()
    assert torch.equal(torch.load(target, weights_only=True)["weights"], torch.arange(1000))
    left = leftover_temporaries(tmp_path)
    assert len(left) == 1 and os.path.basename(left[0]).startswith(".checkpoint.pth.")
    assert remove_leftover_temporaries(tmp_path) == []                  # written to a moment ago
    assert remove_leftover_temporaries(tmp_path, now=time.time() + 120) == left and not os.path.exists(left[0])


def test_a_second_run_into_a_held_folder_stops_and_a_killed_runs_lock_is_taken_over(data_root, tmp_path, caplog):
    folder = run_output_dir(tmp_path)
    run_training(tiny_config(data_root, tmp_path, **ONE_EPOCH))        # the run that will be resumed
    assert not (folder / LOCK_NAME).exists()                            # released at the end
    first_checkpoint = (folder / "checkpoint.pth").read_bytes()

    holder = _start_holder(folder)
    try:
        argv = ["--cfg", str(TINY_CONFIG), *tiny_opts(data_root, tmp_path, **{"AUTO_RESUME": True})]
        assert train_main(argv) == 1
        error = "\n".join(_errors(caplog))
        assert f"output folder {folder} is in use by another training run" in error
        assert f"pid {holder.pid} on host {socket.gethostname()}" in error
        assert (folder / "checkpoint.pth").read_bytes() == first_checkpoint     # the second run wrote nothing
    finally:
        holder.kill()       # like kill -9: the lock file stays behind
        holder.wait()
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == holder.pid

    partial = folder / ".checkpoint.pth.k1ll3d00.tmp"                  # a save cut short by the kill
    partial.write_bytes(b"\0" * 1000)
    os.utime(partial, (partial.stat().st_mtime - 120,) * 2)
    recent = folder / "results" / ".keypoints_val_results.json.0a1b2c3d.tmp"   # being written right now
    recent.parent.mkdir(exist_ok=True)
    recent.write_text("[")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        summary = run_training(tiny_config(data_root, tmp_path, **{"AUTO_RESUME": True, "TRAIN.END_EPOCH": 2}))
    assert summary.epochs_run == 1                                      # resumed after epoch 0
    assert f"took over the stale lock {folder / LOCK_NAME}" in caplog.text
    assert f"process {holder.pid} no longer runs on this host" in caplog.text
    assert f"removed {partial}" in caplog.text and not partial.exists()
    assert recent.exists()
    assert not (folder / LOCK_NAME).exists()


def test_a_lock_whose_pid_cannot_be_checked_is_kept_while_refreshed_and_taken_over_when_not(tmp_path):
    lock_file = tmp_path / LOCK_NAME
    lock_file.write_text(json.dumps({"host": "elsewhere", "pid_namespace": "", "pid": 1, "started": "then"}))
    with pytest.raises(RunFolderBusy, match="pid 1 on host elsewhere, started then"):
        RunFolderLock(tmp_path).acquire()
    # this host name but another pid namespace (a container): its pids say nothing here
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock_file.write_text(json.dumps({"host": socket.gethostname(), "pid_namespace": "pid:[1]", "pid": gone.pid,
                                     "started": "then"}))
    with pytest.raises(RunFolderBusy, match=f"pid {gone.pid} on host {socket.gethostname()}"):
        RunFolderLock(tmp_path).acquire()
    old = lock_file.stat().st_mtime - 3600
    os.utime(lock_file, (old, old))
    lock = RunFolderLock(tmp_path)
    lock.acquire()
    assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock_file.exists()


def test_the_holder_refreshes_its_lock(tmp_path, monkeypatch):
    monkeypatch.setattr("kitpose.engine.run_folder.HEARTBEAT_SECONDS", 0.05)
    lock = RunFolderLock(tmp_path)
    lock.acquire()
    old = (tmp_path / LOCK_NAME).stat().st_mtime - 3600
    os.utime(tmp_path / LOCK_NAME, (old, old))
    time.sleep(0.5)
    refreshed = (tmp_path / LOCK_NAME).stat().st_mtime
    lock.release()
    assert refreshed > old + 3000


def test_unreadable_images_are_all_listed_before_training(tmp_path):
    images = tmp_path / "synthetic"
    make_tiny_dataset(images)
    train_image, val_image = images / "data" / "000010000003.jpg", images / "data" / "000020000002.jpg"
    train_image.write_bytes(b"\xff\xd8 this is not a jpeg")
    val_image.write_text("not an image")
    with pytest.raises(ImageReadError) as err:
        run_training(tiny_config(images, tmp_path))
    message = str(err.value)
    assert "2 of the 12 image files" in message
    assert f"{train_image}: cannot be decoded" in message and f"{val_image}: cannot be decoded" in message
    assert not (run_output_dir(tmp_path) / "checkpoint.pth").exists()


def test_a_failed_validation_keeps_the_epochs_training(tmp_path, caplog):
    images = tmp_path / "synthetic"
    make_tiny_dataset(images)
    val_image = images / "data" / "000020000002.jpg"
    val_image.write_text("not an image")
    with caplog.at_level(logging.WARNING), pytest.raises(ImageReadError, match=str(val_image)):
        run_training(tiny_config(images, tmp_path, **{"DATASET.CHECK_IMAGES": False}))
    checkpoint = run_output_dir(tmp_path) / "checkpoint.pth"
    assert read_training_state(checkpoint)["epoch"] == 1
    assert f"the epoch's training is saved in {checkpoint}" in caplog.text
    # resuming it under another model configuration is refused, naming the file
    with pytest.raises(CheckpointError, match=re.escape(f"{checkpoint} does not fit this configuration")):
        run_training(tiny_config(images, tmp_path, **{"DATASET.CHECK_IMAGES": False, "AUTO_RESUME": True,
                                                      "MODEL.TRANSFORMER_MLP_RATIO": 2}))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_save({"weights": torch.zeros(2)}, tmp_path / "model.pth")
        write_json(tmp_path / "results.json", [1, 2])
    finally:
        os.umask(previous)
    assert (tmp_path / "model.pth").stat().st_mode & 0o777 == mode
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == mode
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pth", "results.json"]


def test_a_text_file_as_model_file_is_named_not_a_checkpoint(data_root, tmp_path, caplog):
    text = tmp_path / "notes.pth"
    text.write_text("epoch 12: AP 0.71\n")
    argv = ["--cfg", str(TINY_CONFIG), *tiny_opts(data_root, tmp_path), "TEST.MODEL_FILE", str(text)]
    assert run_test_tool(argv) == 1
    error = "\n".join(_errors(caplog))
    assert f"{text} is not a PyTorch checkpoint (it begins with b'epoch 12: AP 0.7'" in error
    assert "KeyError" not in error
