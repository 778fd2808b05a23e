"""One job at a time on a data home: the warehouse lock (``<home>/warehouse.lock``).

Runs launched by Dagster (sensor, schedule, UI) already queue one at a time
(``max_concurrent_runs: 1``), but ``publieksdata run``, ``erase`` and ``keys rotate`` execute
in their own process, outside that queue. So every step that writes the warehouse -- intake,
privacy, reference data, the dbt build, publication -- holds an exclusive ``flock`` on this
file, and the CLI holds it for its whole command. Two jobs therefore never interleave inside a
step; a CLI run never interleaves with anything. A second comer waits (up to
``PUBLIEKSDATA_LOCK_WAIT_SECONDS``, default 1800) and then stops with a clear "in use" error;
nothing is half done. The kernel drops the lock when the holder dies, however it dies.

The lock is re-entrant within a process: the steps of an in-process run find it already held
by the CLI that started them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from publieksdata.settings import DataHome, PublieksdataError

log = logging.getLogger(__name__)

LOCK_NAME = "warehouse.lock"
DEFAULT_WAIT_SECONDS = 1800.0
_POLL_SECONDS = 0.2

_guard = threading.Lock()
_held: dict[str, list[int]] = {}  # lock path -> [fd, depth] while this process holds it


def lock_wait_seconds() -> float:
    """How long a job waits for a running one (``PUBLIEKSDATA_LOCK_WAIT_SECONDS``)."""
    raw = os.environ.get("PUBLIEKSDATA_LOCK_WAIT_SECONDS", str(DEFAULT_WAIT_SECONDS))
    try:
        seconds = float(raw)
    except ValueError:
        raise PublieksdataError(
            f"PUBLIEKSDATA_LOCK_WAIT_SECONDS must be a number of seconds, got {raw!r}"
        ) from None
    return max(seconds, 0.0)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"


@contextlib.contextmanager
def warehouse_lock(home: DataHome, what: str, wait: float | None = None) -> Iterator[None]:
    """Hold the data home's warehouse lock while ``what`` runs (waits up to ``wait`` seconds)."""
    home.root.mkdir(parents=True, exist_ok=True)
    path = str(home.root / LOCK_NAME)
    with _guard:
        if path in _held:
            _held[path][1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[path][1] -= 1
        return
    wait = lock_wait_seconds() if wait is None else wait
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PublieksdataError(
                        f"the warehouse is in use by {_holder(fd)}; wait for that job to finish "
                        "and run again"
                    ) from None
                if not told:
                    log.warning("waiting for the warehouse: in use by %s", _holder(fd))
                    told = True
                time.sleep(_POLL_SECONDS)
        os.ftruncate(fd, 0)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"{what} (pid {os.getpid()}, since {stamp})".encode(), 0)
        with _guard:
            _held[path] = [fd, 1]
        try:
            yield
        finally:
            with _guard:
                del _held[path]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
