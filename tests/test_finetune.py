"""MODEL.INIT_FROM: a trained model initialises one with other keypoints; names say which rows carry over."""
import json
import logging
import math

import pytest
import torch

from engine_support import REPO_ROOT, make_tiny_dataset, run_output_dir, tiny_config
from kitpose.config import get_default_config, load_config
from kitpose.datasets import load_metainfo
from kitpose.datasets.keypoint_names import keypoint_name_key, match_keypoints, parse_keypoint_map
from kitpose.engine import run_training
from kitpose.engine.finetune import initialise_from_config, keypoint_map_from_config
from kitpose.models import CheckpointError, build_model, init_from_checkpoint

W32_CONFIG = REPO_ROOT / "experiments" / "ap10k" / "kitpose" / "kitpose_w32_256x256.yaml"
PART_PREFIXES = ("channelformer.bp_embeddings", "channelformer.prompt_learner.meta_net.")


def tiny_model(seed, num_joints=5, num_parts=2, **model):
    cfg = get_default_config()
    m = cfg.MODEL
    m.NUM_JOINTS, m.NUM_BP, m.DIM, m.TRANSFORMER_HEADS = num_joints, num_parts, 32, 2
    m.IMAGE_SIZE, m.HEATMAP_SIZE, m.PATCH_SIZE = [32, 32], [8, 8], [8, 8]
    for n, stage in ((2, m.EXTRA.STAGE2), (3, m.EXTRA.STAGE3), (4, m.EXTRA.STAGE4)):
        stage.NUM_MODULES, stage.NUM_BLOCKS, stage.NUM_CHANNELS = 1, [1] * n, [4, 8, 16, 32][:n]
    for key, value in model.items():
        m[key] = value
    torch.manual_seed(seed)
    return build_model(cfg)


def save(model, path):
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def published_w32_checkpoint(tmp_path_factory):
    """The published W32 layout (AP-10K: 17 keypoints, 4 parts) with random weights made here,
    saved as DataParallel-prefixed {'state_dict': ...}."""
    torch.manual_seed(0)
    source = build_model(load_config(str(W32_CONFIG))).state_dict()
    path = tmp_path_factory.mktemp("w32") / "ap10k_w32_random.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in source.items()}}, path)
    return path


def test_published_w32_layout_initialises_a_four_keypoint_model(published_w32_checkpoint):
    target_cfg = load_config(str(W32_CONFIG), ["MODEL.NUM_JOINTS", "4", "MODEL.NUM_BP", "2"])
    torch.manual_seed(1)
    model = build_model(target_cfg)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = init_from_checkpoint(model, published_w32_checkpoint, keypoint_map=[(2, 0), (4, 3)])  # Nose, tail root

    source = torch.load(published_w32_checkpoint)["state_dict"]
    own = model.state_dict()
    keypoint_tensors = {"pre_feature.final_layer.weight", "pre_feature.final_layer.bias"}
    part_tensors = {k for k in own if k.startswith(PART_PREFIXES)}
    assert set(report.mapped) == keypoint_tensors
    assert set(report.reinitialised) == part_tensors | {"channelformer.pos_embedding"}  # + sine table for 4
    assert len(report.loaded) == len(own) - len(keypoint_tensors) - len(report.reinitialised)
    for name in report.loaded:
        assert torch.equal(own[name], source["module." + name]), name
    for name in report.reinitialised:
        assert torch.equal(own[name], fresh[name]), name
    weight, source_weight = own["pre_feature.final_layer.weight"], source["module.pre_feature.final_layer.weight"]
    assert torch.equal(weight[0], source_weight[2]) and torch.equal(weight[3], source_weight[4])
    assert torch.equal(weight[1:3], fresh["pre_feature.final_layer.weight"][1:3])   # no source row: fresh


def test_published_yaml_fine_tunes_from_ap10k_by_keypoint_names(published_w32_checkpoint):
    """AP-10K -> AnimalPose with the published AnimalPose YAML plus INIT_FROM / INIT_META."""
    cfg = load_config(str(REPO_ROOT / "experiments/animalpose/kitpose/kitpose_w32_256x256.yaml"),
                      ["MODEL.INIT_FROM", str(published_w32_checkpoint), "MODEL.INIT_META", "ap10k"])
    pairs = keypoint_map_from_config(cfg, list(load_metainfo("animalpose").keypoints))
    assert len(pairs) == 8   # eyes, nose, tail base, four paws
    report = init_from_checkpoint(build_model(cfg), published_w32_checkpoint, pairs)
    assert report.mapped["pre_feature.final_layer.weight"] == pairs


def test_same_keypoints_without_a_map_load_whole(tmp_path):
    path = save(tiny_model(seed=1), tmp_path / "source.pth")
    model = tiny_model(seed=2)
    report = init_from_checkpoint(model, path)
    assert not report.reinitialised and not report.mapped
    source = torch.load(path)
    assert all(torch.equal(value, source[name]) for name, value in model.state_dict().items())


def test_other_keypoint_count_without_a_map_starts_those_tensors_fresh(tmp_path):
    path = save(tiny_model(seed=1, num_joints=7, num_parts=3), tmp_path / "source.pth")
    model = tiny_model(seed=2)
    fresh = model.state_dict()["pre_feature.final_layer.weight"].clone()
    report = init_from_checkpoint(model, path)
    assert "pre_feature.final_layer.weight" in report.reinitialised
    assert torch.equal(model.state_dict()["pre_feature.final_layer.weight"], fresh)
    assert "channelformer.bp_embeddings" in report.reinitialised


def test_learnable_position_rows_follow_the_map(tmp_path):
    path = save(tiny_model(seed=1, num_joints=6, POS_EMBEDDING_TYPE="learnable"), tmp_path / "source.pth")
    model = tiny_model(seed=2, POS_EMBEDDING_TYPE="learnable")
    init_from_checkpoint(model, path, keypoint_map=[(5, 1)])
    source = torch.load(path)["channelformer.pos_embedding"]   # [1, 2 parts + 6 keypoints, D]
    own = model.state_dict()["channelformer.pos_embedding"]     # [1, 2 parts + 5 keypoints, D]
    assert torch.equal(own[0, :2], source[0, :2])               # same part count: part rows carried
    assert torch.equal(own[0, 2 + 1], source[0, 2 + 5])


def test_tensors_that_fit_nowhere_are_named(tmp_path):
    path = save(tiny_model(seed=1, DIM=64), tmp_path / "wide.pth")
    with pytest.raises(CheckpointError, match=r"fit nowhere[\s\S]*kpt_to_embedding.weight: checkpoint \(64, 64\)"):
        init_from_checkpoint(tiny_model(seed=2), path)
    with pytest.raises(CheckpointError, match="outside the checkpoint's 5 or the model's 5 keypoints"):
        init_from_checkpoint(tiny_model(seed=2), save(tiny_model(seed=1), tmp_path / "s.pth"), keypoint_map=[(9, 0)])


@pytest.mark.parametrize("names, key", [
    (("leftear", "L_Ear", "ear_left", "LEar", "earL"), ("left", {"ear"})),
    (("Root of tail", "tailbase", "TailBase", "tail_base"), ("", {"tail", "base"})),
    (("snout", "Nose"), ("", {"nose"})),
    (("L_F_Paw", "front_left_paw", "leftFrontPaw"), ("left", {"front", "paw"})),
    (("forelegR4",), ("right", {"foreleg", "4"})),
])
def test_keypoint_name_keys(names, key):
    assert {keypoint_name_key(name) for name in names} == {(key[0], frozenset(key[1]))}


def test_match_and_parse_keypoint_maps():
    ap10k = json.loads((REPO_ROOT / "lib/kitpose/datasets/meta/ap10k.json").read_text())["keypoints"]
    mouse = ["snout", "leftear", "rightear", "tailbase"]
    assert match_keypoints(ap10k, mouse) == [(2, 0), (4, 3)]
    assert match_keypoints(["eye", "eye", "nose"], ["eye", "nose"]) == [(2, 1)]   # ambiguous names left out
    assert parse_keypoint_map(["L_Eye:leftear", "4:tailbase"], ap10k, mouse) == [(0, 1), (4, 3)]
    assert parse_keypoint_map(["none"], ap10k, mouse) == []
    with pytest.raises(ValueError, match="unknown target keypoint 'tail'"):
        parse_keypoint_map(["Nose:tail"], ap10k, mouse)
    with pytest.raises(ValueError, match="set MODEL.INIT_META"):
        parse_keypoint_map(["Nose:snout"], None, mouse)
    with pytest.raises(ValueError, match="given twice"):
        parse_keypoint_map(["Nose:snout", "L_Eye:snout"], ap10k, mouse)


def write_mouse_dataset(root):
    """meta.json of a four-keypoint mouse (no images needed to build the model)."""
    meta = {"keypoints": ["snout", "leftear", "rightear", "tailbase"], "flip_pairs": [[1, 2]],
            "skeleton": [[0, 1], [0, 2], [0, 3]], "sigmas": [0.05] * 4, "upper_body_ids": [0, 1, 2],
            "lower_body_ids": [3], "joint_weights": [1.0] * 4}
    (root / "meta.json").write_text(json.dumps(meta))
    return root / "meta.json"


def test_config_names_the_rows_and_training_applies_it(tmp_path, caplog):
    data_root = make_tiny_dataset(tmp_path / "data")
    source_cfg = tiny_config(data_root, tmp_path / "source", **{"TRAIN.END_EPOCH": 1})
    run_training(source_cfg)
    checkpoint = run_output_dir(tmp_path / "source") / "final_state.pth"

    meta = write_mouse_dataset(tmp_path)
    mouse_cfg = tiny_config(data_root, tmp_path / "mouse", **{
        "DATASET.DATASET": "custom", "DATASET.META": str(meta), "MODEL.NUM_JOINTS": 4, "MODEL.NUM_BP": 2,
        "MODEL.INIT_FROM": str(checkpoint), "MODEL.INIT_META": "ap10k"})
    assert keypoint_map_from_config(mouse_cfg, ["snout", "leftear", "rightear", "tailbase"]) == [(2, 0), (4, 3)]
    model = build_model(mouse_cfg, is_train=True)
    with caplog.at_level(logging.INFO):
        report = initialise_from_config(mouse_cfg, model, ["snout", "leftear", "rightear", "tailbase"])
    assert report.mapped["pre_feature.final_layer.weight"] == [(2, 0), (4, 3)]
    assert "Nose:snout, Root of tail:tailbase; starting fresh: leftear, rightear" in caplog.text

    # the trainer applies it (same keypoints here: the AP-10K layout data), and not over a resumed run
    caplog.clear()
    finetune_cfg = tiny_config(data_root, tmp_path / "finetune", **{
        "TRAIN.END_EPOCH": 1, "MODEL.NUM_BP": 3, "MODEL.INIT_FROM": str(checkpoint), "AUTO_RESUME": True})
    with caplog.at_level(logging.INFO):
        run_training(finetune_cfg)
    assert "MODEL.INIT_FROM" in caplog.text and "tensors loaded" in caplog.text
    caplog.clear()
    resumed = finetune_cfg.clone()
    resumed.defrost()
    resumed.TRAIN.END_EPOCH = 2
    with caplog.at_level(logging.INFO):
        run_training(resumed)
    assert "not applied: AUTO_RESUME continues" in caplog.text


def test_import_labels_init_from_writes_a_fine_tuning_yaml(tmp_path):
    """import_labels --init-from: the checkpoint's architecture, a shorter schedule, the map by names."""
    pytest.importorskip("sleap_io")
    from interop_support import make_dlc_project
    from kitpose.interop import InteropError
    from kitpose.interop.labels_in import import_labels

    project = make_dlc_project(tmp_path / "project", num_images=4, defects=False)   # AP-10K keypoint names
    tiny_yaml = REPO_ROOT / "experiments" / "synthetic" / "kitpose_tiny_cpu.yaml"
    tiny_cfg = load_config(str(tiny_yaml))
    torch.manual_seed(0)
    state = build_model(tiny_cfg).state_dict()
    plain = tmp_path / "final_state.pth"
    torch.save(state, plain)
    with pytest.raises(InteropError, match=r"fit nowhere[\s\S]*give --init-config"):   # not the built-in network
        import_labels(project["root"], tmp_path / "refused", init_from=plain)
    assert not (tmp_path / "refused").exists()

    report = import_labels(project["root"], tmp_path / "fine", init_from=plain, init_config=tiny_yaml)
    written = load_config(report.yaml)
    assert written.MODEL.INIT_FROM == str(plain) and written.MODEL.INIT_META == "ap10k"   # the tiny YAML's dataset
    assert len(written.MODEL.INIT_KEYPOINT_MAP) == 17 and written.MODEL.INIT_KEYPOINT_MAP[2] == "Nose:Nose"
    assert written.TRAIN.LR == tiny_cfg.TRAIN.LR   # the template's: a lower one holds fresh keypoints back
    assert written.TRAIN.END_EPOCH == math.ceil(2000 / report.train_instances)   # a fifth of from scratch
    assert written.MODEL.EXTRA.STAGE4.NUM_CHANNELS == tiny_cfg.MODEL.EXTRA.STAGE4.NUM_CHANNELS

    training_checkpoint = tmp_path / "checkpoint.pth"    # carries the config it was trained with
    torch.save({"state_dict": state, "config": tiny_cfg.dump()}, training_checkpoint)
    report = import_labels(project["root"], tmp_path / "own", init_from=training_checkpoint)
    assert load_config(report.yaml).MODEL.EXTRA.STAGE4.NUM_CHANNELS == tiny_cfg.MODEL.EXTRA.STAGE4.NUM_CHANNELS
