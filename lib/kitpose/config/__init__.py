"""Configuration: yacs defaults (`default.py`) plus YAML and command-line overrides."""
import ast
import logging
import os

import yaml
from yacs.config import CfgNode as CN

from .default import get_default_config
from .published import ALIASES, PUBLISHED_ONLY_KEYS, PUBLISHED_ONLY_SECTIONS
from .ranges import range_errors

__all__ = ["load_config", "get_default_config", "ConfigError", "PUBLISHED_ONLY_KEYS", "CENTROID_MODEL",
           "is_centroid_model"]

CENTROID_MODEL = "centroid_hrnet"   # MODEL.NAME of the detection stage (whole frames, one anchor map)


def is_centroid_model(cfg):
    """Whether `cfg` describes the centroid detection stage rather than a pose model."""
    return cfg.MODEL.NAME == CENTROID_MODEL

logger = logging.getLogger(__name__)


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


def _parse_string(value):
    """A string for a string key stays a string ('' stays '', '2017' stays '2017'); quotes are stripped."""
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return parsed if isinstance(parsed, str) else value


def _coerce(default, value, full_key, source):
    """Return `value` converted to the type of `default`, or raise naming the key."""
    if isinstance(default, CN):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key {full_key} must be a mapping, got {value!r}")
        return value
    if isinstance(default, str) and isinstance(value, str):
        return _parse_string(value)
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


def _published_only(node, key, value, full_key, prefix, source):
    """Merge a key that only the published files carry (see published.py); False if it is not one."""
    if full_key in PUBLISHED_ONLY_SECTIONS and key not in node:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key {full_key} must be a mapping, got {value!r}")
        for child, child_value in value.items():
            child_key = f"{full_key}.{child}"
            if child_key not in PUBLISHED_ONLY_KEYS:
                raise ConfigError(f"{source}: unknown config key {child_key}")
            _published_only(node, child, child_value, child_key, prefix, source)
        return True
    if full_key not in PUBLISHED_ONLY_KEYS:
        return False
    entry = PUBLISHED_ONLY_KEYS[full_key]
    value = _coerce(entry.default, value, full_key, source)
    if full_key in ALIASES:
        target = ALIASES[full_key]
        parent, leaf = target.rsplit(".", 1)
        assert parent + "." == prefix, "an alias names a key of its own section"
        node[leaf] = _coerce(node[leaf], value, target, source)
    elif not entry.accepted(value):
        raise ConfigError(f"{source}: {full_key} = {value!r} is not supported ({entry.note})")
    elif not entry.ignorable(value):
        logger.warning("%s: %s = %r is ignored here (published code: %s)", source, full_key, value, entry.note)
    else:
        logger.debug("%s: %s = %r dropped (published code: %s)", source, full_key, value, entry.note)
    return True


def _check_aliases(pairs, source):
    """`pairs`: {full key: value} given by one source; an alias and its key must agree."""
    for alias, target in ALIASES.items():
        if alias in pairs and target in pairs:
            default = PUBLISHED_ONLY_KEYS[alias].default
            a = _coerce(default, pairs[alias], alias, source)
            b = _coerce(default, pairs[target], target, source)
            if a != b:
                raise ConfigError(f"{source}: {alias} ({a!r}) and {target} ({b!r}) both set the learning "
                                  f"rate and disagree; give one of them")


def _merge(node, updates, prefix, source):
    for key, value in updates.items():
        full_key = f"{prefix}{key}"
        if key not in node and _published_only(node, key, value, full_key, prefix, source):
            continue
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
    _check_aliases({f"{section}.{key}": value for section, keys in updates.items() if isinstance(keys, dict)
                    for key, value in keys.items()}, yaml_path)
    _merge(cfg, updates, "", yaml_path)


def merge_opts(cfg, opts):
    """Merge command-line `KEY VALUE` pairs (e.g. ['TRAIN.LR', '0.001']) into `cfg` in place."""
    opts = list(opts or [])
    if len(opts) % 2:
        raise ConfigError(f"command-line overrides must be KEY VALUE pairs, got {opts}")
    _check_aliases(dict(zip(opts[0::2], opts[1::2])), "command line")
    for full_key, value in zip(opts[0::2], opts[1::2]):
        *parents, leaf = full_key.split(".")
        section = ".".join(parents)
        if full_key in PUBLISHED_ONLY_KEYS and (section not in cfg or leaf not in cfg[section]):
            _published_only(cfg.get(section), leaf, value, full_key, section + ".", "command line")
            continue
        node = cfg
        for i, part in enumerate(parents):
            if part not in node or not isinstance(node[part], CN):
                raise ConfigError(f"command line: unknown config key {'.'.join(parents[:i + 1])}")
            node = node[part]
        _merge(node, {leaf: value}, ".".join(parents) + "." if parents else "", "command line")


def load_config(yaml_path=None, opts=None):
    """Defaults <- YAML file <- command-line overrides; returns a frozen CfgNode.

    Unknown keys raise ConfigError naming the key and the file; a value whose type
    does not fit the default names the key, a value out of its range (ranges.py) names the key, the
    value and the allowed range (all such values in one error). Keys that only the published YAML files
    carry are accepted as published.py says (TRAIN.MODEL_LR sets TRAIN.LR; the others
    are dropped, with a warning where the published code acted on their value).
    CFG_NAME is set to the YAML file stem.
    """
    cfg = get_default_config()
    if yaml_path:
        merge_yaml(cfg, yaml_path)
        cfg.CFG_NAME = os.path.splitext(os.path.basename(yaml_path))[0]
    merge_opts(cfg, opts)
    command_line = {ALIASES.get(key, key) for key in list(opts or [])[0::2]}
    errors = range_errors(cfg, lambda key: "command line" if key in command_line else yaml_path or "defaults")
    if errors:
        raise ConfigError("\n".join(errors))
    cfg.freeze()
    return cfg
