"""The project's JSON files: reading inputs (annotations, detections, metainfo, results) with clear errors,
writing outputs (results, metrics, annotations) atomically."""
import json
import os
import tempfile


def read_json(path, what, hint="", error_type=ValueError):
    """Parsed JSON of ``path``. A missing file raises FileNotFoundError naming ``what``, the path and
    ``hint``; invalid JSON raises ``error_type`` naming the path."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}{hint}")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise error_type(f"{path}: not valid JSON: {err}") from err


def write_json(path, data, **dump_options):
    """Write ``data`` as JSON to ``path`` (folders created) through a temporary file renamed into
    place, so a reader never sees a half-written file. ``dump_options`` go to json.dump."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, **dump_options)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path
