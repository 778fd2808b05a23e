"""Retention: rejected files (sealed) and their reports are purged after a retention period."""

from __future__ import annotations

import logging
import os
import time

from publieksdata.settings import DataHome, PublieksdataError

DEFAULT_RETENTION_DAYS = 30
log = logging.getLogger(__name__)


def retention_days() -> int:
    raw = os.environ.get("PUBLIEKSDATA_REJECTED_RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS))
    try:
        days = int(raw)
    except ValueError:
        raise PublieksdataError(
            f"PUBLIEKSDATA_REJECTED_RETENTION_DAYS must be a whole number of days, got {raw!r}"
        ) from None
    if days < 0:
        raise PublieksdataError("PUBLIEKSDATA_REJECTED_RETENTION_DAYS cannot be negative")
    return days


def purge_rejected(home: DataHome, days: int | None = None, now: float | None = None) -> int:
    """Delete files in rejected/ older than ``days``; returns how many were deleted."""
    days = retention_days() if days is None else days
    cutoff = (now if now is not None else time.time()) - days * 86_400
    purged = 0
    if not home.rejected.exists():
        return 0
    for path in sorted(home.rejected.rglob("*")):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink()
            purged += 1
    for folder in sorted((p for p in home.rejected.iterdir() if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    log.info("purged %s rejected file(s) older than %s days", purged, days)
    return purged
