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


@pytest.mark.parametrize("key, value, allowed", [
    ("TRAIN.BATCH_SIZE_PER_GPU", "-4", ">= 1"),
    ("TRAIN.BATCH_SIZE_PER_GPU", "0", ">= 1"),
    ("TEST.BATCH_SIZE_PER_GPU", "0", ">= 1"),
    ("TRAIN.LR", "-0.5", "> 0"),
    ("WORKERS", "-1", ">= 0"),
    ("MODEL.SIGMA", "0", "> 0"),
    ("MODEL.NUM_JOINTS", "0", ">= 1"),
    ("MODEL.IMAGE_SIZE", "[192, 0]", "each value must be >= 1"),
    ("DATASET.CUTMIX_PROB", "1.5", "in [0, 1]"),
    ("MODEL.DROPOUT", "1.0", "in [0, 1)"),
])
def test_value_out_of_range_names_key_value_and_range(key, value, allowed):
    with pytest.raises(ConfigError) as err:
        load_config(None, [key, value])
    message = str(err.value)
    assert message.startswith(f"command line: {key} = ") and allowed in message


def test_out_of_range_value_in_a_yaml_names_the_file_and_every_bad_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("TRAIN:\n  LR: -0.1\n  WD: -1\nTEST:\n  OKS_THRE: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and all(line.startswith(f"{path}: ") for line in lines)
    assert {line.split()[1] for line in lines} == {"TRAIN.LR", "TRAIN.WD", "TEST.OKS_THRE"}


def test_an_override_back_into_range_is_accepted(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("TRAIN:\n  LR: -0.1\n")
    assert load_config(str(path), ["TRAIN.LR", "0.01"]).TRAIN.LR == 0.01
    assert load_config(str(path), ["TRAIN.MODEL_LR", "0.01"]).TRAIN.LR == 0.01


def test_keys_that_depend_on_each_other():
    with pytest.raises(ConfigError, match=r"TRAIN.END_EPOCH = 0 must be greater than TRAIN.BEGIN_EPOCH = 0"):
        load_config(None, ["TRAIN.END_EPOCH", "0"])
    with pytest.raises(ConfigError, match=r"TRAIN.END_EPOCH = 5 must be greater than TRAIN.BEGIN_EPOCH = 5"):
        load_config(None, ["TRAIN.BEGIN_EPOCH", "5", "TRAIN.END_EPOCH", "5"])
    with pytest.raises(ConfigError, match=r"TEST.BLUR_KERNEL = 4 must be odd"):
        load_config(None, ["TEST.BLUR_KERNEL", "4"])
    with pytest.raises(ConfigError, match=r"MODEL.NUM_BP = 5 must be at most MODEL.NUM_JOINTS = 4"):
        load_config(None, ["MODEL.NUM_JOINTS", "4", "MODEL.NUM_BP", "5"])
