"""Console logging and the errors a user can fix, shared by every command-line tool.

A tool prints one clear line (no traceback) for the errors in ``USER_ERRORS``; log lines go
through `kitpose.progress.write` so they do not break progress bars.
"""
import logging
import sys

from kitpose.config import ConfigError
from kitpose.datasets import AnnotationError, ImageReadError, MetainfoError
from kitpose.models import CheckpointError
from kitpose.progress import write

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
USER_ERRORS = (ConfigError, CheckpointError, FileNotFoundError, AnnotationError, MetainfoError, ImageReadError)


class TqdmConsoleHandler(logging.StreamHandler):
    """Console lines printed so that they do not break progress bars."""

    def emit(self, record):
        try:
            write(self.format(record), self.stream)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def add_console_handler(fmt="%(levelname)s %(name)s: %(message)s", level=logging.INFO):
    """A console handler on the root logger (returned, for removal when the command ends)."""
    root = logging.getLogger()
    handler = TqdmConsoleHandler()
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def run_command(run, args, errors=USER_ERRORS):
    """``run(args)`` for a report-printing tool: logging at INFO with ``args.verbose``, else WARNING;
    an error in ``errors`` is printed as one line and gives None (the tool then exits 1)."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=LOG_FORMAT)
    try:
        return run(args)
    except errors as err:
        print(f"error: {err}", file=sys.stderr)
        return None
