import pytest

from kitpose.config import ConfigError, load_config


def test_reference_yaml_loads(reference_fixture, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(reference_fixture["config_yaml"])
    cfg = load_config(str(path), ["TRAIN.LR", "0.01", "GPUS", "(0,1)"])
    assert cfg.MODEL.PATCH_SIZE == [16, 16]
    assert cfg.MODEL.TRANSFORMER_HEADS == 2
    assert cfg.TRAIN.LR == 0.01
    assert tuple(cfg.GPUS) == (0, 1)
    assert cfg.CFG_NAME == "tiny"
    assert cfg.is_frozen()


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("MODEL:\n  NUM_JOINTZ: 17\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert "MODEL.NUM_JOINTZ" in str(err.value) and str(path) in str(err.value)


def test_wrong_type_names_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("TRAIN:\n  LR: fast\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert "TRAIN.LR" in str(err.value)


def test_unknown_override_names_key():
    with pytest.raises(ConfigError, match="TRAIN.LRR"):
        load_config(None, ["TRAIN.LRR", "1"])


def test_int_accepted_for_float():
    cfg = load_config(None, ["TRAIN.LR", "1"])
    assert isinstance(cfg.TRAIN.LR, float) and cfg.TRAIN.LR == 1.0


def test_yaml_spellings_on_command_line():
    cfg = load_config(None, ["TEST.FLIP_TEST", "false", "DATASET.CUTMIX", "true", "TRAIN.LR", "1e-3"])
    assert cfg.TEST.FLIP_TEST is False and cfg.DATASET.CUTMIX is True
    assert cfg.TRAIN.LR == 1e-3
