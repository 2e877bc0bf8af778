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


def test_misspelt_model_extra_key_is_refused(tmp_path):
    """MODEL.EXTRA is strict: HRNet's structure keys are known, a misspelling is an error, not ignored."""
    path = tmp_path / "extra.yaml"
    path.write_text("MODEL:\n  EXTRA:\n    FINAL_CONV_KERNAL: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert "MODEL.EXTRA.FINAL_CONV_KERNAL" in str(err.value) and str(path) in str(err.value)
    with pytest.raises(ConfigError, match=r"MODEL\.EXTRA\.STAGE2\.NUM_BLOCK\b"):
        load_config(None, ["MODEL.EXTRA.STAGE2.NUM_BLOCK", "[1, 1]"])
    assert load_config(None, ["MODEL.EXTRA.FINAL_CONV_KERNEL", "3"]).MODEL.EXTRA.FINAL_CONV_KERNEL == 3


def test_unsupported_target_type_is_refused():
    with pytest.raises(ConfigError, match=r"MODEL\.TARGET_TYPE = 'offset' is not supported"):
        load_config(None, ["MODEL.TARGET_TYPE", "offset"])
