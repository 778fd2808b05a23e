"""Take deliveries from ``landing/<code>/`` into quarantine, validate them, reject or accept.

A delivery moves through: landing -> quarantine (original) -> validated
canonical Parquet in quarantine (then the original is deleted) -> the privacy
step. A rejected file moves to ``rejected/`` with its report and loads
nothing. The same bytes delivered again are recorded as a duplicate and load
nothing. Every step can be repeated after a crash: the ledger and the files
in quarantine together say where each delivery stands.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ingest import ledger
from ingest.read import DeliveryFile, UnreadableFile, read_delivery
from ingest.registry import load_registry
from ingest.reports import write_report
from ingest.sealed import seal_file, sealed_url
from ingest.standard import EVENT_COLUMNS, TICKET_COLUMNS, detect_kind
from ingest.typed import typed_events_sql, typed_tickets_sql
from ingest.validate import FIXES, Problem, validate_typed
from privacy.keyring import open_keyring
from publieksdata.faults import fault_point
from publieksdata.settings import DataHome
from publieksdata.warehouse import work_connection

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class DeliveryOutcome:
    delivery_id: str
    institution: str
    file_name: str
    status: str  # validated, rejected, duplicate
    kind: str | None = None
    rows: int = 0
    soft: dict[str, int] = field(default_factory=dict)
    problems: list[dict] = field(default_factory=list)
    report: str | None = None


def safe_file_name(name: str) -> str:
    """The base name of an upload, reduced to harmless characters (no paths, no control chars)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).strip("._") or "upload"
    return cleaned[:120]


def sha256_of(source: Path | DeliveryFile) -> str:
    """SHA-256 of the delivered bytes (of the plaintext, for a sealed file)."""
    digest = hashlib.sha256()
    with source.open("rb") if isinstance(source, Path) else source.open() as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_path(home: DataHome, institution: str, delivery_id: str) -> Path:
    """The validated, typed delivery (sealed Parquet) waiting for the privacy step."""
    return home.quarantine / institution / f"{delivery_id}.canonical.parquet"


def quarantine_file(home: DataHome, upload: Path, institution: str, name: str, delivery_id: str,
                    file_key: bytes) -> Path:  # fmt: skip
    """Move an upload into quarantine, sealed: write ``.partial``, rename, then delete the upload.

    A crash before the rename leaves the upload in landing (the partial is removed next run);
    a crash after it leaves both, and the next run records the landing copy as a duplicate.
    """
    qdir = home.quarantine / institution
    qdir.mkdir(parents=True, exist_ok=True)
    qdir.chmod(0o700)
    target = qdir / f"{delivery_id}__{name}"
    partial = target.with_name(target.name + ".partial")
    seal_file(upload, partial, file_key)
    os.replace(partial, target)
    upload.unlink()
    return target


def _new_delivery_id(sha: str) -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{sha[:12]}"


def _reject(conn, home: DataHome, path: Path, base: dict, problems: list[dict]) -> DeliveryOutcome:
    stem = f"{base['delivery_id']}__{base['file_name']}"
    target = home.rejected / base["institution_code"] / stem
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o700)
    report = {
        "file": base["file_name"],
        "institution": base["institution_code"],
        "delivery_id": base["delivery_id"],
        "sha256": base["sha256"],
        "received_at": base["received_at"].isoformat(timespec="seconds"),
        "kind": base.get("kind"),
        "status": "rejected",
        "problems": problems,
    }
    json_path, _ = write_report(target.parent, stem, report)
    os.replace(path, target)
    reason = "; ".join(
        f"{p['rule']}" + (f" ({p['column']})" if p.get("column") else "") for p in problems
    )
    ledger.record(conn, status="rejected", reason=reason, **base)
    log.warning(
        "delivery %s of %s rejected: %s", base["delivery_id"], base["institution_code"], reason
    )
    return DeliveryOutcome(
        base["delivery_id"], base["institution_code"], base["file_name"], "rejected",
        base.get("kind"), base.get("rows_total") or 0, problems=problems, report=str(json_path),
    )  # fmt: skip


def process_file(
    conn: duckdb.DuckDBPyConnection,
    home: DataHome,
    institution: str,
    path: Path,
    members: dict,
    *,
    file_key: bytes,
    file_name: str,
    delivery_id: str | None = None,
    sha: str | None = None,
    today: date | None = None,
) -> DeliveryOutcome:
    """Validate one sealed file in quarantine; leave a sealed canonical Parquet or reject it."""
    source = DeliveryFile(path, file_key)
    sha = sha or sha256_of(source)
    delivery_id = delivery_id or _new_delivery_id(sha)
    base = {
        "delivery_id": delivery_id,
        "sha256": sha,
        "institution_code": institution,
        "file_name": file_name,
        "received_at": datetime.now(UTC).replace(tzinfo=None),
    }
    earlier = ledger.find_by_sha(conn, sha)
    if earlier is not None:
        path.unlink()
        ledger.record(conn, status="duplicate", duplicate_of=earlier[0], rows_loaded=0, **base)
        log.info("delivery %s is a duplicate of %s", delivery_id, earlier[0])
        return DeliveryOutcome(delivery_id, institution, file_name, "duplicate")
    if institution not in members:
        return _reject(conn, home, path, base, [{
            "rule": "unknown_institution", "column": None, "count": 0, "rows": [],
            "fix": f"'{institution}' is not in the member registry: upload into your own "
                   "institution's folder, or ask the cooperation to register you",
        }])  # fmt: skip
    try:
        read = read_delivery(conn, source)
    except UnreadableFile as exc:
        return _reject(conn, home, path, base, [{
            "rule": "unreadable", "column": None, "count": 0, "rows": [], "detail": str(exc),
            "fix": "export the data again as CSV (UTF-8 or Windows-1252), XLSX or Parquet, "
                   "with one header row",
        }])  # fmt: skip
    base["file_format"] = read.file_format
    base["rows_total"] = read.rows
    kind = detect_kind(read.columns)
    base["kind"] = kind
    if kind is None:
        return _reject(conn, home, path, base, [{
            "rule": "unknown_kind", "column": None, "count": 0, "rows": [],
            "fix": "a tickets file needs ticket_id, sold_at and price columns; an events file "
                   "needs event_id, starts_at and discipline",
        }])  # fmt: skip
    known = TICKET_COLUMNS if kind == "tickets" else EVENT_COLUMNS
    ignored = sorted({c for c in read.columns if c not in known} | set(read.ignored_columns))
    conn.execute(
        typed_tickets_sql(read.columns) if kind == "tickets" else typed_events_sql(read.columns)
    )
    validation = validate_typed(conn, kind, read.columns, today)
    if not validation.ok:
        return _reject(conn, home, path, base, [p.as_dict() for p in validation.problems])
    soft = dict(validation.soft)
    if ignored:
        soft["unknown_columns"] = len(ignored)
    target = canonical_path(home, institution, delivery_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    conn.execute(f"copy typed to '{_sql_path(sealed_url(tmp))}' (format parquet)")
    os.replace(tmp, target)
    ledger.record(conn, status="validated", soft_problems={**soft, "ignored_columns": ignored},
                  **base)  # fmt: skip
    path.unlink()
    conn.execute("drop table if exists typed; drop table if exists raw;")
    log.info("delivery %s of %s validated: %s %s rows", delivery_id, institution, read.rows, kind)
    return DeliveryOutcome(delivery_id, institution, file_name, "validated", kind, read.rows, soft)


def _sql_path(path: Path) -> str:
    """A path for a COPY statement (COPY takes no parameters); our own paths only."""
    return str(path).replace("'", "''")


def _original_name(quarantined: Path) -> tuple[str | None, str]:
    """(delivery_id or None, original name) of a quarantined original: ``<id>__<name>``."""
    if "__" in quarantined.name:
        delivery_id, name = quarantined.name.split("__", 1)
        return delivery_id, name
    return None, quarantined.name


def take_deliveries(
    home: DataHome, today: date | None = None, only: list[str] | None = None
) -> list[DeliveryOutcome]:
    """Run intake over the files waiting in landing (and any left in quarantine by a crash).

    ``only`` limits the landing files to these paths relative to ``landing/``
    (``<code>/<file>``), as the landing sensor requests one run per delivery.
    """
    home.create()
    members = load_registry(home)
    file_key = open_keyring(home).derive("file")
    outcomes: list[DeliveryOutcome] = []
    with work_connection(home, file_key) as conn:
        # 1. originals left in quarantine by an interrupted run
        for folder in sorted(
            p for p in home.quarantine.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            for path in sorted(folder.iterdir()):
                if path.suffix in (".tmp", ".partial"):
                    path.unlink()
                    continue
                if "__" not in path.name:
                    # a canonical file: the privacy step's, unless its rows were committed
                    # by a run that died before deleting it
                    delivery_id = path.name.split(".", 1)[0]
                    if ledger.status_of(conn, delivery_id) == "accepted":
                        path.unlink()
                    continue
                delivery_id, name = _original_name(path)
                if ledger.find_by_sha(conn, sha256_of(DeliveryFile(path, file_key))) is not None:
                    path.unlink()  # its canonical form was already recorded
                    continue
                outcomes.append(process_file(conn, home, folder.name, path, members,
                                             file_key=file_key, file_name=name,
                                             delivery_id=delivery_id, today=today))  # fmt: skip
        # 2. new uploads
        if not home.landing.exists():
            return outcomes
        for folder in sorted(p for p in home.landing.iterdir() if p.is_dir()):
            for upload in sorted(
                p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
            ):
                if only is not None and str(upload.relative_to(home.landing)) not in only:
                    continue
                name = safe_file_name(upload.name)
                institution = safe_file_name(folder.name)
                sha = sha256_of(upload)
                delivery_id = _new_delivery_id(sha)
                quarantined = quarantine_file(
                    home, upload, institution, name, delivery_id, file_key
                )
                fault_point("intake.after_quarantine")
                outcomes.append(process_file(conn, home, institution, quarantined, members,
                                             file_key=file_key, file_name=name,
                                             delivery_id=delivery_id, sha=sha,
                                             today=today))  # fmt: skip
    return outcomes


__all__ = ["take_deliveries", "process_file", "DeliveryOutcome", "Problem", "FIXES"]
