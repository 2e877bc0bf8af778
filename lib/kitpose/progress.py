"""Progress bars that keep a log written to a file readable.

On a terminal `progress` is a tqdm bar. When the stream is not a terminal (nohup, a cluster's
job log, `> run.log 2>&1`) tqdm's carriage-return redraws would add a line's worth of bytes at
every update, so there it writes `LINES_PER_BAR` plain lines, one per tenth of the work (one at
most every `UNSIZED_LINE_SECONDS` when the total is unknown). Log lines go through `write` so they do not
break a bar on a terminal.
"""
import sys
import time

from tqdm import tqdm

__all__ = ["LINES_PER_BAR", "UNSIZED_LINE_SECONDS", "LineProgress", "progress", "write"]

LINES_PER_BAR = 10
UNSIZED_LINE_SECONDS = 60.0


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress(iterable=None, total=None, desc="", unit="it", disable=False, leave=False, stream=None):
    """A progress bar over ``iterable`` (or updated by hand with ``update``) on ``stream`` (default
    stderr): tqdm on a terminal, a `LineProgress` otherwise. Both offer iteration, ``update(n)``,
    ``set_postfix(**values)`` and ``close()``."""
    stream = sys.stderr if stream is None else stream
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if _is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, disable=disable,
                    file=stream)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, disable=disable, stream=stream)


def write(message, stream=None):
    """Print one line without breaking an active bar."""
    tqdm.write(message, file=sys.stderr if stream is None else stream)


class LineProgress:
    """Plain progress lines: 'desc: 30% (300/1000 it, 12.5 it/s) loss=1.2e-03', one per crossed
    1 / `LINES_PER_BAR` of ``total``; without a total, one at most every `UNSIZED_LINE_SECONDS` and one at
    ``close``."""

    def __init__(self, iterable=None, total=None, desc="", unit="it", disable=False, stream=None):
        self.iterable = iterable
        self.total = total or None
        self.desc = desc
        self.unit = unit
        self.disable = disable
        self.stream = sys.stderr if stream is None else stream
        self.count = 0
        self.postfix = ""
        self.start = time.monotonic()
        self.last_line_time = self.start
        self.lines_written = 0
        self.count_at_last_line = 0

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def update(self, n=1):
        self.count += n
        if self.disable:
            return
        if self.total is not None:
            steps_done = min(self.count, self.total) * LINES_PER_BAR // self.total
            if steps_done > self.lines_written:
                self.lines_written = steps_done
                self._line()
        elif time.monotonic() - self.last_line_time >= UNSIZED_LINE_SECONDS:
            self._line()

    def set_postfix(self, **values):
        self.postfix = " ".join(f"{name}={value}" for name, value in values.items())

    def close(self):
        if not self.disable and self.total is None and self.count > self.count_at_last_line:
            self._line()
        self.disable = True

    def _line(self):
        elapsed = time.monotonic() - self.start
        rate = f"{self.count / elapsed:.1f} {self.unit}/s" if elapsed > 0 else f"- {self.unit}/s"
        if self.total is not None:
            done = f"{100 * self.count / self.total:.0f}% ({self.count}/{self.total} {self.unit}, {rate})"
        else:
            done = f"{self.count} {self.unit} in {elapsed:.0f} s ({rate})"
        prefix = f"{self.desc}: " if self.desc else ""
        suffix = f" {self.postfix}" if self.postfix else ""
        print(f"{prefix}{done}{suffix}", file=self.stream, flush=True)
        self.last_line_time = time.monotonic()
        self.count_at_last_line = self.count
