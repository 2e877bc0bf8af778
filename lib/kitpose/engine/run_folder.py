"""One training run at a time in an output folder, and what a killed run left there.

A run holds its output folder through the lock file ``train.lock`` (JSON: host, pid, start time),
created atomically (O_EXCL) by rank 0 before anything is written and removed at the end. A second
run into the same folder (the same config started twice, a re-submitted cluster job) stops with
RunFolderBusy naming the folder and the holder. The holder refreshes the file's modification time
every HEARTBEAT_SECONDS, so a lock is stale, and taken over with a warning, when its process is
gone from this host, or when it was not refreshed for STALE_AFTER_SECONDS (a run on another
host that died, e.g. on a cluster node): resuming after a crash (AUTO_RESUME) needs no clean-up.

Holding the folder makes it safe to delete the temporaries of atomic writes that a killed run
left (``.checkpoint.pth.<8 characters>.tmp``, ...); they are removed and logged (except one written
to in the last minute, which tools/test.py, not locked out, may be writing).
"""
import json
import logging
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from kitpose.jsonio import leftover_temporaries

from .distributed import all_gather_objects

logger = logging.getLogger(__name__)

LOCK_NAME = "train.lock"
HEARTBEAT_SECONDS = 60.0
STALE_AFTER_SECONDS = 600.0
IN_USE_SECONDS = 60.0


class RunFolderBusy(RuntimeError):
    """Another training run holds the output folder."""


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _pid_namespace():
    """The process-id namespace (Linux): containers sharing a host name can still not see each other's pids."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _describe(holder, age):
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {holder.get('started', '?')}, "
            f"lock refreshed {age:.0f} s ago")


class RunFolderLock:
    """The lock file of `folder`: `acquire` (RunFolderBusy when a live run holds it) and `release`."""

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self.record = {"host": socket.gethostname(), "pid_namespace": _pid_namespace(), "pid": os.getpid(),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        self._stop = threading.Event()
        self._heartbeat = None

    def _read(self, path=None):
        """(holder record, seconds since the holder refreshed the lock); None when there is no lock file."""
        path = path or self.path
        try:
            age = time.time() - path.stat().st_mtime
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(text)
        except ValueError:  # half-written by a process killed at that moment
            holder = {}
        return (holder if isinstance(holder, dict) else {}), age

    def _stale(self, holder, age):
        """Why the holder is gone ('' while it may be running)."""
        same_host = all(holder.get(key) == self.record[key] for key in ("host", "pid_namespace"))
        pid = holder.get("pid")
        if same_host and isinstance(pid, int) and (pid == os.getpid() or not _process_exists(pid)):
            return f"process {pid} no longer runs on this host"
        if age > STALE_AFTER_SECONDS:
            return f"the lock was not refreshed for {age / 60:.0f} min"
        return ""

    def _create(self):
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(self.record, f)
        return True

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self._create():
            found = self._read()
            if found is None:  # released in the meantime
                continue
            holder, age = found
            why = self._stale(holder, age)
            if not why:
                raise RunFolderBusy(
                    f"output folder {self.path.parent} is in use by another training run ({_describe(holder, age)}; "
                    f"{self.path}). Wait for it to end, give this run another OUTPUT_DIR (--modelDir), or, if "
                    f"that run no longer runs, delete {self.path}.")
            self._take_over(holder, age, why)
        self._heartbeat = threading.Thread(target=self._refresh, name="run-folder-lock", daemon=True)
        self._heartbeat.start()

    def _take_over(self, holder, age, why):
        # rename first: of several runs taking over at once only one moves the stale file away
        moved = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
        try:
            os.replace(self.path, moved)
        except FileNotFoundError:
            return
        found = self._read(moved)
        if found is not None and found[0] != holder:  # another run took over first: its lock goes back
            try:
                os.link(moved, self.path)
            except FileExistsError:
                pass
            os.unlink(moved)
            return
        os.unlink(moved)
        logger.warning("took over the stale lock %s of a training run that ended without releasing it (%s; %s)",
                       self.path, _describe(holder, age), why)

    def _refresh(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except OSError as err:
                logger.warning("cannot refresh the lock %s (%s); another run may take the folder over", self.path,
                               err)
                return

    def release(self):
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        found = self._read()
        if found is not None and found[0] == self.record:
            self.path.unlink()


def remove_leftover_temporaries(folder, now=None):
    """Delete (and log) the temporaries of atomic writes interrupted by a kill; returns their paths. One
    written to in the last IN_USE_SECONDS is left: tools/test.py may be writing its results there."""
    now = time.time() if now is None else now
    removed = []
    for path in leftover_temporaries(folder):
        status = os.stat(path)
        if now - status.st_mtime < IN_USE_SECONDS:
            logger.info("left %s: written to %.0f s ago, perhaps by a process still running", path,
                        now - status.st_mtime)
            continue
        os.unlink(path)
        removed.append(path)
        logger.warning("removed %s (%.1f MB), the unfinished write of a process that was killed; the file it "
                       "was to replace is intact", path, status.st_size / 1e6)
    return removed


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


@contextmanager
def _sigterm_as_exit():
    """SIGTERM (a cluster pre-empting the job, torchrun stopping its workers) ends the process through
    Python's clean-up, so the lock is released and an unfinished save removes its temporary; a handler
    the program installed itself is kept."""
    replace = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    if replace:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        if replace:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def hold_run_folder(folder, context):
    """Hold `folder` for a training run: rank 0 takes the lock and removes leftover temporaries; every rank
    raises the same RunFolderBusy when the folder is taken (so no rank waits for the others). SIGTERM
    ends the run as Ctrl-C does, releasing the folder."""
    with _sigterm_as_exit():
        yield from _hold(folder, context)


def _hold(folder, context):
    lock = RunFolderLock(folder) if context.is_main else None
    refusal = None
    if lock is not None:
        try:
            lock.acquire()
        except RunFolderBusy as err:
            refusal = str(err)
    refusal = all_gather_objects(refusal, context)[0]
    if refusal is not None:
        raise RunFolderBusy(refusal)
    try:
        if lock is not None:
            remove_leftover_temporaries(folder)
        yield
    finally:
        if lock is not None:
            lock.release()
