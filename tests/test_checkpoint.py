"""Strict checkpoint loading: published forms, the project's own, and clear refusals."""
import pytest
import torch

from kitpose.config import get_default_config
from kitpose.models import CheckpointError, build_model, load_checkpoint


def tiny_model(seed=0, **model):
    cfg = get_default_config()
    m = cfg.MODEL
    m.NUM_JOINTS, m.NUM_BP, m.DIM, m.TRANSFORMER_HEADS = 5, 2, 32, 2
    m.IMAGE_SIZE, m.HEATMAP_SIZE, m.PATCH_SIZE = [32, 32], [8, 8], [8, 8]
    for n, stage in ((2, m.EXTRA.STAGE2), (3, m.EXTRA.STAGE3), (4, m.EXTRA.STAGE4)):
        stage.NUM_MODULES, stage.NUM_BLOCKS, stage.NUM_CHANNELS = 1, [1] * n, [4, 8, 16, 32][:n]
    for key, value in model.items():
        m[key] = value
    cfg.freeze()
    torch.manual_seed(seed)
    return build_model(cfg)


@pytest.fixture(scope="module")
def source():
    model = tiny_model(seed=1)
    for module in model.modules():  # non-trivial BN statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return model.state_dict()


def assert_same(model, state):
    own = model.state_dict()
    assert own.keys() == state.keys()
    assert all(torch.equal(own[key], state[key]) for key in state)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "best_state_dict", "model", "module_prefix", "hrnet_train"])
def test_accepted_forms(tmp_path, source, wrap):
    state = dict(source)
    if wrap == "module_prefix":
        content = {"module." + key: value for key, value in state.items()}
    elif wrap == "hrnet_train":  # published training checkpoint: 'model' is the model's name there
        content = {"epoch": 7, "model": "kitpose_part", "state_dict": state, "perf": 0.5,
                   "best_state_dict": {}, "optimizer": {"state": {}, "param_groups": []}}
    elif wrap == "plain":
        content = state
    else:
        content = {wrap: state, "epoch": 3}
    path = tmp_path / "ckpt.pth"
    torch.save(content, path)
    model = tiny_model(seed=2)
    info = load_checkpoint(model, path)
    assert_same(model, source)
    assert info["num_tensors"] == len(source)
    assert info["stripped_module_prefix"] == (len(source) if wrap == "module_prefix" else 0)
    assert info["source_key"] == {"plain": None, "module_prefix": None, "hrnet_train": "state_dict"}.get(wrap, wrap)
    assert info["unused_keys"] == ["channelformer.bp_embeddings", "channelformer.bp_to_embeddings.weight",
                                   "channelformer.bp_to_embeddings.bias"]


def test_objects_besides_tensors(tmp_path, source):
    """Training checkpoints may hold numpy values; they still load (full unpickling fallback)."""
    import numpy as np
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": dict(source), "perf": np.float64(0.7), "rng": np.random.get_state()}, path)
    model = tiny_model(seed=2)
    load_checkpoint(model, path)
    assert_same(model, source)


def test_renamed_key_is_refused(tmp_path, source):
    state = dict(source)
    state["channelformer.kpt_to_embed.weight"] = state.pop("channelformer.kpt_to_embedding.weight")
    path = tmp_path / "renamed.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tiny_model(), path)
    message = str(err.value)
    assert str(path) in message
    assert "missing keys (1)" in message and "channelformer.kpt_to_embedding.weight" in message
    assert "unexpected keys (1)" in message and "channelformer.kpt_to_embed.weight" in message


def test_all_problems_listed_together(tmp_path, source):
    state = dict(source)
    state.pop("pre_feature.conv1.weight")
    state["pre_feature.extra.weight"] = torch.zeros(1)
    state["channelformer.mlp_head.1.bias"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    model = tiny_model(seed=2)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, path)
    message = str(err.value)
    assert "pre_feature.conv1.weight" in message and "pre_feature.extra.weight" in message
    assert "channelformer.mlp_head.1.bias: checkpoint (3,) vs model (64,)" in message
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())  # untouched


def test_wrong_model_gets_a_hint(tmp_path, source):
    path = tmp_path / "hrnet.pth"
    torch.save({key[len("pre_feature."):]: value for key, value in source.items()
                if key.startswith("pre_feature.")}, path)
    with pytest.raises(CheckpointError, match="fits MODEL.NAME pose_hrnet"):
        load_checkpoint(tiny_model(), path)
    baseline = tiny_model(NAME="pose_hrnet")
    load_checkpoint(baseline, path)
    assert torch.equal(baseline.conv1.weight, source["pre_feature.conv1.weight"])


def test_tolerated_absences(tmp_path, source):
    state = {key: value for key, value in source.items()
             if not key.endswith("num_batches_tracked") and ".bp_" not in key}
    path = tmp_path / "old.pth"
    torch.save(state, path)
    model = tiny_model(seed=2)
    info = load_checkpoint(model, path)
    assert "channelformer.bp_embeddings" in info["tolerated_missing"]
    assert torch.equal(model.channelformer.kpt_to_embedding.weight, source["channelformer.kpt_to_embedding.weight"])


def test_missing_truncated_and_foreign_files(tmp_path, source):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_checkpoint(tiny_model(), tmp_path / "nowhere.pth")
    whole = tmp_path / "whole.pth"
    torch.save(dict(source), whole)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        load_checkpoint(tiny_model(), truncated)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pth"):
        load_checkpoint(tiny_model(), text)
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    with pytest.raises(CheckpointError, match="list.pth"):
        load_checkpoint(tiny_model(), listing)


def test_wrapped_model(tmp_path, source):
    path = tmp_path / "ckpt.pth"
    torch.save(dict(source), path)
    model = tiny_model(seed=2)
    load_checkpoint(torch.nn.DataParallel(model), path)
    assert_same(model, source)
