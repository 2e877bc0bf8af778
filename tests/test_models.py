"""Model: official key layout, parameter counts, equality with the published implementation
(reference fixture in tests/data/reference), k-medoids, ablation switches, ImageNet init, MACs."""
import json
import logging
from pathlib import Path

import pytest
import torch

from kitpose.config import get_default_config, load_config
from kitpose.models import (ModelOutput, build_model, count_parameters, kmedoids_cosine, load_checkpoint,
                            set_part_maps, sine_position_table)
from kitpose.models.complexity import count_macs

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO_ROOT / "experiments"

# published parameter counts (docs/published_behaviour.md): config -> (all, used)
PUBLISHED_COUNTS = {
    "ap10k/kitpose/kitpose_w32_256x256.yaml": (72_647_257, 68_447_833),
    "ap10k/kitpose/kitpose_w32_384x384.yaml": (125_099_097, 115_656_793),
    "ap10k/kitpose/kitpose_w48_256x256.yaml": (107_707_465, 103_508_041),
    "ap10k/kitpose/kitpose_w48_384x384.yaml": (160_159_305, 150_717_001),
    "ak/kitpose/kitpose_w32_256x256.yaml": (72_657_850, 68_455_354),
    "ak/kitpose/kitpose_w48_256x256.yaml": (107_717_007, 103_515_535),
    "animalpose/kitpose/kitpose_w32_256x256.yaml": (72_651_827, 68_451_379),
    "animalpose/kitpose/kitpose_w48_256x256.yaml": (107_712_227, 103_511_779),
    "animalpose/kitpose/kitpose_w48_384x384.yaml": (160_164_067, 150_720_739),
    "coco/kitpose/kitpose_w32_256x192.yaml": (53_362_265, 50_999_129),
    "coco/kitpose/kitpose_w32_384x288.yaml": (82_870_745, 77_558_489),
    "coco/kitpose/kitpose_w48_256x192.yaml": (88_422_473, 86_059_337),
    "coco/kitpose/kitpose_w48_384x288.yaml": (189_126_473, 177_173_897),
}


def tiny_cfg(**model):
    """The reference fixture's architecture (64x64 input, HRNet widths 8-64, DIM 64, 2 heads)."""
    cfg = get_default_config()
    m = cfg.MODEL
    m.INIT_WEIGHTS = False
    m.NUM_JOINTS, m.NUM_BP, m.DIM, m.TRANSFORMER_HEADS = 17, 4, 64, 2
    m.IMAGE_SIZE, m.HEATMAP_SIZE, m.PATCH_SIZE = [64, 64], [16, 16], [16, 16]
    widths = [8, 16, 32, 64]
    for n, stage in ((2, m.EXTRA.STAGE2), (3, m.EXTRA.STAGE3), (4, m.EXTRA.STAGE4)):
        stage.NUM_MODULES, stage.NUM_BLOCKS, stage.NUM_CHANNELS = 1, [1] * n, widths[:n]
    for key, value in model.items():
        m[key] = value
    cfg.freeze()
    return cfg


def build_meta(cfg):
    with torch.device("meta"):
        return build_model(cfg)


@pytest.fixture(scope="module")
def reference_model(reference_model_files):
    config_path, checkpoint_path = reference_model_files
    model = build_model(load_config(config_path)).eval()
    info = load_checkpoint(model, checkpoint_path)
    return model, info


# ------------------------------------------------------------------ structure and counts
def test_official_keys_and_shapes(reference_dir):
    expected = [(key, list(shape)) for key, shape in
                json.loads((reference_dir / "official_state_dict_ap10k_w32_256x256.json").read_text())]
    model = build_meta(load_config(str(EXPERIMENTS / "ap10k/kitpose/kitpose_w32_256x256.yaml")))
    actual = [(key, list(t.shape)) for key, t in model.state_dict().items()]
    assert len(actual) == len(expected) == 1810
    assert actual == expected


@pytest.mark.parametrize("name", sorted(PUBLISHED_COUNTS))
def test_published_parameter_counts(name):
    cfg = load_config(str(EXPERIMENTS / name))
    assert cfg.MODEL.NAME == "kitpose_part" and cfg.MODEL.POS_EMBEDDING_TYPE == "sine-full"
    assert count_parameters(build_meta(cfg)) == PUBLISHED_COUNTS[name]


def test_count_parameters_matches_fixture(reference_fixture, reference_model):
    model, _ = reference_model
    total, used = count_parameters(model)
    assert total == reference_fixture["num_params"]
    unused = sum(p.numel() for n, p in model.named_parameters() if ".bp_" in n)
    assert used == total - unused and unused == 4 * 64 + 256 * 64 + 64


# ------------------------------------------------------------------ published equality
def test_matches_published_outputs(reference_fixture, reference_model):
    model, info = reference_model
    assert info["unused_keys"] == ["channelformer.bp_embeddings", "channelformer.bp_to_embeddings.weight",
                                   "channelformer.bp_to_embeddings.bias"]
    with torch.no_grad():
        outputs = model(reference_fixture["input"])
    assert isinstance(outputs, ModelOutput)
    diffs = {name: (getattr(outputs, name) - reference_fixture["outputs"][name]).abs().max().item()
             for name in ModelOutput._fields}
    print("max abs diff vs published outputs:", diffs)
    assert all(diff < 1e-5 for diff in diffs.values()), diffs
    assign, medoids = model.channelformer.cluster(outputs.intermediate)
    assert torch.equal(assign, reference_fixture["kmedoids"]["assign"])
    assert torch.equal(medoids, reference_fixture["kmedoids"]["medoids"])


def test_sine_table_matches_published(reference_fixture):
    published = reference_fixture["state_dict"]["channelformer.pos_embedding"]
    assert torch.allclose(sine_position_table(17, 64), published, atol=1e-6)


KMEDOIDS_VARIANTS = ("float32 chunk 8", "float32 chunk 1", "float32 chunk 40", "float64", "noise 1e-5")


@pytest.mark.parametrize("variant", KMEDOIDS_VARIANTS)
def test_kmedoids_case_exact(reference_fixture, variant):
    """The published result of every sample, whatever the chunk, the input dtype or 1e-5 relative input
    noise: the clustering runs in float64, where the case's closest decisions (two-keypoint parts whose
    candidates differ by ~1e-12) are far wider than any CPU's rounding, unlike in float32."""
    case = reference_fixture["kmedoids_case"]
    maps, chunk = case["maps"], 8
    if variant.startswith("float32 chunk"):
        chunk = int(variant.split()[-1])
    elif variant == "float64":
        maps = maps.double()
    else:
        maps = maps * (1 + 1e-5 * torch.randn(maps.shape, generator=torch.Generator().manual_seed(0)))
    assign, medoids = kmedoids_cosine(maps, case["num_parts"], chunk_size=chunk)
    assert assign.dtype == medoids.dtype == torch.long
    wrong = ((assign != case["assign"]).any(1) | (medoids != case["medoids"]).any(1)).nonzero().flatten()
    assert not len(wrong), f"samples {wrong.tolist()} differ"


def test_kmedoids_two_keypoint_part_tie_rule():
    """A part of two maps with the same direction: d_ij = d_ji, so the medoid is decided by d_ii vs d_jj,
    i.e. by the 1e-6 of the normalisations (~1e-12 apart, below float32 resolution). In exact arithmetic
    -- and in float64 -- the member with the larger raw norm wins, whichever index it has."""
    generator = torch.Generator().manual_seed(1)
    direction = torch.rand(3, 40, generator=generator) ** 4
    for small, large in ((0, 1), (1, 0)):
        maps = torch.zeros(1, 4, 40)
        maps[0, small], maps[0, large] = 0.3 * direction[0], 0.5 * direction[0]
        maps[0, 2], maps[0, 3] = direction[1], direction[2]
        assign, medoids = kmedoids_cosine(maps, 3)
        assert assign[0, 0] == assign[0, 1]
        assert large in medoids[0].tolist() and small not in medoids[0].tolist()


def test_kmedoids_properties():
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(11, 9, 30, generator=generator) ** 4
    assign, medoids = kmedoids_cosine(maps, 3)
    assert assign.shape == (11, 9) and medoids.shape == (11, 3)
    assert (medoids.diff(dim=1) > 0).all()
    rows = torch.arange(11)[:, None]
    assert torch.equal(assign[rows, medoids], torch.arange(3).expand(11, 3))  # each medoid in its own part
    # clustering is scale invariant per map (cosine) and ignores autograd
    scaled_assign, _ = kmedoids_cosine(maps.requires_grad_() * 1.0, 3)
    assert torch.equal(scaled_assign, assign)
    # float64 work precision: the input dtype and the chunk do not matter
    for other in (kmedoids_cosine(maps.double(), 3), kmedoids_cosine(maps, 3, chunk_size=1),
                  kmedoids_cosine(maps, 3, chunk_size=100)):
        assert torch.equal(other[0], assign) and torch.equal(other[1], medoids)
    with pytest.raises(ValueError, match="num_parts 10"):
        kmedoids_cosine(maps, 10)
    empty_assign, empty_medoids = kmedoids_cosine(maps[:0], 3)
    assert empty_assign.shape == (0, 9) and empty_medoids.shape == (0, 3)


def test_without_part_maps_heatmaps_and_gradients_unchanged(reference_fixture, reference_model_files):
    """set_part_maps(False): prompts are keys/values only in the last layer; same heatmaps and
    the same gradients of the training losses (which never read the part maps)."""
    config_path, checkpoint_path = reference_model_files
    cfg = load_config(config_path)
    images = reference_fixture["input"]
    outputs, grads, ffn_rows = [], [], []
    for part_maps in (True, False):
        model = build_model(cfg)
        load_checkpoint(model, checkpoint_path)
        set_part_maps(model.eval(), part_maps)
        last_ffn = model.channelformer.transformer.layers[-1].ffn
        handle = last_ffn.register_forward_pre_hook(lambda module, inputs: ffn_rows.append(inputs[0].shape[1]))
        output = model(images)
        handle.remove()
        loss = output.heatmaps.square().mean() + output.intermediate.square().mean()
        loss.backward()
        outputs.append(output)
        grads.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    full, skipped = outputs
    num_parts, num_joints = cfg.MODEL.NUM_BP, cfg.MODEL.NUM_JOINTS
    assert ffn_rows == [num_parts + num_joints, num_joints]      # the prompts' last FFN rows are skipped
    assert skipped.parts is None and full.parts.shape[1] == num_parts
    torch.testing.assert_close(skipped.heatmaps, full.heatmaps, atol=1e-6, rtol=0)
    torch.testing.assert_close(skipped.heatmaps, reference_fixture["outputs"]["heatmaps"], atol=1e-5, rtol=0)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-4, msg=name)


# ------------------------------------------------------------------ ablations and shapes
@pytest.mark.parametrize("pos", ["none", "sine", "sine-full", "learnable"])
@pytest.mark.parametrize("num_bp", [0, 4])
def test_variants_forward_backward(pos, num_bp):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(POS_EMBEDDING_TYPE=pos, NUM_BP=num_bp)).train()
    outputs = model(torch.randn(3, 3, 64, 64))
    assert outputs.intermediate.shape == outputs.heatmaps.shape == (3, 17, 16, 16)
    if num_bp:
        assert outputs.parts.shape == (3, 4, 16, 16)
    else:
        assert outputs.parts is None
    names = dict(model.named_parameters())
    assert ("channelformer.pos_embedding" in names) == (pos != "none")
    if pos == "learnable":
        assert names["channelformer.pos_embedding"].shape == (1, num_bp + 17, 64)
    loss = outputs.heatmaps.square().mean() + outputs.intermediate.mean()
    if num_bp:
        loss = loss + outputs.parts.mean()
    loss.backward()
    # every trainable parameter receives a gradient (DDP needs no find_unused_parameters)
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad
    frozen = sorted(n for n, p in model.named_parameters() if not p.requires_grad)
    expected = ["channelformer.pos_embedding"] if pos in ("sine", "sine-full") else []
    if num_bp:
        expected += ["channelformer.bp_embeddings", "channelformer.bp_to_embeddings.bias",
                     "channelformer.bp_to_embeddings.weight"]
    assert frozen == sorted(expected)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_part_maps_switch_any_depth(depth):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(TRANSFORMER_DEPTH=depth)).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full = model(images)
        skipped = set_part_maps(model, False)(images)
    assert full.parts.shape == (2, 4, 16, 16) and skipped.parts is None
    torch.testing.assert_close(skipped.heatmaps, full.heatmaps, atol=1e-6, rtol=0)


def test_sine_full_repeats_position_embedding():
    torch.manual_seed(0)
    full = build_model(tiny_cfg(POS_EMBEDDING_TYPE="sine-full")).eval()
    once = build_model(tiny_cfg(POS_EMBEDDING_TYPE="sine")).eval()
    once.load_state_dict(full.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(full(images).heatmaps, once(images).heatmaps)
        one_layer = tiny_cfg(POS_EMBEDDING_TYPE="sine-full", TRANSFORMER_DEPTH=1)
        full1, once1 = build_model(one_layer).eval(), build_model(
            tiny_cfg(POS_EMBEDDING_TYPE="sine", TRANSFORMER_DEPTH=1)).eval()
        once1.load_state_dict(full1.state_dict())
        assert torch.equal(full1(images).heatmaps, once1(images).heatmaps)


def test_mlp_head_branches():
    small = build_meta(tiny_cfg(DIM=16))   # 16 <= 0.5 * (256 // 8): two-layer head
    wide = build_meta(tiny_cfg(DIM=64))
    assert [tuple(p.shape) for p in small.channelformer.mlp_head.parameters()] == \
        [(16,), (16,), (32, 16), (32,), (32,), (32,), (256, 32), (256,)]
    assert [tuple(p.shape) for p in wide.channelformer.mlp_head.parameters()] == [(64,), (64,), (256, 64), (256,)]
    outputs = build_model(tiny_cfg(DIM=16)).eval()(torch.randn(1, 3, 64, 64))
    assert outputs.heatmaps.shape == (1, 17, 16, 16)


def test_non_square_input_and_batch_sizes():
    cfg = tiny_cfg(IMAGE_SIZE=[64, 96], HEATMAP_SIZE=[16, 24], PATCH_SIZE=[16, 24], NUM_JOINTS=5, NUM_BP=2)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for batch in (1, 9):
            outputs = model(torch.randn(batch, 3, 96, 64))
            assert outputs.heatmaps.shape == outputs.intermediate.shape == (batch, 5, 24, 16)
            assert outputs.parts.shape == (batch, 2, 24, 16)
    with pytest.raises(ValueError, match="MODEL.IMAGE_SIZE"):
        model(torch.randn(1, 3, 64, 64))


def test_config_errors():
    with pytest.raises(ValueError, match=r"PATCH_SIZE \[8, 8\].*HEATMAP_SIZE \[16, 16\]"):
        build_meta(tiny_cfg(PATCH_SIZE=[8, 8]))
    with pytest.raises(ValueError, match=r"HEATMAP_SIZE \[32, 32\].*IMAGE_SIZE \[64, 64\]"):
        build_meta(tiny_cfg(HEATMAP_SIZE=[32, 32], PATCH_SIZE=[32, 32]))
    with pytest.raises(ValueError, match="MODEL.NAME"):
        build_meta(tiny_cfg(NAME="tokenpose"))
    with pytest.raises(ValueError, match="POS_EMBEDDING_TYPE"):
        build_meta(tiny_cfg(POS_EMBEDDING_TYPE="rope"))
    with pytest.raises(ValueError, match="NUM_BP 18"):
        build_meta(tiny_cfg(NUM_BP=18))
    with pytest.raises(ValueError, match="MODEL.DIM 63 must be even"):
        build_meta(tiny_cfg(DIM=63, TRANSFORMER_HEADS=1))
    with pytest.raises(ValueError, match="divisible by MODEL.TRANSFORMER_HEADS"):
        build_meta(tiny_cfg(TRANSFORMER_HEADS=3))


def test_pose_hrnet_baseline_shares_backbone(reference_fixture, reference_model):
    kitpose, _ = reference_model
    baseline = build_model(tiny_cfg(NAME="pose_hrnet")).eval()
    backbone = {key[len("pre_feature."):]: value for key, value in reference_fixture["state_dict"].items()
                if key.startswith("pre_feature.")}
    baseline.load_state_dict(backbone)  # plain HRNet keys, no prefix
    with torch.no_grad():
        outputs = baseline(reference_fixture["input"][:3])
        reference = kitpose(reference_fixture["input"][:3])
    assert outputs.intermediate is None and outputs.parts is None
    assert torch.equal(outputs.heatmaps, reference.intermediate)


# ------------------------------------------------------------------ ImageNet initialisation
def _imagenet_like_file(path, backbone_cfg):
    """An ImageNet classification HRNet checkpoint: backbone keys plus classifier keys that must not load."""
    donor = build_model(backbone_cfg)
    state = {key: torch.randn_like(value) if value.is_floating_point() else value
             for key, value in donor.state_dict().items() if not key.startswith("final_layer")}
    state["incre_modules.0.0.conv1.weight"] = torch.randn(32, 8, 1, 1)
    state["downsamp_modules.0.0.weight"] = torch.randn(256, 128, 3, 3)
    state["final_layer.0.weight"] = torch.randn(2048, 1024, 1, 1)
    state["classifier.weight"] = torch.randn(1000, 2048)
    torch.save(state, path)
    return state


def test_imagenet_init_loads_selected_layers(tmp_path, caplog):
    path = tmp_path / "hrnet_tiny_imagenet.pth"
    state = _imagenet_like_file(path, tiny_cfg(NAME="pose_hrnet"))
    layers = ["conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2", "stage3",
              "transition3", "stage4"]
    cfg = tiny_cfg(INIT_WEIGHTS=True, PRETRAINED=str(path))
    cfg.defrost()
    cfg.MODEL.EXTRA.PRETRAINED_LAYERS = layers
    cfg.freeze()
    with caplog.at_level(logging.INFO, logger="kitpose.models.checkpoint"):
        model = build_model(cfg, is_train=True)
    own = model.pre_feature.state_dict()
    expected = [key for key in own if key.split(".")[0] in layers]
    assert all(torch.equal(own[key], state[key]) for key in expected)
    assert "final_layer.weight" not in state and own["final_layer.weight"].std() < 0.01  # normal(0.001) init
    assert f"loaded {len(expected)} ImageNet tensors" in caplog.text
    # a layer filter keeps the rest at the training init
    cfg.defrost()
    cfg.MODEL.EXTRA.PRETRAINED_LAYERS = ["conv1"]
    cfg.freeze()
    partial = build_model(cfg, is_train=True).pre_feature
    assert torch.equal(partial.conv1.weight, state["conv1.weight"])
    assert partial.conv2.weight.std() < 0.01 and torch.equal(partial.bn1.weight, torch.ones(64))


def test_imagenet_init_errors(tmp_path):
    missing = tmp_path / "models/pytorch/imagenet/hrnet_w32-36af842e.pth"
    with pytest.raises(FileNotFoundError, match="models/pytorch/imagenet") as err:
        build_model(tiny_cfg(INIT_WEIGHTS=True, PRETRAINED=str(missing)), is_train=True)
    assert str(missing) in str(err.value)
    unrelated = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, unrelated)
    with pytest.raises(ValueError, match="no tensor matches") as err:
        build_model(tiny_cfg(INIT_WEIGHTS=True, PRETRAINED=str(unrelated)), is_train=True)
    assert str(unrelated) in str(err.value)
    # not training: no file needed
    build_model(tiny_cfg(INIT_WEIGHTS=True, PRETRAINED=str(missing)), is_train=False)


# ------------------------------------------------------------------ complexity
def test_macs_agree_with_paper():
    """Paper (AP-10K W32 256x256): 68.4M parameters, 9.51 GFLOPs as HRNet's summary tool prints them."""
    cfg = load_config(str(EXPERIMENTS / "ap10k/kitpose/kitpose_w32_256x256.yaml"))
    torch.manual_seed(0)
    model = build_model(cfg)
    assert abs(count_parameters(model)[1] / 1e6 - 68.4) / 68.4 < 0.02
    macs = count_macs(model, (256, 256))
    assert abs(macs["published_gflops"] - 9.51) / 9.51 < 0.02
    # the full count adds the token-wise linear layers: 17 x 4096 x 1024 for kpt_to_embedding alone
    assert macs["per_type"]["linear"] > 17 * 4096 * 1024
    assert 10.5e9 < macs["total"] < 11.2e9
    assert sum(macs["per_child"].values()) == macs["total"]
    assert macs["per_child"]["pre_feature"] == macs["per_child_type"]["pre_feature"]["conv"]
    # without part maps the last layer skips the 4 prompts' output projection, FFN and head rows
    # and their attention queries: 4 x (1024^2 + 2 x 1024 x 3072 + 1024 x 4096) + 2 x 4 x 21 x 1024
    skipped = count_macs(set_part_maps(model, False), (256, 256))
    expected = 4 * (1024 ** 2 + 2 * 1024 * 3072 + 1024 * 4096) + 2 * 4 * 21 * 1024
    assert macs["total"] - skipped["total"] == expected
    assert skipped["per_child"]["pre_feature"] == macs["per_child"]["pre_feature"]
