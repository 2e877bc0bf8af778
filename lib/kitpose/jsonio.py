"""The project's JSON files: reading inputs (annotations, detections, metainfo, results) with clear errors,
writing outputs (results, metrics, annotations) atomically; `atomic_write`, which checkpoints use too."""
import json
import os
import re
import secrets
from contextlib import contextmanager

# `.<file name>.<8 characters>.tmp`: atomic_write's temporaries (and the tempfile.mkstemp names of earlier
# versions); one left behind was being written by a process that was killed
TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-z_]{8}\.tmp$")


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


@contextmanager
def atomic_write(path, binary=False):
    """A file object for writing ``path`` (folders created): a temporary file beside it, flushed to
    disk and renamed over ``path`` when the block ends without an error (removed when it raises),
    so an interrupted write never leaves a truncated file behind. The file gets the permissions of
    the user's umask, as open() would give it."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    while True:
        tmp_name = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def leftover_temporaries(folder):
    """The atomic_write temporaries in ``folder`` and its sub-folders, sorted."""
    return sorted(os.path.join(parent, name) for parent, _, names in os.walk(folder) for name in names
                  if TEMPORARY_NAME.match(name))


def write_json(path, data, **dump_options):
    """Write ``data`` as JSON to ``path`` with `atomic_write`, so a reader never sees a half-written
    file. ``dump_options`` go to json.dump."""
    path = os.fspath(path)
    with atomic_write(path) as f:
        json.dump(data, f, **dump_options)
    return path
