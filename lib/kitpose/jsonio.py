"""Reading the project's JSON inputs (annotations, detections, metainfo, results) with clear errors."""
import json
import os


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
