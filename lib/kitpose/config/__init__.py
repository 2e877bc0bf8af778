"""Configuration: yacs defaults (`default.py`) plus YAML and command-line overrides."""
import ast
import os

import yaml
from yacs.config import CfgNode as CN

from .default import get_default_config

__all__ = ["load_config", "get_default_config", "ConfigError"]


class ConfigError(ValueError):
    """A YAML file or override does not fit the known keys or their types."""


def _parse_value(value):
    """Command-line values arrive as strings; YAML strings such as '(0,1)' are literals too."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass
    try:  # YAML spellings typed on the command line: true/false, null, 1e-3
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _coerce(default, value, full_key, source):
    """Return `value` converted to the type of `default`, or raise naming the key."""
    if isinstance(default, CN):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key {full_key} must be a mapping, got {value!r}")
        return value
    value = _parse_value(value)
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return type(default)(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return type(default)([value])  # 'GPUS: 0' in a YAML means one GPU
    raise ConfigError(
        f"{source}: key {full_key} expects {type(default).__name__} "
        f"(default {default!r}), got {type(value).__name__} {value!r}")


def _merge(node, updates, prefix, source):
    for key, value in updates.items():
        full_key = f"{prefix}{key}"
        if key not in node:
            if node.is_new_allowed():
                node[key] = CN(value, new_allowed=True) if isinstance(value, dict) else _parse_value(value)
                continue
            raise ConfigError(f"{source}: unknown config key {full_key}")
        default = node[key]
        value = _coerce(default, value, full_key, source)
        if isinstance(default, CN):
            _merge(default, value, full_key + ".", source)
        else:
            node[key] = value


def merge_yaml(cfg, yaml_path):
    """Merge one YAML file into `cfg` in place."""
    if not os.path.isfile(yaml_path):
        raise FileNotFoundError(f"config file not found: {yaml_path}")
    with open(yaml_path) as f:
        try:
            updates = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{yaml_path}: not valid YAML: {err}") from err
    if not isinstance(updates, dict):
        raise ConfigError(f"{yaml_path}: top level must be a mapping of config keys")
    _merge(cfg, updates, "", yaml_path)


def merge_opts(cfg, opts):
    """Merge command-line `KEY VALUE` pairs (e.g. ['TRAIN.LR', '0.001']) into `cfg` in place."""
    opts = list(opts or [])
    if len(opts) % 2:
        raise ConfigError(f"command-line overrides must be KEY VALUE pairs, got {opts}")
    for full_key, value in zip(opts[0::2], opts[1::2]):
        *parents, leaf = full_key.split(".")
        node = cfg
        for i, part in enumerate(parents):
            if part not in node or not isinstance(node[part], CN):
                raise ConfigError(f"command line: unknown config key {'.'.join(parents[:i + 1])}")
            node = node[part]
        _merge(node, {leaf: value}, ".".join(parents) + "." if parents else "", "command line")


def load_config(yaml_path=None, opts=None):
    """Defaults <- YAML file <- command-line overrides; returns a frozen CfgNode.

    Unknown keys raise ConfigError naming the key and the file; a value whose type
    does not fit the default names the key. CFG_NAME is set to the YAML file stem.
    """
    cfg = get_default_config()
    if yaml_path:
        merge_yaml(cfg, yaml_path)
        cfg.CFG_NAME = os.path.splitext(os.path.basename(yaml_path))[0]
    merge_opts(cfg, opts)
    cfg.freeze()
    return cfg
