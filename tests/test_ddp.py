"""DistributedDataParallel: `torchrun --nproc_per_node 2` with gloo on CPU trains, validates and saves once."""
import os
import subprocess
import sys

import torch

from engine_support import REPO_ROOT, SUBPROCESS_ENV, TINY_CONFIG, make_tiny_dataset, run_output_dir, tiny_opts


def test_torchrun_two_processes_gloo_cpu(tmp_path):
    data_root = make_tiny_dataset(tmp_path / "synthetic")
    record = tmp_path / "saves"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO_ROOT / "tests" / "ddp_entry.py"), "--cfg", str(TINY_CONFIG),
               *tiny_opts(data_root, tmp_path, **{"TRAIN.END_EPOCH": 2, "TRAIN.VAL_EVERY": 2})]
    env = dict(SUBPROCESS_ENV, KITPOSE_SAVE_RECORD=str(record))
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]

    out = run_output_dir(tmp_path)
    rank0 = (record.parent / "saves.0").read_text().split()
    rank1 = (record.parent / "saves.1").read_text().split()
    assert rank1 == []                                     # only rank 0 writes files
    assert rank0 == [str(out / "checkpoint.pth"), str(out / "checkpoint.pth"), str(out / "model_best.pth"),
                     str(out / "final_state.pth")]
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]

    logs = list(out.glob("*_train.log"))
    assert len(logs) == 1
    log = logs[0].read_text()
    assert "rank 0/2 (gloo)" in log
    # the sampler split the 9 training instances: 5 per rank (padded), batch 3 -> 2 iterations
    assert "9 training instances (2 iterations per epoch on this process)" in log
    assert "epoch 1 validation: AP" in log

    state = torch.load(out / "checkpoint.pth", weights_only=True)
    assert state["epoch"] == 2 and len(state["rng"]) == 2            # RNG states of both ranks
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
